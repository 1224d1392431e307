"""The node's WAL checkpoints (p2pchat/wal_checkpoints.py) on a real profile: never
inside a message's commit; after an idle pause, or after MAX_WRITES commits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.store import KdfLimits, Profile, StoredMessage, create_profile
from p2pchat.store.records import DeliveryState, Direction
from p2pchat.wal_checkpoints import MAX_WRITES, WalCheckpoints

FAST = KdfLimits(opslimit=1, memlimit=8192)
PAGE = 4096
SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, which a commit would act on


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Profile]:
    with create_profile(
        tmp_path / "p", "pw", name="me", identity_seed=bytes(32), kdf_limits=FAST
    ) as opened:
        yield opened


def store_messages(profile: Profile, checkpoints: WalCheckpoints, count: int) -> None:
    """``count`` commits as the node makes them, without yielding to the loop."""
    for i in range(count):
        message_id = os.urandom(16)
        with profile.batch():
            profile.enqueue_outbox(message_id, "guest:g", "y" * 100, created_ms=i)
            profile.add_message(
                StoredMessage(
                    message_id, "guest:g", Direction.OUT, "me", i, "y" * 100, DeliveryState.PENDING
                )
            )
        checkpoints.wrote()


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def wait_until_grown(path: Path, than: int) -> None:
    for _ in range(1000):  # up to ~10 s
        if size(path) > than:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path.name} never grew past {than} bytes")


async def test_commits_leave_the_wal_alone_until_the_node_is_idle(profile: Profile) -> None:
    checkpoints = WalCheckpoints(profile, idle_s=0.05)
    database, wal = profile.paths.database, profile.paths.wal
    before = size(database)
    store_messages(profile, checkpoints, 300)  # a few pages each: past 1000 pages
    # No commit checkpointed: the WAL grew past where SQLite would have wrapped it,
    # and nothing reached the database file yet.
    assert size(wal) > SQLITE_AUTOCHECKPOINT_PAGES * PAGE
    assert size(database) == before
    await wait_until_grown(database, before)  # the idle pause checkpointed it


async def test_a_stream_without_pauses_is_checkpointed_every_max_writes(
    profile: Profile,
) -> None:
    checkpoints = WalCheckpoints(profile, idle_s=600)  # never idle long enough
    database = profile.paths.database
    before = size(database)
    store_messages(profile, checkpoints, MAX_WRITES)
    assert size(database) == before  # not inside a commit: after what runs now
    await wait_until_grown(database, before)
