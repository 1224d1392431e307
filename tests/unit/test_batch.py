"""Batches: several sealed frames in one channel message (protocol/batch.py, PeerLink)."""

from __future__ import annotations

import asyncio
import random

import pytest

from p2pchat.crypto.envelope import LanEnvelopes, LinkEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.stream import OVERHEAD_BYTES
from p2pchat.node.links import GuestLink
from p2pchat.protocol.batch import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    MAX_ITEM_BYTES,
    SEND_TARGET_BYTES,
    SEND_TARGET_ITEMS,
    Batcher,
    BatchError,
    decode_batch,
    encode_batch,
)
from p2pchat.protocol.errors import RemoteProtocolError
from p2pchat.protocol.events import (
    Event,
    MessageReceived,
    PingReceived,
    ReceiptReceived,
    SessionClosed,
    SessionOpened,
)
from p2pchat.protocol.frames import MAX_BODY_BYTES
from p2pchat.protocol.session import Role, Session, SessionState

NOW = 1_700_000_000_000


def pair(a_batch: bool = True, b_batch: bool = True) -> tuple[Session, Session]:
    alice, bob = Identity.generate(), Identity.generate()
    a = Session(Role.INITIATOR, LanEnvelopes(alice, bob.public_key, ReplayGuard()), batch=a_batch)
    b = Session(Role.RESPONDER, LanEnvelopes(bob, alice.public_key, ReplayGuard()), batch=b_batch)
    b.receive_offer(a.make_offer("v=0 offer", NOW, {"name": "alice"}), NOW)
    a.receive_answer(b.make_answer("v=0 answer", NOW, {"name": "bob"}), NOW)
    a.receive_data(b.stream_header(), NOW)
    b.receive_data(a.stream_header(), NOW)
    assert a.state is b.state is SessionState.OPEN
    return a, b


def test_both_announce_then_batches_flow_in_order() -> None:
    a, b = pair()
    assert a.peer_info["batch"] == b.peer_info["batch"] == "1"
    assert a.batching
    assert b.batching
    sent = [a.send_text(f"m{i}", NOW + i) for i in range(5)]
    ping_id, ping = a.send_ping(NOW)
    items = [data for _, data in sent] + [ping, a.close(NOW)]
    events = b.receive_data(encode_batch(items), NOW)
    assert events == [
        *(MessageReceived(mid, NOW + i, f"m{i}") for i, (mid, _) in enumerate(sent)),
        PingReceived(ping_id),
        SessionClosed(),
    ]
    assert b.state is SessionState.CLOSED


@pytest.mark.parametrize(("a_batch", "b_batch"), [(True, False), (False, True), (False, False)])
def test_a_peer_from_before_batches_gets_one_frame_per_message(
    a_batch: bool, b_batch: bool
) -> None:
    a, b = pair(a_batch, b_batch)
    assert not a.batching
    assert not b.batching
    mid, data = a.send_text("plain", NOW)
    assert b.receive_data(data, NOW) == [MessageReceived(mid, NOW, "plain")]
    assert a.receive_data(b.send_receipt(mid, NOW), NOW) == [ReceiptReceived(mid)]


def test_codec_round_trip_at_the_bounds() -> None:
    items = [bytes([i % 256]) * (OVERHEAD_BYTES + i) for i in range(40)]
    assert decode_batch(encode_batch(items)) == items
    biggest = bytes(MAX_ITEM_BYTES)
    assert decode_batch(encode_batch([biggest])) == [biggest]  # a 64 KiB frame goes alone
    smallest = [bytes(OVERHEAD_BYTES)] * MAX_BATCH_ITEMS
    assert decode_batch(encode_batch(smallest)) == smallest
    with pytest.raises(ValueError, match="at least one"):
        encode_batch([])
    with pytest.raises(ValueError, match="bounds"):
        encode_batch([bytes(OVERHEAD_BYTES)] * (MAX_BATCH_ITEMS + 1))


def _length(n: int) -> bytes:
    return n.to_bytes(4, "big")


ONE = bytes(OVERHEAD_BYTES)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # empty
        b"\x00\x00\x00",  # ends inside a length
        _length(OVERHEAD_BYTES - 1) + bytes(OVERHEAD_BYTES - 1),  # item too short
        _length(MAX_ITEM_BYTES + 1) + bytes(MAX_ITEM_BYTES + 1),  # item too long
        _length(40) + ONE,  # runs past the end
        _length(OVERHEAD_BYTES) + ONE + b"\x00",  # trailing byte
        (_length(OVERHEAD_BYTES) + ONE) * (MAX_BATCH_ITEMS + 1),  # too many items
        bytes(MAX_BATCH_BYTES + 1),  # too big
    ],
    ids=["empty", "cut-length", "short", "long", "past-end", "trailing", "many", "big"],
)
def test_malformed_batches_are_bad_batch(data: bytes) -> None:
    with pytest.raises(BatchError) as info:
        decode_batch(data)
    assert info.value.code == "bad-batch"
    _, b = pair()
    with pytest.raises(RemoteProtocolError) as info2:
        b.receive_data(data, NOW)
    assert info2.value.code == "bad-batch"


