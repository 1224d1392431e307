"""WAL checkpoints on their own thread (p2pchat/store/checkpointer.py), on a real
SQLCipher profile: the node's commits never copy the WAL into the database file;
the thread does, while the writer goes on."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.store import KdfLimits, Profile, StoredMessage, create_profile, open_profile
from p2pchat.store.records import DeliveryState, Direction

FAST = KdfLimits(opslimit=1, memlimit=8192)
PAGE = 4096
SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, which a commit would act on


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Profile]:
    with create_profile(
        tmp_path / "p", "pw", name="me", identity_seed=bytes(32), kdf_limits=FAST
    ) as opened:
        yield opened


def store_messages(profile: Profile, count: int) -> list[bytes]:
    """``count`` commits as the node makes them (one per send)."""
    ids = []
    for i in range(count):
        message_id = os.urandom(16)
        with profile.batch():
            profile.enqueue_outbox(message_id, "guest:g", "y" * 100, created_ms=i)
            profile.add_message(
                StoredMessage(
                    message_id, "guest:g", Direction.OUT, "me", i, "y" * 100, DeliveryState.PENDING
                )
            )
        ids.append(message_id)
    return ids


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def wait_until_grown(path: Path, than: int) -> None:
    deadline = time.monotonic() + 30  # a deadline for a hung thread, not a speed goal
    while size(path) <= than:
        assert time.monotonic() < deadline, f"{path.name} never grew past {than} bytes"
        time.sleep(0.02)


def test_commits_leave_the_wal_to_the_thread(profile: Profile) -> None:
    database, wal = profile.paths.database, profile.paths.wal
    checkpointer = profile.start_background_checkpoints()
    checkpointer.stop()  # no thread: what the commits alone do
    before = size(database)
    store_messages(profile, 300)  # a few pages each: past 1000 pages
    # No commit checkpointed: the WAL grew past where SQLite would have wrapped it,
    # and nothing reached the database file.
    assert size(wal) > SQLITE_AUTOCHECKPOINT_PAGES * PAGE
    assert size(database) == before


def test_the_thread_copies_the_wal_while_the_writer_goes_on(tmp_path: Path) -> None:
    profile = create_profile(
        tmp_path / "p", "pw", name="me", identity_seed=bytes(32), kdf_limits=FAST
    )
    checkpointer = profile.start_background_checkpoints()
    before = size(profile.paths.database)
    ids = store_messages(profile, 300)
    wait_until_grown(profile.paths.database, before)
    ids += store_messages(profile, 50)  # the writer is not held up by the checkpointer
    checkpointer.stop()
    profile.close()
    # Every message is there after a reopen (WAL and file together), none twice.
    with open_profile(tmp_path / "p", "pw", kdf_limits=FAST) as reopened:
        assert [reopened.get_message(i) is not None for i in ids] == [True] * len(ids)
        assert len(reopened.messages("guest:g", limit=1000)) == len(ids)


def test_stop_is_prompt_and_closes_its_connection(profile: Profile) -> None:
    checkpointer = profile.start_background_checkpoints()
    checkpointer.stop()
    assert not checkpointer._thread.is_alive()
    with pytest.raises(Exception, match="closed"):
        checkpointer._conn.execute("SELECT 1")
