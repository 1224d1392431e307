"""The receiving end of a transfer under random, repeated, reordered and mutated chunks
and session restarts (profile: tests/fuzz/conftest.py).

Whatever arrives: only ``FileWireError`` with a documented code escapes, memory stays
within the window, and every block handed to the node is the sender's block.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from p2pchat.protocol.file_crypto import blake2b_256
from p2pchat.protocol.file_transfer import (
    BlockReady,
    ChunkDuplicate,
    ChunkStored,
    IncomingTransfer,
    OutgoingTransfer,
)
from p2pchat.protocol.file_wire import WINDOW_BLOCKS, FileOffer, FileWireError
from tests.fuzz.mutations import mutated
from tests.fuzz.test_file_decoders import CODES

MACHINES = settings.get_profile("p2pchat-fuzz-machines")
TID = bytes(range(0x10, 0x20))
BLOCK = 131_072  # two chunks a block
SIZE = 4 * BLOCK + 777  # 5 blocks: block 4 is past the first window
DATA = bytes((13 * i + 1) % 251 for i in range(SIZE))
OFFER = FileOffer(SIZE, BLOCK, blake2b_256(DATA), bytes([7] * 32), "", "f.bin")
_SENDER = OutgoingTransfer(TID, OFFER.file_key, SIZE, BLOCK)
BLOCKS = [DATA[i * BLOCK : (i + 1) * BLOCK] for i in range(_SENDER.blocks)]
CHUNKS = [_SENDER.chunks_of(i, block) for i, block in enumerate(BLOCKS)]
ALL = [(b, c) for b, chunks in enumerate(CHUNKS) for c in range(len(chunks))]


class ReceiverUnderFire(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.inc = IncomingTransfer(TID, OFFER)
        self.ready: list[int] = []

    def feed(self, data: bytes) -> None:
        try:
            outcome = self.inc.receive_chunk(data)
        except FileWireError as exc:
            assert exc.code in CODES, exc.code  # noqa: PT017
            return
        if isinstance(outcome, BlockReady):
            assert outcome.data == BLOCKS[outcome.index]
            assert outcome.index not in self.ready
            self.ready.append(outcome.index)
        else:
            assert isinstance(outcome, ChunkStored | ChunkDuplicate)

    @rule(which=st.sampled_from(ALL))
    def genuine(self, which: tuple[int, int]) -> None:
        block, chunk = which
        self.feed(CHUNKS[block][chunk])

    @rule(data=st.data())
    def mutant(self, data: st.DataObject) -> None:
        block, chunk = data.draw(st.sampled_from(ALL))
        self.feed(data.draw(mutated(CHUNKS[block][chunk])))

    @rule(junk=st.binary(max_size=64))
    def junk(self, junk: bytes) -> None:
        self.feed(junk)

    @rule()
    def write_one(self) -> None:
        if self.ready:
            index = self.ready.pop(0)
            before = self.inc.verified
            ack = self.inc.block_written(index)
            assert ack.value >= before

    @rule()
    def session_restart(self) -> None:
        """A new session: what was verified survives, partial and unwritten blocks go."""
        self.inc = IncomingTransfer(TID, OFFER, verified_blocks=self.inc.verified)
        assert self.inc.accept().value == self.inc.verified
        self.ready = []

    @invariant()
    def bounded(self) -> None:
        if hasattr(self, "inc"):
            assert self.inc.buffered_bytes <= WINDOW_BLOCKS * BLOCK
            assert 0 <= self.inc.verified <= self.inc.blocks


ReceiverUnderFire.TestCase.settings = settings(MACHINES)
test_receiver_under_fire = ReceiverUnderFire.TestCase
