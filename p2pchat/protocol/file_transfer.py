"""The two ends of one file transfer, sans I/O: no disk, no clock, no asyncio.

The node reads and writes the file, sends what these return and feeds in what arrives.
Blocks flow in a window of ``WINDOW_BLOCKS`` unacknowledged blocks; the receiver
acknowledges a block once the node has written it (cumulative ACK = the next block it
needs), and at every session open it sends ACCEPT(first block still needed): the sender
restarts from there (the resume rule, docs/protocol.md "Files").
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from p2pchat.protocol.errors import LocalProtocolError
from p2pchat.protocol.file_crypto import blake2b_256, open_chunk, seal_chunk
from p2pchat.protocol.file_wire import (
    CHUNK_BYTES,
    CHUNK_HEADER_BYTES,
    HASH_BYTES,
    KEY_BYTES,
    TRANSFER_ID_BYTES,
    WINDOW_BLOCKS,
    ChunkHeader,
    ControlKind,
    FileControl,
    FileOffer,
    FileWireError,
    block_count,
    decode_chunk_header,
    valid_block_bytes,
)


class _Layout:
    """Sizes shared by both ends: block lengths and chunks per block."""

    def __init__(self, transfer_id: bytes, file_key: bytes, size: int, block_bytes: int) -> None:
        if len(transfer_id) != TRANSFER_ID_BYTES or len(file_key) != KEY_BYTES:
            raise ValueError("transfer id must be 16 bytes and the file key 32")
        if not valid_block_bytes(block_bytes):
            raise ValueError("block size must be a power of two from 64 KiB to 1 MiB")
        self.transfer_id = transfer_id
        self.file_key = file_key
        self.size = size
        self.block_bytes = block_bytes
        self.blocks = block_count(size, block_bytes)

    def block_len(self, index: int) -> int:
        return min(self.block_bytes, self.size - index * self.block_bytes)

    def chunks_in(self, index: int) -> int:
        return -(-self.block_len(index) // CHUNK_BYTES)


class OutgoingTransfer(_Layout):
    """The sender: which blocks the window allows, and each block's chunk messages."""

    def __init__(self, transfer_id: bytes, file_key: bytes, size: int, block_bytes: int) -> None:
        super().__init__(transfer_id, file_key, size, block_bytes)
        self.acked = 0  # blocks the receiver has verified
        self.next_to_send = 0
        # The end of the furthest window ever sent, over restarts: after an ACCEPT from
        # an earlier block, the receiver may still ACK blocks of the window before it
        # (their chunks were on the way), and such an ACK must count, not be refused.
        self.sent_high = 0

    @property
    def done_sending(self) -> bool:
        """Every block acknowledged (the node then waits for DONE)."""
        return self.acked == self.blocks

    def on_accept(self, first_block: int) -> None:
        """ACCEPT(first): (re)start from the receiver's first missing block."""
        if not 0 <= first_block <= self.blocks:
            raise FileWireError(f"accept from block {first_block}", code="file-bad-control")
        self.acked = self.next_to_send = first_block

    def on_ack(self, verified: int) -> None:
        """ACK(verified), cumulative. One for a block never sent is refused; one past
        the restarted window but sent before the restart moves it on."""
        if verified > max(self.next_to_send, self.sent_high):
            raise FileWireError(f"ack of unsent block {verified - 1}", code="file-bad-control")
        self.acked = max(self.acked, verified)  # an older ACK says nothing new
        self.next_to_send = max(self.next_to_send, self.acked)

    def blocks_to_send(self) -> list[int]:
        """The blocks the window allows now; they count as sent from this call on."""
        end = min(self.acked + WINDOW_BLOCKS, self.blocks)
        indexes = list(range(self.next_to_send, end))
        self.next_to_send = max(self.next_to_send, end)
        self.sent_high = max(self.sent_high, self.next_to_send)
        return indexes

    def chunks_of(self, block_index: int, plaintext_block: bytes) -> list[bytes]:
        """The chunk messages of one block; the last carries the block hash after its data."""
        if not 0 <= block_index < self.blocks:
            raise LocalProtocolError(f"no block {block_index} in this file")
        if len(plaintext_block) != self.block_len(block_index):
            raise LocalProtocolError(
                f"block {block_index} must be {self.block_len(block_index)} bytes"
            )
        count = self.chunks_in(block_index)
        messages = []
        for chunk in range(count):
            last = chunk == count - 1
            data = plaintext_block[chunk * CHUNK_BYTES : (chunk + 1) * CHUNK_BYTES]
            if last:
                data += blake2b_256(plaintext_block)
            header = ChunkHeader(self.transfer_id, block_index, chunk, last).encode()
            messages.append(
                seal_chunk(self.file_key, header, self.transfer_id, block_index, chunk, data)
            )
        return messages


@dataclass(frozen=True)
class ChunkOutcome:
    """What one chunk did (a refused chunk raises instead)."""

    index: int  # its block


@dataclass(frozen=True)
class ChunkStored(ChunkOutcome):
    """Kept; its block is not complete yet."""


