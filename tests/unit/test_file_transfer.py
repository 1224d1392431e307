"""The two sans-I/O ends of a transfer: a whole transfer in memory, resume, the window,
and every refusal with its code."""

from __future__ import annotations

import os
import random

import pytest

from p2pchat.protocol.errors import LocalProtocolError
from p2pchat.protocol.file_crypto import blake2b_256, seal_chunk
from p2pchat.protocol.file_transfer import (
    BlockReady,
    ChunkDuplicate,
    ChunkStored,
    IncomingTransfer,
    OutgoingTransfer,
)
from p2pchat.protocol.file_wire import (
    CHUNK_BYTES,
    CHUNK_HEADER_BYTES,
    WINDOW_BLOCKS,
    ChunkHeader,
    ControlKind,
    FileOffer,
    FileWireError,
    wire_bytes,
)

SEED = int(os.environ.get("P2PCHAT_TEST_SEED", "1313"))
BLOCK = 65_536 * 2  # two chunks a block: keeps the test small


def make(size: int, seed: int = SEED) -> tuple[bytes, bytes, FileOffer]:
    rng = random.Random(seed)
    data = rng.randbytes(size)
    tid, key = rng.randbytes(16), rng.randbytes(32)
    offer = FileOffer(size, BLOCK, blake2b_256(data), key, "", "f.bin")
    return data, tid, offer


def block_of(data: bytes, index: int) -> bytes:
    return data[index * BLOCK : (index + 1) * BLOCK]


def run(
    data: bytes, out: OutgoingTransfer, inc: IncomingTransfer, disk: bytearray, *, stop: int
) -> None:
    """Pump blocks until ``stop`` blocks are verified or the file is done."""
    while inc.verified < min(stop, inc.blocks):
        sent = out.blocks_to_send()
        assert sent, "the window stalled"
        assert len(sent) <= WINDOW_BLOCKS
        for index in sent:
            for message in out.chunks_of(index, block_of(data, index)):
                outcome = inc.receive_chunk(message)
                if isinstance(outcome, BlockReady):
                    disk[index * BLOCK : index * BLOCK + len(outcome.data)] = outcome.data
                    assert inc.buffered_bytes <= WINDOW_BLOCKS * BLOCK
                    ack = inc.block_written(index)
                    assert ack.kind is ControlKind.ACK
                    out.on_ack(ack.value)
                else:
                    assert isinstance(outcome, ChunkStored)
            if inc.verified >= stop:
                return


@pytest.mark.parametrize("size", [0, 1, BLOCK, 5 * BLOCK + 12_345])
def test_a_whole_transfer_with_resume_from_a_middle_block(size: int) -> None:
    print(f"seed {SEED} (P2PCHAT_TEST_SEED)")
    data, tid, offer = make(size)
    out = OutgoingTransfer(tid, offer.file_key, size, BLOCK)
    inc = IncomingTransfer(tid, offer)
    disk = bytearray(size)
    out.on_accept(inc.accept().value)
    run(data, out, inc, disk, stop=3)
    # The session drops; at the next one the receiver restarts from what it verified,
    # with a new sender object (the node re-creates it from the store).
    verified = inc.verified
    inc = IncomingTransfer(tid, offer, verified_blocks=verified)
    accept = inc.accept()
    assert (accept.kind, accept.value) == (ControlKind.ACCEPT, verified)
    out = OutgoingTransfer(tid, offer.file_key, size, BLOCK)
    out.on_accept(accept.value)
    assert out.blocks_to_send()[:1] == ([verified] if verified < inc.blocks else [])
    out.on_accept(accept.value)  # the same ACCEPT again (a repeat is harmless)
    run(data, out, inc, disk, stop=inc.blocks)
    assert inc.complete
    assert out.done_sending
    assert bytes(disk) == data
    assert inc.whole_hash_ok(blake2b_256(bytes(disk)))
    assert not inc.whole_hash_ok(blake2b_256(bytes(disk) + b"x"))


def first_chunks(size: int = 5 * BLOCK) -> tuple[bytes, OutgoingTransfer, IncomingTransfer]:
    data, tid, offer = make(size)
    out = OutgoingTransfer(tid, offer.file_key, size, BLOCK)
    inc = IncomingTransfer(tid, offer)
    out.on_accept(inc.accept().value)
    return data, out, inc


def refused(inc: IncomingTransfer, message: bytes) -> str:
    with pytest.raises(FileWireError) as info:
        inc.receive_chunk(message)
    return info.value.code


def test_a_flipped_ciphertext_bit_is_refused() -> None:
    data, out, inc = first_chunks()
    first = bytearray(out.chunks_of(0, block_of(data, 0))[0])
    first[CHUNK_HEADER_BYTES + 100] ^= 0x04
    assert refused(inc, bytes(first)) == "file-bad-ciphertext"
    header_flip = bytearray(out.chunks_of(0, block_of(data, 0))[0])
    header_flip[5] ^= 0x01  # the transfer id, which is also in the AD
    assert refused(inc, bytes(header_flip)) == "file-wrong-transfer"


def test_a_wrong_key_is_refused() -> None:
    data, tid, offer = make(BLOCK)
    wrong = OutgoingTransfer(tid, bytes(32), BLOCK, BLOCK)
    inc = IncomingTransfer(tid, offer)
    assert refused(inc, wrong.chunks_of(0, data)[0]) == "file-bad-ciphertext"


