"""Batches: several secret-stream messages in one data-channel message.

aiortc sends every data-channel message as its own SCTP packet, and each costs
the same CPU (DTLS, SCTP, SACK) whatever its size, so the frames a side queues
in one event-loop turn travel together. Used only when both ends announce it
(``info["batch"] = "1"`` in the handshake). Layout, big-endian::

    batch = (length u32 | secret-stream message)+      nothing after the last one

Each message is sealed as before (one frame each), so the stream still
authenticates and orders every frame; the batch adds only the lengths.
See docs/protocol.md.
"""

from __future__ import annotations

import struct

from p2pchat.crypto.stream import OVERHEAD_BYTES
from p2pchat.protocol.errors import RemoteProtocolError
from p2pchat.protocol.frames import MAX_FRAME_BYTES

CAPABILITY = ("batch", "1")  # the handshake info entry that announces batches
_LENGTH = struct.Struct(">I")
LENGTH_BYTES = _LENGTH.size
MAX_ITEM_BYTES = MAX_FRAME_BYTES + OVERHEAD_BYTES  # one sealed frame
MAX_BATCH_BYTES = 64 * 1024 + 1024  # the data channel's message bound (webrtc.py)
MAX_BATCH_ITEMS = 1024  # a receiver bound; senders stop at SEND_TARGET_ITEMS
# What a sender puts in one batch: far under the bounds above (and under the
# SCTP reassembly bounds of transport/sctp_bounds.py), a frame over it goes alone.
SEND_TARGET_BYTES = 16 * 1024
SEND_TARGET_ITEMS = 128


class BatchError(RemoteProtocolError):
    code = "bad-batch"


def encode_batch(items: list[bytes]) -> bytes:
    if not items:
        raise ValueError("a batch holds at least one message")
    out = bytearray()
    for item in items:
        if not OVERHEAD_BYTES <= len(item) <= MAX_ITEM_BYTES:
            raise ValueError(f"a batch item must be {OVERHEAD_BYTES}..{MAX_ITEM_BYTES} bytes")
        out += _LENGTH.pack(len(item)) + item
    if len(out) > MAX_BATCH_BYTES or len(items) > MAX_BATCH_ITEMS:
        raise ValueError("batch over its bounds")
    return bytes(out)


def decode_batch(data: bytes) -> list[bytes]:
    """Split a batch into its secret-stream messages; ``BatchError`` for anything malformed."""
    if not data:
        raise BatchError("empty batch")
    if len(data) > MAX_BATCH_BYTES:
        raise BatchError(f"batch over {MAX_BATCH_BYTES} bytes")
    items: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(items) == MAX_BATCH_ITEMS:
            raise BatchError(f"batch of more than {MAX_BATCH_ITEMS} messages")
        if len(data) - offset < LENGTH_BYTES:
            raise BatchError("batch ends inside a length")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += LENGTH_BYTES
        if not OVERHEAD_BYTES <= length <= MAX_ITEM_BYTES:
            raise BatchError(f"batch item of {length} bytes")
        if length > len(data) - offset:
            raise BatchError("batch item runs past the end")
        items.append(data[offset : offset + length])
        offset += length
    return items


class Batcher:
    """A sender's queue, sans I/O: ``add`` returns batches that are full, ``flush`` the rest."""

    def __init__(self) -> None:
        self._items: list[bytes] = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: bytes) -> list[bytes]:
        size = LENGTH_BYTES + len(item)
        full = []
        if self._items and (
            self._bytes + size > SEND_TARGET_BYTES or len(self._items) >= SEND_TARGET_ITEMS
        ):
            full.append(self._take())
        self._items.append(item)
        self._bytes += size
        return full

    def flush(self) -> bytes | None:
        return self._take() if self._items else None

    def _take(self) -> bytes:
        items, self._items, self._bytes = self._items, [], 0
        return encode_batch(items)
