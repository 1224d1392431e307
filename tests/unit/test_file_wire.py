"""File offer and control codecs: round trips, bounds, and each refusal's code."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from p2pchat.protocol.errors import RemoteProtocolError
from p2pchat.protocol.file_wire import (
    MAX_CHUNK_MESSAGE,
    ChunkHeader,
    ControlKind,
    DirectPath,
    FileControl,
    FileOffer,
    FileWireError,
    decode_chunk_header,
    decode_control,
    decode_offer,
)

TID = bytes(range(16))
OFFER = FileOffer(300_000, 262_144, bytes([1] * 32), bytes([2] * 32), "image/png", "Ünïcode ✓.png")


def test_offer_round_trip_and_layout() -> None:
    data = OFFER.encode()
    assert decode_offer(data) == OFFER
    assert data[0] == 1
    assert struct.unpack_from(">QI", data, 1) == (300_000, 262_144)
    assert len(data) == 1 + 8 + 4 + 32 + 32 + 1 + 9 + 2 + len(OFFER.name.encode())
    assert OFFER.blocks == 2
    assert issubclass(FileWireError, RemoteProtocolError)


@pytest.mark.parametrize("size", [0, 1, 2**40])
def test_offer_size_edges(size: int) -> None:
    offer = FileOffer(size, 65_536, bytes(32), bytes(32), "", "x")
    assert decode_offer(offer.encode()) == offer


def _with(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(OFFER.encode())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "file-bad-offer"),
        (OFFER.encode()[:-1], "file-bad-offer"),
        (OFFER.encode() + b"\x00", "file-bad-offer"),
        (_with(0, ">B", 3), "file-version"),  # 2 is a group offer
        (_with(1, ">Q", 2**40 + 1), "file-bad-offer"),
        (_with(9, ">I", 32_768), "file-bad-offer"),  # below 64 KiB
        (_with(9, ">I", 2**21), "file-bad-offer"),  # above 1 MiB
        (_with(9, ">I", 100_000), "file-bad-offer"),  # not a power of two
        (OFFER.encode()[:77] + b"\x00\x00", "file-bad-offer"),  # empty name
        (OFFER.encode()[:78] + b"\n" + OFFER.encode()[79:], "file-bad-offer"),  # mime control
    ],
)
def test_offer_refusals(data: bytes, code: str) -> None:
    with pytest.raises(FileWireError) as info:
        decode_offer(data)
    assert info.value.code == code


def test_offer_name_must_be_utf8_and_bounded() -> None:
    head = OFFER.encode()[: 78 + 9]
    with pytest.raises(FileWireError, match="utf-8"):
        decode_offer(head + b"\x00\x02\xc3\x28")
    assert decode_offer(head + struct.pack(">H", 255) + b"a" * 255).name == "a" * 255
    with pytest.raises(FileWireError):
        decode_offer(head + struct.pack(">H", 256) + b"a" * 256)
    with pytest.raises(ValueError, match="1 to 255 bytes"):
        FileOffer(1, 65_536, bytes(32), bytes(32), "", "a" * 256)


@pytest.mark.parametrize("kind", [k for k in ControlKind if k is not ControlKind.DIRECT])
def test_control_round_trip(kind: ControlKind) -> None:
    control = FileControl(kind, TID, 2**64 - 1, "no space ✓")
    data = control.encode()
    assert decode_control(data) == control
    assert len(data) == 1 + 1 + 16 + 8 + 1 + len("no space ✓".encode())


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x01\x01", "file-bad-control"),
        (FileControl(ControlKind.ACK, TID, 3).encode() + b"x", "file-bad-control"),
        (b"\x02" + FileControl(ControlKind.ACK, TID, 3).encode()[1:], "file-version"),
        (b"\x01\x08" + FileControl(ControlKind.ACK, TID, 3).encode()[2:], "file-bad-control"),
        (b"\x01\x00" + FileControl(ControlKind.ACK, TID, 3).encode()[2:], "file-bad-control"),
        (FileControl(ControlKind.FAIL, TID).encode()[:-1] + b"\x01\x07", "file-bad-control"),
        (FileControl(ControlKind.FAIL, TID).encode()[:-1] + b"\x02\xc3\x28", "file-bad-control"),
        (
            FileControl(ControlKind.FAIL, TID).encode()[:-1] + b"\xc9" + b"a" * 201,
            "file-bad-control",
        ),
    ],
)
def test_control_refusals(data: bytes, code: str) -> None:
    with pytest.raises(FileWireError) as info:
        decode_control(data)
    assert info.value.code == code


def test_control_refuses_bidi_reason_on_both_sides() -> None:
    with pytest.raises(ValueError, match="control characters"):
        FileControl(ControlKind.CANCEL, TID, 0, "\u202eevil")
    with pytest.raises(ValueError, match="over 200 bytes"):
        FileControl(ControlKind.CANCEL, TID, 0, "a" * 201)
    data = FileControl(ControlKind.CANCEL, TID).encode()[:-1] + b"\x07" + "\u202eevil".encode()
    with pytest.raises(FileWireError, match="control characters") as info:
        decode_control(data)
    assert info.value.code == "file-bad-control"


def test_chunk_header() -> None:
    header = ChunkHeader(TID, 7, 3, True)
    raw = header.encode()
    assert len(raw) == 24
    assert raw == b"\x01" + TID + b"\x00\x00\x00\x07\x00\x03\x01"
    assert decode_chunk_header(raw + bytes(16)) == header
    for bad in (raw, raw + bytes(15), raw + bytes(MAX_CHUNK_MESSAGE - 23)):
        with pytest.raises(FileWireError) as info:
            decode_chunk_header(bad)
        assert info.value.code == "file-bad-chunk"
    with pytest.raises(FileWireError) as info:
        decode_chunk_header(raw[:-1] + b"\x03" + bytes(16))
    assert info.value.code == "file-bad-chunk"
    with pytest.raises(FileWireError) as info:
        decode_chunk_header(b"\x02" + raw[1:] + bytes(16))
    assert info.value.code == "file-version"
    assert MAX_CHUNK_MESSAGE == 65_608


V4 = ipaddress.ip_address("10.0.0.2")
V6 = ipaddress.ip_address("fe80::1")
TOKEN = bytes(range(32, 64))


@pytest.mark.parametrize("address", [V4, V6])
def test_direct_round_trip_and_layout(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    control = FileControl.offer_direct(TID, DirectPath(address, 50_000, TOKEN))
    data = control.encode()
    assert data[:18] == b"\x01\x07" + TID
    assert data[18:26] == (50_000).to_bytes(8, "big")
    assert data[26] == 32 + len(address.packed)
    assert data[27:] == TOKEN + address.packed
    assert decode_control(data) == control
    assert control.kind is ControlKind.DIRECT
    assert control.direct is not None
    assert control.value == control.direct.port == 50_000


def _direct(port: int, body: bytes) -> bytes:
    return b"\x01\x07" + TID + port.to_bytes(8, "big") + bytes([len(body)]) + body


@pytest.mark.parametrize(
    "data",
    [
        _direct(50_000, b""),  # no token
        _direct(50_000, TOKEN),  # no address
        _direct(50_000, TOKEN + b"\x0a\x00\x00"),  # 3-byte address
        _direct(50_000, TOKEN + V4.packed + b"x"),  # neither 4 nor 16 bytes
        _direct(50_000, TOKEN[:31] + V4.packed),  # a short token makes the length wrong
        _direct(0, TOKEN + V4.packed),  # port 0
        _direct(65_536, TOKEN + V4.packed),  # port over u16
        _direct(50_000, TOKEN + bytes(4)),  # 0.0.0.0
        _direct(50_000, TOKEN + bytes(16)),  # ::
        _direct(50_000, TOKEN + bytes([224, 0, 0, 251])),  # multicast
        _direct(50_000, TOKEN + V4.packed)[:-1],  # truncated
    ],
)
def test_direct_refusals(data: bytes) -> None:
    with pytest.raises(FileWireError) as info:
        decode_control(data)
    assert info.value.code == "file-bad-control"


def test_direct_path_only_with_direct_kind() -> None:
    path = DirectPath(V4, 1, TOKEN)
    with pytest.raises(ValueError, match="only there"):
        FileControl(ControlKind.DIRECT, TID, 1)
    with pytest.raises(ValueError, match="only there"):
        FileControl(ControlKind.ACK, TID, 1, "", path)
    with pytest.raises(ValueError, match="its port"):
        FileControl(ControlKind.DIRECT, TID, 2, "", path)
    with pytest.raises(ValueError, match="32 bytes"):
        DirectPath(V4, 1, TOKEN[:31])
