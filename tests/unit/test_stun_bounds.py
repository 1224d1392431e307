"""A STUN-looking datagram with a cut attribute is refused like other junk (ValueError),
not with the struct.error that aioice does not catch."""

from __future__ import annotations

import struct

import aioice.stun
import pytest

import p2pchat.transport.webrtc  # noqa: F401 - installs the bounded parser


def test_a_cut_stun_attribute_is_a_value_error() -> None:
    # Binding request, cookie, transaction id, then one attribute header that
    # announces 4 bytes of an unsigned-int attribute (PRIORITY) and carries 2.
    header = struct.pack("!HHI12s", 0x0001, 8, aioice.stun.COOKIE, b"x" * 12)
    attribute = struct.pack("!HH", 0x0024, 2) + b"\x00\x01" + b"\x00\x00"
    with pytest.raises(ValueError, match="truncated attribute"):
        aioice.stun.parse_message(header + attribute)
