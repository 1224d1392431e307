"""Bodies of the signaling envelopes: what an offer or an answer carries.

JSON, so the browser client reads it natively: ``{"v": 1, "sdp": "...",
"kx": "<base64url>", "info": {"name": "..."}}``, plus ``"pake": "<base64url>"``
(a CPace share, 32 bytes) on a password link's OFFER and ANSWER only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from p2pchat.crypto.encoding import b64url_decode, b64url_encode
from p2pchat.crypto.stream import KX_PUBLIC_KEY_BYTES
from p2pchat.protocol.errors import RemoteProtocolError

HANDSHAKE_VERSION = 1
MAX_SDP_CHARS = 32 * 1024
MAX_INFO_ENTRIES = 16
MAX_INFO_CHARS = 256
PAKE_SHARE_BYTES = 32  # a ristretto255 element (crypto/cpace.py)


class EnvelopeKind(IntEnum):
    OFFER = 1
    ANSWER = 2
    CONTACT_REQUEST = 3
    CONTACT_ACCEPT = 4
    CONTACT_REJECT = 5


class HandshakeError(RemoteProtocolError):
    code = "bad-handshake"


@dataclass(frozen=True)
class HandshakeBody:
    sdp: str
    kx_public: bytes
    info: Mapping[str, str] = field(default_factory=dict)
    pake: bytes | None = None  # the CPace share (password links only)

    def encode(self) -> bytes:
        doc = {
            "v": HANDSHAKE_VERSION,
            "sdp": self.sdp,
            "kx": b64url_encode(self.kx_public),
            "info": dict(self.info),
        }
        if self.pake is not None:  # absent otherwise: a password-less body keeps its bytes
            doc["pake"] = b64url_encode(self.pake)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_handshake(data: bytes) -> HandshakeBody:
    try:
        doc: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise HandshakeError("handshake is not valid JSON") from None
    if not isinstance(doc, dict):
        raise HandshakeError("handshake is not a JSON object")
    version = doc.get("v")
    if type(version) is not int or version != HANDSHAKE_VERSION:
        raise HandshakeError(f"handshake version {doc.get('v')!r} is not supported")
    sdp, kx, info = doc.get("sdp"), doc.get("kx"), doc.get("info", {})
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_CHARS:
        raise HandshakeError("handshake has no usable SDP")
    if not isinstance(kx, str):
        raise HandshakeError("handshake has no session key share")
    try:
        kx_public = b64url_decode(kx)
    except ValueError:
        raise HandshakeError("handshake key share is not base64url") from None
    if len(kx_public) != KX_PUBLIC_KEY_BYTES:
        raise HandshakeError("handshake key share has the wrong size")
    return HandshakeBody(
        sdp=sdp, kx_public=kx_public, info=_decode_info(info), pake=_decode_pake(doc)
    )


def _decode_pake(doc: dict[str, Any]) -> bytes | None:
    if "pake" not in doc:
        return None
    value = doc["pake"]
    try:
        share = b64url_decode(value) if isinstance(value, str) else b""
    except ValueError:
        share = b""
    if len(share) != PAKE_SHARE_BYTES:
        raise HandshakeError("handshake password share is not 32 bytes of base64url")
    return share


def _decode_info(info: object) -> dict[str, str]:
    if not isinstance(info, dict) or len(info) > MAX_INFO_ENTRIES:
        raise HandshakeError("handshake info must be a small JSON object")
    for key, value in info.items():
        if not isinstance(value, str) or len(key) > MAX_INFO_CHARS or len(value) > MAX_INFO_CHARS:
            raise HandshakeError("handshake info entries must be short strings")
    return dict(info)