def test_a_wrong_block_hash_is_refused() -> None:
    data, out, inc = first_chunks()
    block = block_of(data, 0)
    first, _ = out.chunks_of(0, block)
    assert isinstance(inc.receive_chunk(first), ChunkStored)
    header = ChunkHeader(out.transfer_id, 0, 1, True).encode()
    tail = block[CHUNK_BYTES:] + blake2b_256(b"another block")
    forged = seal_chunk(out.file_key, header, out.transfer_id, 0, 1, tail)
    assert refused(inc, forged) == "file-bad-block-hash"


def test_the_window_is_enforced_on_both_sides() -> None:
    data, out, inc = first_chunks(10 * BLOCK)
    assert out.blocks_to_send() == [0, 1, 2, 3]
    assert out.blocks_to_send() == []  # nothing more until an ACK
    # A sender ignoring the window: block 4 before block 0 is verified.
    ahead = OutgoingTransfer(out.transfer_id, out.file_key, 10 * BLOCK, BLOCK)
    assert refused(inc, ahead.chunks_of(4, block_of(data, 4))[0]) == "file-out-of-window"
    with pytest.raises(FileWireError) as info:
        out.on_ack(5)  # an ACK for blocks never sent
    assert info.value.code == "file-bad-control"
    for message in out.chunks_of(0, block_of(data, 0)):
        outcome = inc.receive_chunk(message)
    assert isinstance(outcome, BlockReady)
    out.on_ack(inc.block_written(0).value)
    assert out.blocks_to_send() == [4]
    assert isinstance(inc.receive_chunk(ahead.chunks_of(4, block_of(data, 4))[0]), ChunkStored)
    with pytest.raises(FileWireError) as info:
        out.on_accept(11)
    assert info.value.code == "file-bad-control"


def test_duplicates_and_out_of_range_chunks() -> None:
    data, out, inc = first_chunks(2 * BLOCK + 10)
    first, second = out.chunks_of(0, block_of(data, 0))
    assert isinstance(inc.receive_chunk(first), ChunkStored)
    assert inc.receive_chunk(first) == ChunkDuplicate(0)
    assert isinstance(inc.receive_chunk(second), BlockReady)
    assert inc.receive_chunk(second) == ChunkDuplicate(0)  # ready, not yet written
    inc.block_written(0)
    assert inc.receive_chunk(first) == ChunkDuplicate(0)  # verified
    with pytest.raises(LocalProtocolError):
        inc.block_written(0)
    # Block 2 is 10 bytes: one chunk; a "chunk 1" or a block 3 does not exist.
    for block, chunk, last in ((2, 1, True), (3, 0, True), (1, 0, True), (2, 0, False)):
        header = ChunkHeader(out.transfer_id, block, chunk, last).encode()
        message = seal_chunk(out.file_key, header, out.transfer_id, block, chunk, b"x")
        assert refused(inc, message) == "file-bad-chunk"
    # The right indexes but the wrong plaintext length.
    header = ChunkHeader(out.transfer_id, 2, 0, True).encode()
    short = seal_chunk(out.file_key, header, out.transfer_id, 2, 0, b"x" * 41)
    assert refused(inc, short) == "file-bad-chunk"


def test_the_sender_checks_its_own_blocks() -> None:
    data, out, _ = first_chunks(BLOCK + 1)
    with pytest.raises(LocalProtocolError):
        out.chunks_of(1, b"")
    with pytest.raises(LocalProtocolError):
        out.chunks_of(2, b"x")
    last = out.chunks_of(1, data[BLOCK:])
    assert len(last) == 1
    assert len(last[0]) == 24 + 1 + 32 + 16
    assert len(out.chunks_of(0, block_of(data, 0))[0]) == 24 + CHUNK_BYTES + 16


@pytest.mark.parametrize("size", [1, CHUNK_BYTES, BLOCK, BLOCK + 1, 3 * BLOCK + CHUNK_BYTES + 7])
def test_wire_bytes_is_what_the_chunks_of_a_file_weigh(size: int) -> None:
    """``wire_bytes`` (what ``bytes_sent_total`` counts against the file's size) equals
    the sealed chunks' total, header, tag and block hash included."""
    data, tid, offer = make(size)
    out = OutgoingTransfer(tid, offer.file_key, size, BLOCK)
    blocks = [data[i : i + BLOCK] for i in range(0, size, BLOCK)]
    sent = sum(len(c) for n, block in enumerate(blocks) for c in out.chunks_of(n, block))
    assert sent == wire_bytes(size, BLOCK), f"seed {SEED}"


def test_an_ack_sent_before_a_restart_counts_and_moves_the_window_on() -> None:
    """The receiver ACCEPTs again from block 1 (a chunk damaged on the relay) while
    chunks of blocks 1 and 2 are still on their way: its ACK(3) for them must count,
    not be refused as "unsent" (the transfer would stall: ACKs are not repeated)."""
    _, tid, offer = make(10 * BLOCK)
    out = OutgoingTransfer(tid, offer.file_key, offer.size, offer.block_bytes)
    out.on_accept(0)
    assert out.blocks_to_send() == list(range(WINDOW_BLOCKS))
    out.on_accept(1)
    out.on_ack(3)
    assert out.acked == 3
    assert out.blocks_to_send() == list(range(3, 3 + WINDOW_BLOCKS))
    with pytest.raises(FileWireError) as refused:
        out.on_ack(3 + WINDOW_BLOCKS + 1)  # never sent, before or after the restart
    assert refused.value.code == "file-bad-control"