def test_frames_after_close_in_a_batch_are_refused() -> None:
    a, b = pair()
    closing = a.close(NOW)
    later = a._sender.seal(b"\x01\x03" + bytes(24))  # a PING after the end: only a forger
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(encode_batch([closing, later]), NOW)
    assert info.value.code == "bad-batch"


def test_batcher_splits_at_its_targets() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    batcher, sent, items = Batcher(), [], []
    for _ in range(2000):
        item = rng.randbytes(rng.choice([OVERHEAD_BYTES, 100, 3000, MAX_ITEM_BYTES]))
        items.append(item)
        sent += batcher.add(item)
    last = batcher.flush()
    assert last is not None
    assert batcher.flush() is None
    sent.append(last)
    split = [decode_batch(batch) for batch in sent]
    assert [item for batch in split for item in batch] == items, f"seed {seed}"
    for batch, data in zip(split, sent, strict=True):
        assert len(batch) <= SEND_TARGET_ITEMS, f"seed {seed}"
        # Over the byte target only when one item alone is bigger than it.
        assert len(data) <= SEND_TARGET_BYTES or len(batch) == 1, f"seed {seed}"


# -- PeerLink: what reaches the channel -------------------------------------------------


class RecordingChannel:
    """A relay channel that keeps what was sent, in order."""

    close_reason: str | None = None

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def async_drain(self) -> None:
        return None

    async def async_close(self) -> None:
        return None


def open_guest_link(*, guest_batch: bool = True) -> tuple[GuestLink, Session, RecordingChannel]:
    """An owner's GuestLink on a recording relay, opened by a guest Session."""
    key = LinkSecret.generate().envelope_key
    guest = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()), batch=guest_batch)
    owner = Session(Role.RESPONDER, LinkEnvelopes(key, ReplayGuard()))
    owner.receive_offer(guest.make_offer("v=0", NOW, {}), NOW)
    guest.receive_answer(owner.make_answer("v=0", NOW, {}), NOW)
    relay = RecordingChannel()
    events: list[Event] = []
    link = GuestLink(
        b"g" * 16, owner, relay,
        on_event=lambda _link, event: events.append(event), on_closed=lambda _l, _r: None,
    )  # fmt: skip
    link.feed_relay(guest.stream_header())
    assert guest.receive_data(relay.sent.pop(0), NOW) == [SessionOpened()]
    assert link.state == "open"
    return link, guest, relay


async def test_a_lone_message_goes_out_in_the_same_loop_turn() -> None:
    link, guest, relay = open_guest_link()
    mid, data = link.session.send_text("alone", NOW)
    link.send(data)
    await asyncio.sleep(0)  # one loop turn: the flush queued by send has run
    assert len(relay.sent) == 1
    assert guest.receive_data(relay.sent[0], NOW) == [MessageReceived(mid, NOW, "alone")]
    link.close("done")


async def test_a_turn_of_sends_is_one_channel_message() -> None:
    link, guest, relay = open_guest_link()
    mids = []
    for i in range(SEND_TARGET_ITEMS + 3):  # one more than a batch holds: split in two
        mid, data = link.session.send_text(f"m{i}", NOW)
        link.send(data)
        mids.append(mid)
    assert len(relay.sent) == 1  # the full batch went at once, the rest waits for the turn
    await asyncio.sleep(0)
    assert len(relay.sent) == 2
    events = [e for data in relay.sent for e in guest.receive_data(data, NOW)]
    assert [e.message_id for e in events if isinstance(e, MessageReceived)] == mids
    link.close("done")


async def test_close_sends_what_is_queued_then_close_last() -> None:
    link, guest, relay = open_guest_link()
    mid, data = link.session.send_text("last words", NOW)
    link.send(data)
    link.close("bye")  # before the flush ran
    await asyncio.sleep(0)
    assert len(relay.sent) == 1
    assert guest.receive_data(relay.sent[0], NOW) == [
        MessageReceived(mid, NOW, "last words"),
        SessionClosed(),
    ]


async def test_a_big_frame_goes_alone_and_intact() -> None:
    link, guest, relay = open_guest_link()
    small_mid, small = link.session.send_text("small", NOW)
    big_mid, big = link.session.send_text("é" * (MAX_BODY_BYTES // 2), NOW)
    link.send(small)
    link.send(big)
    await asyncio.sleep(0)
    assert len(relay.sent) == 2
    events = [e for data in relay.sent for e in guest.receive_data(data, NOW)]
    assert [e.message_id for e in events if isinstance(e, MessageReceived)] == [small_mid, big_mid]
    link.close("done")


async def test_a_guest_page_from_before_batches_gets_one_frame_per_message() -> None:
    link, guest, relay = open_guest_link(guest_batch=False)
    mid, data = link.session.send_text("plain", NOW)
    link.send(data)
    assert relay.sent == [data]  # no batch, no wait
    assert guest.receive_data(relay.sent[0], NOW) == [MessageReceived(mid, NOW, "plain")]
    link.close("done")
