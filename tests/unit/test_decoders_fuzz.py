"""Every decoder: any bytes in → a value or its documented error, never a crash or a hang."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.crypto.encoding import b64url_decode
from p2pchat.crypto.envelope import (
    Direction,
    EnvelopeError,
    LanEnvelopes,
    LinkEnvelopes,
    ReplayGuard,
    peek_lan_sender,
)
from p2pchat.crypto.identity import Identity
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.stream import StreamError, StreamReceiver
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.frames import (
    FILE_FRAME_TYPES,
    GROUP_FRAME_TYPES,
    ChatFrame,
    FrameError,
    FrameType,
    decode_frame,
)
from p2pchat.protocol.handshake import HandshakeBody, HandshakeError, decode_handshake
from p2pchat.protocol.session import Role, Session

ALICE, BOB = Identity(bytes(32)), Identity(bytes([1] * 32))
KEY = bytes(range(32))
NOW = 1_700_000_000_000


@given(st.binary(max_size=300))
def test_decode_frame(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    assert frame.encode() == data


@given(
    st.sampled_from(FrameType),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**64 - 1),
    st.text(max_size=200),
)
def test_frame_round_trip(kind: FrameType, mid: bytes, ts: int, text: str) -> None:
    body = b""
    if kind is FrameType.TEXT:
        body = text.encode()
    elif kind in GROUP_FRAME_TYPES | FILE_FRAME_TYPES:
        body = b"\x01" + text.encode()  # a group or file object: opaque, never empty
    frame = ChatFrame(kind, mid, ts, body)
    assert decode_frame(frame.encode()) == frame


@given(st.binary(max_size=400))
def test_decode_handshake(data: bytes) -> None:
    with contextlib.suppress(HandshakeError):
        decode_handshake(data)


@given(
    st.text(min_size=1, max_size=300),
    st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5),
)
def test_handshake_round_trip(sdp: str, info: dict[str, str]) -> None:
    body = HandshakeBody(sdp=sdp, kx_public=bytes(32), info=info)
    assert decode_handshake(body.encode()) == body


@given(st.binary(max_size=400))
def test_open_lan_envelope(data: bytes) -> None:
    env = LanEnvelopes(BOB, ALICE.public_key, ReplayGuard())
    with pytest.raises(EnvelopeError):
        env.open(data, Direction.INITIATOR, NOW)
    with contextlib.suppress(EnvelopeError):
        peek_lan_sender(data)


@given(st.binary(max_size=400))
def test_open_link_envelope(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        LinkEnvelopes(KEY, ReplayGuard()).open(data, Direction.INITIATOR, NOW)


@given(st.data())
def test_any_bit_flip_in_an_envelope_is_caught(data: st.DataObject) -> None:
    sealed = LinkEnvelopes(KEY, ReplayGuard()).seal(1, Direction.INITIATOR, bytes(16), b"x", NOW)
    index = data.draw(st.integers(0, len(sealed) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(sealed)
    flipped[index] ^= 1 << bit
    with pytest.raises(EnvelopeError):
        LinkEnvelopes(KEY, ReplayGuard()).open(bytes(flipped), Direction.INITIATOR, NOW)


@given(st.binary(max_size=200))
def test_stream_receiver(data: bytes) -> None:
    try:
        receiver = StreamReceiver(KEY, data[:24])
        receiver.open(data[24:])
    except StreamError:
        pass


@given(st.text(max_size=80))
def test_link_fragment(text: str) -> None:
    with contextlib.suppress(ValueError):
        LinkSecret.from_fragment(text)


@given(st.text(max_size=80))
def test_b64url(text: str) -> None:
    with contextlib.suppress(ValueError):
        b64url_decode(text)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_session_survives_junk(inputs: list[bytes]) -> None:
    """Junk at every step of the responder: only ProtocolError, never anything else."""
    session = Session(Role.RESPONDER, LinkEnvelopes(KEY, ReplayGuard()))
    for item in inputs:
        with contextlib.suppress(ProtocolError):
            session.receive_offer(item, NOW)
