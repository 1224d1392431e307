"""File transfer wire objects: the offer, the controls and the chunk header (pure codecs).

Offer and controls travel as chat frames 8 and 9 inside the secret stream; a chunk is one
binary message on the files channel, outside it (protocol/file_transfer.py encrypts it).
See the "Files" section of docs/protocol.md for the layouts, bounds and every error code.
"""

from __future__ import annotations

import ipaddress
import struct
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

from p2pchat.protocol.errors import RemoteProtocolError

FILE_VERSION = 1
# An offer of a file sent to a group: the version-1 layout, then the group's id. A
# receiver files it under that group (after checking it holds the group, the sender
# and itself on its list). Controls and chunks stay version 1.
GROUP_OFFER_VERSION = 2
GROUP_ID_BYTES = 16
TRANSFER_ID_BYTES = 16
HASH_BYTES = 32  # BLAKE2b-256
KEY_BYTES = 32  # XChaCha20-Poly1305-IETF key
TAG_BYTES = 16  # Poly1305 tag
BLOCK_BYTES = 262_144  # what we offer: 256 KiB
MIN_BLOCK_BYTES = 65_536
MAX_BLOCK_BYTES = 1_048_576
CHUNK_BYTES = 65_536  # plaintext per chunk (the last of a block carries the block hash too)
WINDOW_BLOCKS = 4  # blocks sent but not acknowledged
MAX_FILE_BYTES = 2**40  # 1 TiB
MAX_NAME_BYTES = 255  # on the wire; sanitized on receipt to 200 (protocol/file_names.py)
MAX_MIME_BYTES = 255
MAX_REASON_BYTES = 200
MAX_U64 = 2**64 - 1

_OFFER_HEAD = struct.Struct(">BQI32s32sB")  # version size block_bytes hash key mime_len
_CONTROL_HEAD = struct.Struct(">BB16sQB")  # version kind transfer_id value reason_len
_CHUNK_HEADER = struct.Struct(">B16sIHB")  # version transfer_id block chunk flags
CHUNK_HEADER_BYTES = _CHUNK_HEADER.size  # 24
FLAG_LAST = 0x01  # the last chunk of its block (carries the block hash)
MAX_CHUNK_MESSAGE = CHUNK_HEADER_BYTES + CHUNK_BYTES + HASH_BYTES + TAG_BYTES  # 65 608
MIN_CHUNK_MESSAGE = CHUNK_HEADER_BYTES + TAG_BYTES


