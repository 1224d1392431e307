"""The inter-instance frame codec (signaling/bus.py): round trips, bounds, and every
malformed input refused with a FrameError (never a crash)."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling import bus
from signaling.bus import Frame, FrameError, decode_frame, encode_frame

MAX = 1024

room_ids = st.binary(min_size=16, max_size=16).map(
    lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
)
ids = st.binary(min_size=8, max_size=8)
data_kinds = st.sampled_from([bus.GUEST_DATA, bus.OWNER_DATA])
close_codes = st.one_of(st.sampled_from(sorted(bus.SERVER_CLOSE_CODES)), st.integers(3000, 4999))


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    kind = draw(st.sampled_from(sorted(bus.KINDS)))
    if kind in (bus.GUEST_DATA, bus.OWNER_DATA):
        payload = draw(st.binary(min_size=1, max_size=MAX))
    elif kind == bus.GUEST_OPENED:
        payload = draw(st.text(max_size=16).filter(lambda t: len(t.encode()) <= 64)).encode()
    elif kind == bus.OWNER_CLOSE:
        reason = draw(st.text(max_size=40).filter(lambda t: len(t.encode()) <= 123))
        payload = struct.pack(">H", draw(close_codes)) + reason.encode()
    elif kind == bus.GUEST_DRAINED:
        payload = struct.pack(">Q", draw(st.integers(0, 2**64 - 1)))
    else:
        payload = b""
    return Frame(kind, draw(room_ids), draw(ids), draw(ids), payload)


@given(frames())
def test_every_valid_frame_round_trips(frame: Frame) -> None:
    data = encode_frame(frame, max_payload=MAX)
    assert len(data) == bus.HEADER_BYTES + len(frame.payload)
    assert decode_frame(data, max_payload=MAX) == frame


@given(st.binary(max_size=bus.HEADER_BYTES + 64))
def test_any_bytes_decode_to_a_frame_or_a_frame_error(data: bytes) -> None:
    try:
        frame = decode_frame(data, max_payload=MAX)
    except FrameError as exc:
        error = str(exc)
        assert "\n" not in error  # one line
        return
    assert encode_frame(frame, max_payload=MAX) == data


@given(frames(), st.integers(0, bus.HEADER_BYTES - 1))
def test_a_cut_header_is_refused(frame: Frame, keep: int) -> None:
    data = encode_frame(frame, max_payload=MAX)
    with pytest.raises(FrameError, match="too short"):
        decode_frame(data[:keep], max_payload=MAX)


@given(frames(), st.integers(0, 255).filter(lambda v: v != bus.FRAME_VERSION))
def test_another_version_is_refused(frame: Frame, version: int) -> None:
    data = bytearray(encode_frame(frame, max_payload=MAX))
    data[0] = version
    with pytest.raises(FrameError, match="version"):
        decode_frame(bytes(data), max_payload=MAX)


@given(frames(), st.integers(0, 255).filter(lambda k: k not in bus.KINDS))
def test_an_unknown_kind_is_refused(frame: Frame, kind: int) -> None:
    data = bytearray(encode_frame(frame, max_payload=MAX))
    data[1] = kind
    with pytest.raises(FrameError, match="kind"):
        decode_frame(bytes(data), max_payload=MAX)


@given(room_ids, ids, ids, data_kinds)
def test_data_payloads_are_bounded(room: str, guest: bytes, iid: bytes, kind: int) -> None:
    for payload in (b"", b"x" * (MAX + 1)):
        data = bytes([bus.FRAME_VERSION, kind]) + room.encode() + guest + iid + payload
        with pytest.raises(FrameError, match="payload"):
            decode_frame(data, max_payload=MAX)
    assert (
        decode_frame(
            bytes([bus.FRAME_VERSION, kind]) + room.encode() + guest + iid + b"x" * MAX,
            max_payload=MAX,
        ).payload
        == b"x" * MAX
    )


@given(room_ids, ids, ids, st.integers(0, 65535))
def test_close_codes_are_the_allowed_ones(room: str, guest: bytes, iid: bytes, code: int) -> None:
    data = (
        bytes([bus.FRAME_VERSION, bus.OWNER_CLOSE]) + room.encode() + guest + iid
        + struct.pack(">H", code)
    )  # fmt: skip
    allowed = code in bus.SERVER_CLOSE_CODES or 3000 <= code <= 4999
    if allowed:
        assert bus.parse_close_payload(decode_frame(data, max_payload=MAX).payload) == (code, "")
    else:
        with pytest.raises(FrameError, match="close code"):
            decode_frame(data, max_payload=MAX)


def test_malformed_fields_are_refused_with_a_clear_line() -> None:
    room, guest, iid = "A" * 22, b"g" * 8, b"i" * 8
    head = bytes([bus.FRAME_VERSION])

    def frame(kind: int, payload: bytes, room_bytes: bytes = room.encode()) -> bytes:
        return head + bytes([kind]) + room_bytes + guest + iid + payload

    cases = {
        "room id": frame(bus.GUEST_CLOSED, b"", b"!" * 22),
        "not ASCII": frame(bus.GUEST_CLOSED, b"", "é".encode() * 11),
        "no payload": frame(bus.OWNER_LEFT, b"x"),
        "over 64": frame(bus.GUEST_OPENED, b"a" * 65),
        "not UTF-8": frame(bus.GUEST_OPENED, b"\xff"),
        "reason": frame(bus.OWNER_CLOSE, b"\x0f"),
    }
    for needle, data in cases.items():
        with pytest.raises(FrameError, match=needle):
            decode_frame(data, max_payload=MAX)
    long_reason = frame(bus.OWNER_CLOSE, struct.pack(">H", 4000) + b"r" * 124)
    with pytest.raises(FrameError, match="123"):
        decode_frame(long_reason, max_payload=MAX)


@given(st.text(max_size=200))
def test_close_reasons_are_cut_to_whole_characters(reason: str) -> None:
    payload = bus.close_payload(4000, reason)
    assert len(payload) <= 2 + bus.MAX_REASON_BYTES
    code, cut = bus.parse_close_payload(payload)
    assert code == 4000
    assert reason.startswith(cut)


def test_encoding_refuses_what_decoding_would() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        encode_frame(Frame(bus.GUEST_CLOSED, "A" * 22, b"short", b"i" * 8), max_payload=MAX)
