"""Text encodings used in links, adverts and ids (RFC 4648, no padding)."""

from __future__ import annotations

import base64
import binascii
import re


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_decode(text: str) -> bytes:
    """Decode canonical unpadded base64url; ``ValueError`` on anything else."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64url_encode(data) != text:  # unused low bits set: one value, one spelling
        raise ValueError("not canonical base64url")
    return data


def b32_encode(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode("ascii").lower()