def wire_bytes(file_bytes: int, block_bytes: int = BLOCK_BYTES) -> int:
    """What ``file_bytes`` of a file, sent in chunks from a block's start, put on the
    wire (what a transfer's ``bytes_sent_total`` counts): each chunk its header and tag,
    each block's last chunk the block hash; for a part of a block, an upper bound."""
    chunks = -(-file_bytes // CHUNK_BYTES)
    blocks = -(-file_bytes // block_bytes)
    return file_bytes + chunks * (CHUNK_HEADER_BYTES + TAG_BYTES) + blocks * HASH_BYTES


# Bidirectional overrides would let a reason display as something it is not.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class FileWireError(RemoteProtocolError):
    """A file object or chunk refused: the ``code`` says which rule (stable, documented)."""

    code = "file-malformed"


class ControlKind(IntEnum):
    ACCEPT = 1  # value: the first block the receiver still needs (0: from the start)
    ACK = 2  # value: blocks verified so far (the next block needed); cumulative
    DONE = 3  # value: the size; the whole hash matched, the file is in place
    CANCEL = 4  # either side; reason
    FAIL = 5  # receiver: hash mismatch or disk error; reason
    DECLINE = 6  # receiver refuses the offer; reason
    DIRECT = 7  # receiver offers a direct TCP path (value: port; body: token, address)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DIRECT_TOKEN_BYTES = 32
_DIRECT_BODY_BYTES = (DIRECT_TOKEN_BYTES + 4, DIRECT_TOKEN_BYTES + 16)  # token || IPv4 / IPv6


@dataclass(frozen=True)
class DirectPath:
    """Where and how to reach the receiver's direct TCP listener (transport/direct_files.py):
    a one-use token that the listener accepts once, within its lifetime."""

    address: IPAddress
    port: int
    token: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65_535:
            raise ValueError("direct port must be 1 to 65535")
        if len(self.token) != DIRECT_TOKEN_BYTES:
            raise ValueError(f"direct token must be {DIRECT_TOKEN_BYTES} bytes")
        if self.address.is_unspecified or self.address.is_multicast:
            raise ValueError("direct address must be a unicast address")


def has_control_chars(text: str) -> bool:
    """C0, DEL, C1, lone surrogates or bidi overrides."""
    return any(unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS for c in text)


def block_count(size: int, block_bytes: int) -> int:
    return -(-size // block_bytes)


def valid_block_bytes(block_bytes: int) -> bool:
    return (
        MIN_BLOCK_BYTES <= block_bytes <= MAX_BLOCK_BYTES and block_bytes & (block_bytes - 1) == 0
    )


@dataclass(frozen=True)
class FileOffer:
    """The body of a FILE_OFFER frame; its transfer id is the frame's message_id."""

    size: int
    block_bytes: int
    file_hash: bytes
    file_key: bytes
    mime: str
    name: str
    group_id: bytes | None = None  # a group's file: encoded as a version-2 offer

    def __post_init__(self) -> None:
        if self.group_id is not None and len(self.group_id) != GROUP_ID_BYTES:
            raise ValueError(f"group id must be {GROUP_ID_BYTES} bytes")
        if not 0 <= self.size <= MAX_FILE_BYTES:
            raise ValueError(f"a file must be at most {MAX_FILE_BYTES} bytes")
        if not valid_block_bytes(self.block_bytes):
            raise ValueError("block size must be a power of two from 64 KiB to 1 MiB")
        if len(self.file_hash) != HASH_BYTES or len(self.file_key) != KEY_BYTES:
            raise ValueError("file hash and key must be 32 bytes")
        if not _valid_mime(self.mime):
            raise ValueError(f"mime type must be at most {MAX_MIME_BYTES} printable ASCII bytes")
        try:
            raw = self.name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("file name is not valid UTF-8") from None
        if not 0 < len(raw) <= MAX_NAME_BYTES:
            raise ValueError(f"file name must be 1 to {MAX_NAME_BYTES} bytes of UTF-8")

    @property
    def blocks(self) -> int:
        return block_count(self.size, self.block_bytes)

    def encode(self) -> bytes:
        mime = self.mime.encode("ascii")
        name = self.name.encode("utf-8")
        version = FILE_VERSION if self.group_id is None else GROUP_OFFER_VERSION
        head = _OFFER_HEAD.pack(
            version, self.size, self.block_bytes, self.file_hash, self.file_key, len(mime)
        )
        return head + mime + struct.pack(">H", len(name)) + name + (self.group_id or b"")


def _valid_mime(mime: str) -> bool:
    return len(mime) <= MAX_MIME_BYTES and all(" " <= c <= "~" for c in mime)


def decode_offer(data: bytes) -> FileOffer:
    """Parse a FILE_OFFER body (version 1, or 2: a group's); ``FileWireError`` (code
    ``file-bad-offer``) if malformed."""
    if len(data) < _OFFER_HEAD.size:
        raise FileWireError("file offer too short", code="file-bad-offer")
    version, size, block_bytes, file_hash, file_key, mime_len = _OFFER_HEAD.unpack_from(data)
    if version not in (FILE_VERSION, GROUP_OFFER_VERSION):
        raise FileWireError(f"file offer version {version} is not supported", code="file-version")
    group_id: bytes | None = None
    if version == GROUP_OFFER_VERSION:  # the group's id closes the offer
        if len(data) < _OFFER_HEAD.size + GROUP_ID_BYTES:
            raise FileWireError("file offer truncated", code="file-bad-offer")
        data, group_id = data[:-GROUP_ID_BYTES], data[-GROUP_ID_BYTES:]
    at = _OFFER_HEAD.size
    mime_raw = data[at : at + mime_len]
    at += mime_len
    if len(mime_raw) != mime_len or len(data) < at + 2:
        raise FileWireError("file offer truncated", code="file-bad-offer")
    (name_len,) = struct.unpack_from(">H", data, at)
    at += 2
    name_raw = data[at : at + name_len]
    if len(name_raw) != name_len:
        raise FileWireError("file offer truncated", code="file-bad-offer")
    if at + name_len != len(data):
        raise FileWireError("bytes after the file offer", code="file-bad-offer")
    try:
        mime = mime_raw.decode("ascii")
        name = name_raw.decode("utf-8")
        return FileOffer(size, block_bytes, file_hash, file_key, mime, name, group_id)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileWireError(f"file offer refused: {exc}", code="file-bad-offer") from None


@dataclass(frozen=True)
class FileControl:
    """The body of a FILE_CONTROL frame."""

    kind: ControlKind
    transfer_id: bytes
    value: int = 0
    reason: str = ""
    direct: DirectPath | None = None  # DIRECT only (then value is its port, reason empty)

    def __post_init__(self) -> None:
        if (self.kind is ControlKind.DIRECT) != (self.direct is not None):
            raise ValueError("a direct path goes with a DIRECT control, and only there")
        if self.direct is not None and (self.value != self.direct.port or self.reason):
            raise ValueError("a DIRECT control carries its port as value and no reason")
        if len(self.transfer_id) != TRANSFER_ID_BYTES:
            raise ValueError(f"transfer id must be {TRANSFER_ID_BYTES} bytes")
        if not 0 <= self.value <= MAX_U64:
            raise ValueError("control value must fit in 64 bits")
        try:
            raw = self.reason.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("reason is not valid UTF-8") from None
        if len(raw) > MAX_REASON_BYTES:
            raise ValueError(f"reason over {MAX_REASON_BYTES} bytes")
        if has_control_chars(self.reason):
            raise ValueError("reason contains control characters")

    @classmethod
    def offer_direct(cls, transfer_id: bytes, direct: DirectPath) -> FileControl:
        return cls(ControlKind.DIRECT, transfer_id, direct.port, "", direct)

    def encode(self) -> bytes:
        if self.direct is None:
            body = self.reason.encode("utf-8")
        else:  # the reason's place holds the token and the address, binary
            body = self.direct.token + self.direct.address.packed
        head = _CONTROL_HEAD.pack(FILE_VERSION, self.kind, self.transfer_id, self.value, len(body))
        return head + body


def decode_control(data: bytes) -> FileControl:
    """Parse a FILE_CONTROL body; ``FileWireError`` (code ``file-bad-control``) if malformed."""
    if len(data) < _CONTROL_HEAD.size:
        raise FileWireError("file control too short", code="file-bad-control")
    version, kind, transfer_id, value, reason_len = _CONTROL_HEAD.unpack_from(data)
    if version != FILE_VERSION:
        raise FileWireError(f"file control version {version} is not supported", code="file-version")
    if len(data) != _CONTROL_HEAD.size + reason_len:
        raise FileWireError("file control length does not match", code="file-bad-control")
    if kind == ControlKind.DIRECT:
        return _decode_direct(transfer_id, value, data[_CONTROL_HEAD.size :])
    try:
        return FileControl(
            ControlKind(kind), transfer_id, value, data[_CONTROL_HEAD.size :].decode("utf-8")
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileWireError(f"file control refused: {exc}", code="file-bad-control") from None


def _decode_direct(transfer_id: bytes, port: int, body: bytes) -> FileControl:
    if len(body) not in _DIRECT_BODY_BYTES:
        raise FileWireError(f"direct path of {len(body)} bytes", code="file-bad-control")
    token, packed = body[:DIRECT_TOKEN_BYTES], body[DIRECT_TOKEN_BYTES:]
    try:
        address = ipaddress.ip_address(packed)
        direct = DirectPath(address, port, token)
    except ValueError as exc:
        raise FileWireError(f"direct path refused: {exc}", code="file-bad-control") from None
    return FileControl.offer_direct(transfer_id, direct)


@dataclass(frozen=True)
class ChunkHeader:
    """The 24 clear bytes in front of each chunk (also its AEAD additional data)."""

    transfer_id: bytes
    block: int
    chunk: int
    last: bool

    def encode(self) -> bytes:
        flags = FLAG_LAST if self.last else 0
        return _CHUNK_HEADER.pack(FILE_VERSION, self.transfer_id, self.block, self.chunk, flags)


def decode_chunk_header(data: bytes) -> ChunkHeader:
    """The header of a chunk message, after the message size bounds; ``file-bad-chunk``."""
    if not MIN_CHUNK_MESSAGE <= len(data) <= MAX_CHUNK_MESSAGE:
        raise FileWireError(f"file chunk of {len(data)} bytes", code="file-bad-chunk")
    version, transfer_id, block, chunk, flags = _CHUNK_HEADER.unpack_from(data)
    if version != FILE_VERSION:
        raise FileWireError(f"file chunk version {version} is not supported", code="file-version")
    if flags & ~FLAG_LAST:
        raise FileWireError("unknown file chunk flags", code="file-bad-chunk")
    return ChunkHeader(transfer_id, block, chunk, bool(flags & FLAG_LAST))
