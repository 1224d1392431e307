"""The long fuzz run of the file decoders (profile: tests/fuzz/conftest.py).

Arbitrary bytes and genuine encodings mutated: the answer is a value or a
``FileWireError`` with a documented code, nothing else; a decoded value re-encodes to
exactly the input (one spelling per object); a mutated chunk never yields data.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.protocol.file_crypto import blake2b_256
from p2pchat.protocol.file_transfer import (
    BlockReady,
    ChunkStored,
    IncomingTransfer,
    OutgoingTransfer,
)
from p2pchat.protocol.file_wire import (
    ControlKind,
    FileControl,
    FileOffer,
    FileWireError,
    decode_chunk_header,
    decode_control,
    decode_offer,
)
from tests.fuzz.mutations import mutated

FUZZ = settings.get_profile("p2pchat-fuzz-decoders")
# The codes, as documented in docs/protocol.md ("Files").
CODES = {
    "file-version", "file-bad-offer", "file-bad-control", "file-bad-chunk",
    "file-wrong-transfer", "file-out-of-window", "file-bad-ciphertext", "file-bad-block-hash",
}  # fmt: skip
TID = bytes(range(16))
SIZE = 65_536 + 500  # block 0: one full chunk; block 1: one short chunk
DATA = bytes((7 * i + 3) % 256 for i in range(SIZE))
OFFER = FileOffer(SIZE, 65_536, blake2b_256(DATA), bytes([5] * 32), "text/plain", "Grüße ✓.txt")
CONTROL = FileControl(ControlKind.FAIL, TID, 3, "hash ✗")
_SENDER = OutgoingTransfer(TID, OFFER.file_key, SIZE, 65_536)
FULL = _SENDER.chunks_of(0, DATA[:65_536])[0]
SHORT = _SENDER.chunks_of(1, DATA[65_536:])[0]


@FUZZ
@given(st.binary(max_size=400) | mutated(OFFER.encode()) | st.just(OFFER.encode()))
def test_offer_decoder(data: bytes) -> None:
    try:
        offer = decode_offer(data)
    except FileWireError as exc:
        assert exc.code in CODES, exc.code  # noqa: PT017
        return
    assert offer.encode() == data


@FUZZ
@given(st.binary(max_size=300) | mutated(CONTROL.encode()) | st.just(CONTROL.encode()))
def test_control_decoder(data: bytes) -> None:
    try:
        control = decode_control(data)
    except FileWireError as exc:
        assert exc.code in CODES, exc.code  # noqa: PT017
        return
    assert control.encode() == data


@FUZZ
@given(st.binary(max_size=100) | mutated(SHORT) | mutated(FULL) | st.sampled_from([SHORT, FULL]))
def test_chunk_decoder_and_receiver(data: bytes) -> None:
    try:
        header = decode_chunk_header(data)
    except FileWireError as exc:
        assert exc.code in CODES, exc.code  # noqa: PT017
    else:
        assert header.encode() == data[:24]
    receiver = IncomingTransfer(TID, OFFER)
    try:
        outcome = receiver.receive_chunk(data)
    except FileWireError as exc:
        assert exc.code in CODES, exc.code  # noqa: PT017
        assert receiver.buffered_bytes == 0
        return
    assert data in (SHORT, FULL)  # nothing else authenticates
    assert isinstance(outcome, BlockReady | ChunkStored)
