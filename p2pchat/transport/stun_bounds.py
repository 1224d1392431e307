"""aioice parses every datagram that reaches an ICE port as STUN first and hands
what is not STUN (``ValueError``) to DTLS. A STUN-looking datagram whose attribute
is cut short raises ``struct.error`` instead, which aioice does not catch: asyncio
then logs a traceback for every such datagram (seen with UDP junk in
tests/lan/test_abuse.py). The wrapped parser turns it into the ``ValueError`` of
any other datagram that is not STUN."""

from __future__ import annotations

import struct
from typing import Any

import aioice.stun

_parse_message = aioice.stun.parse_message


def _bounded_parse_message(data: bytes) -> Any:
    try:
        return _parse_message(data)
    except struct.error as exc:
        raise ValueError(f"STUN message with a truncated attribute: {exc}") from None


def install() -> None:
    aioice.stun.parse_message = _bounded_parse_message