@dataclass(frozen=True)
class ChunkDuplicate(ChunkOutcome):
    """Already had (a resend, e.g. after a lost ACK): nothing changed."""


@dataclass(frozen=True)
class BlockReady(ChunkOutcome):
    """It completed a block whose hash matched: the node writes ``data`` at
    ``index * block_bytes`` and then calls ``block_written(index)``."""

    data: bytes


class IncomingTransfer(_Layout):
    """The receiver: authenticates chunks, assembles blocks (only those in the window,
    so at most ``WINDOW_BLOCKS * block_bytes`` in memory) and checks each block's hash."""

    def __init__(
        self,
        transfer_id: bytes,
        offer: FileOffer,
        *,
        verified_blocks: int = 0,
    ) -> None:
        super().__init__(transfer_id, offer.file_key, offer.size, offer.block_bytes)
        if not 0 <= verified_blocks <= self.blocks:
            raise ValueError(f"verified blocks must be 0 to {self.blocks}")
        self.file_hash = offer.file_hash
        self.verified = verified_blocks  # blocks written and verified, from the start
        self._parts: dict[int, dict[int, bytes]] = {}  # block -> chunk -> plaintext
        self._hashes: dict[int, bytes] = {}  # block -> the hash its last chunk carried
        self._ready: set[int] = set()  # handed to the node, not yet written
        self._written: set[int] = set()  # written past a gap (cannot happen in order)

    @property
    def complete(self) -> bool:
        return self.verified == self.blocks

    @property
    def buffered_bytes(self) -> int:
        return sum(len(c) for chunks in self._parts.values() for c in chunks.values())

    def accept(self) -> FileControl:
        """ACCEPT(first block still needed), at accept and at every session open: drops the
        partial blocks, since the sender restarts from that block."""
        self._parts.clear()
        self._hashes.clear()
        self._ready.clear()
        self._written.clear()
        return FileControl(ControlKind.ACCEPT, self.transfer_id, self.verified)

    def receive_chunk(self, data: bytes) -> ChunkOutcome:
        """One chunk message. Raises only ``FileWireError`` (codes in docs/protocol.md)."""
        header = decode_chunk_header(data)
        if header.transfer_id != self.transfer_id:
            raise FileWireError("file chunk of another transfer", code="file-wrong-transfer")
        block, chunk = header.block, header.chunk
        if block >= self.blocks or chunk >= self.chunks_in(block):
            raise FileWireError(f"no chunk {block}/{chunk} in this file", code="file-bad-chunk")
        if header.last != (chunk == self.chunks_in(block) - 1):
            raise FileWireError(f"chunk {block}/{chunk}: wrong last flag", code="file-bad-chunk")
        if block < self.verified or block in self._ready or block in self._written:
            return ChunkDuplicate(block)
        if block >= self.verified + WINDOW_BLOCKS:
            raise FileWireError(f"block {block} is past the window", code="file-out-of-window")
        parts = self._parts.get(block, {})
        if chunk in parts:
            return ChunkDuplicate(block)
        plain = open_chunk(
            self.file_key,
            data[:CHUNK_HEADER_BYTES],
            self.transfer_id,
            block,
            chunk,
            data[CHUNK_HEADER_BYTES:],
        )
        want = self._chunk_len(block, chunk) + (HASH_BYTES if header.last else 0)
        if len(plain) != want:
            raise FileWireError(f"chunk {block}/{chunk} of the wrong length", code="file-bad-chunk")
        if header.last:
            self._hashes[block] = plain[-HASH_BYTES:]
            plain = plain[:-HASH_BYTES]
        parts[chunk] = plain
        self._parts[block] = parts
        if len(parts) < self.chunks_in(block):
            return ChunkStored(block)
        return self._finish(block)

    def block_written(self, index: int) -> FileControl:
        """The node wrote (and fsync'ed) a ready block: the cumulative ACK to send."""
        if index not in self._ready:
            raise LocalProtocolError(f"block {index} was not ready")
        self._ready.discard(index)
        self._written.add(index)
        while self.verified in self._written:
            self._written.discard(self.verified)
            self.verified += 1
        return FileControl(ControlKind.ACK, self.transfer_id, self.verified)

    def whole_hash_ok(self, digest: bytes) -> bool:
        """The node's BLAKE2b-256 of the whole written file against the offer's."""
        return hmac.compare_digest(digest, self.file_hash)

    def _chunk_len(self, block: int, chunk: int) -> int:
        return min(CHUNK_BYTES, self.block_len(block) - chunk * CHUNK_BYTES)

    def _finish(self, block: int) -> ChunkOutcome:
        parts = self._parts.pop(block)
        expected = self._hashes.pop(block)
        data = b"".join(parts[i] for i in range(len(parts)))
        if not hmac.compare_digest(blake2b_256(data), expected):
            raise FileWireError(f"block {block} fails its hash", code="file-bad-block-hash")
        self._ready.add(block)
        return BlockReady(block, data)
