"""DeliveryMarks on a real profile: SENT marks and receipts written behind, in one
transaction, and receipts told apart at once (issue 11)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.node.delivery_marks import DeliveryMarks
from p2pchat.store import KdfLimits, Profile, create_profile
from p2pchat.store.records import DeliveryState, Direction, StoredMessage

FAST = KdfLimits(opslimit=1, memlimit=8192)


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Profile]:
    with create_profile(
        tmp_path / "p", "pw", name="alice", identity_seed=bytes(32), kdf_limits=FAST
    ) as opened:
        yield opened


def queue(profile: Profile, n: int, conversation: str = "c:bob") -> bytes:
    message_id = n.to_bytes(16, "big")
    with profile.batch():
        profile.enqueue_outbox(message_id, conversation, f"m{n}", created_ms=n)
        profile.add_message(
            StoredMessage(message_id, conversation, Direction.OUT, "alice", n, f"m{n}",
                          DeliveryState.PENDING)
        )  # fmt: skip
    return message_id


async def test_marks_are_written_together_after_the_delay(profile: Profile) -> None:
    marks = DeliveryMarks(profile, delay=0.05)
    ids = [queue(profile, n) for n in range(3)]
    for message_id in ids:
        marks.mark_sent(message_id)
    assert marks.take_receipt(ids[0], "c:bob")
    assert not marks.take_receipt(ids[0], "c:bob")  # the same receipt again: not news
    assert not marks.take_receipt(ids[1], "c:carol")  # not carol's to give
    assert [m.delivery for m in profile.messages("c:bob")] == [DeliveryState.PENDING] * 3
    await asyncio.sleep(0.2)
    assert [m.delivery for m in profile.messages("c:bob")] == [
        DeliveryState.DELIVERED, DeliveryState.SENT, DeliveryState.SENT,
    ]  # fmt: skip
    assert [e.message_id for e in profile.pending_outbox("c:bob")] == ids[1:]
    assert not marks.take_receipt(ids[0], "c:bob")  # delivered and gone from the outbox


async def test_flush_writes_at_once_and_a_crash_before_it_only_loses_marks(
    profile: Profile,
) -> None:
    marks = DeliveryMarks(profile, delay=60)
    message_id = queue(profile, 7)
    marks.mark_sent(message_id)
    assert marks.take_receipt(message_id, "c:bob")
    # A crash now: nothing written, the message is still queued (it will be sent again).
    assert [e.message_id for e in profile.pending_outbox("c:bob")] == [message_id]
    marks.flush()
    assert profile.pending_outbox("c:bob") == []
    stored = profile.get_message(message_id)
    assert stored is not None
    assert stored.delivery is DeliveryState.DELIVERED
