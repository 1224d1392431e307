"""The store's security musts, checked on the real files: nothing plaintext at
rest, a wrong passphrase is silent and touches nothing, no-history means no bodies."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from p2pchat.store import (
    DEFAULT_KDF_LIMITS,
    DeliveryState,
    Direction,
    KdfLimits,
    Profile,
    StoredMessage,
    WrongPassphrase,
    contact_conversation_id,
    create_profile,
    open_profile,
)

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "correct horse battery staple"
MARKER = "QZX-marker-body-7f3a9"
NAME = "Wilhelmina-Distinct"
CONTACT_NAME = "Bartholomew-Contact"
PEER = contact_conversation_id(b"\xbb" * 32)


def distinctive_seed() -> bytes:
    return hashlib.sha256(b"p2pchat store test seed").digest()


def message(n: int, body: str = MARKER) -> StoredMessage:
    return StoredMessage(
        message_id=n.to_bytes(16, "big"),
        conversation_id=PEER,
        direction=Direction.OUT,
        sender=NAME,
        timestamp_ms=n,
        body=f"{body} number {n}",
        delivery=DeliveryState.SENT,
    )


def new_profile(data_dir: Path, *, keep_history: bool = True) -> Profile:
    return create_profile(
        data_dir,
        PASSPHRASE,
        name=NAME,
        identity_seed=distinctive_seed(),
        keep_history=keep_history,
        kdf_limits=FAST,
    )


def snapshot(data_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir.iterdir()}


def assert_no_secrets_on_disk(data_dir: Path, *secrets: bytes) -> None:
    files = list(data_dir.iterdir())
    assert files
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret not in content, f"{secret!r} found in {path.name}"


def secrets() -> list[bytes]:
    return [
        MARKER.encode(),
        MARKER.encode("utf-16-le"),
        NAME.encode(),
        CONTACT_NAME.encode(),
        distinctive_seed(),
        b"SQLite format 3",
    ]


# -- wrong passphrase --------------------------------------------------------


def test_wrong_passphrase_is_silent_and_changes_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "p"
    with new_profile(data_dir) as profile:
        profile.add_message(message(1))
    before = snapshot(data_dir)
    capfd.readouterr()

    with pytest.raises(WrongPassphrase) as raised:
        open_profile(data_dir, "wrong", kdf_limits=FAST)

    captured = capfd.readouterr()  # file descriptors 1 and 2, C-level writes included
    assert captured.err == ""
    assert captured.out == ""
    assert snapshot(data_dir) == before
    line = raised.value.user_message
    assert line.startswith(f"wrong passphrase for profile at {data_dir / 'profile.db'}")
    assert "try again" in line
    assert "\n" not in line
    assert str(raised.value) == line


def test_wrong_passphrase_with_live_wal_changes_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The node is running (WAL and SHM exist, uncheckpointed) when someone
    # tries the wrong passphrase, e.g. from `p2pchat history`.
    data_dir = tmp_path / "p"
    with new_profile(data_dir) as profile:
        for n in range(50):
            profile.add_message(message(n))
        assert {"profile.db-wal", "profile.db-shm"} <= set(os.listdir(data_dir))
        before = snapshot(data_dir)
        capfd.readouterr()
        with pytest.raises(WrongPassphrase):
            open_profile(data_dir, "wrong", kdf_limits=FAST)
        assert capfd.readouterr().err == ""
        assert snapshot(data_dir) == before
        assert len(profile.messages(PEER)) == 50


def test_wrong_passphrase_after_crash_leaves_wal_alone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A node killed mid-run leaves -wal/-shm behind; a wrong passphrase must not
    # recover, checkpoint or delete them.
    data_dir = tmp_path / "p"
    new_profile(data_dir).close()
    script = f"""
import os
from p2pchat.store import *
p = open_profile({str(data_dir)!r}, {PASSPHRASE!r}, kdf_limits=KdfLimits(1, 8192))
for n in range(20):
    p.add_message(StoredMessage(n.to_bytes(16, "big"), "guest:x", Direction.IN, "x", n,
                                "crash", DeliveryState.DELIVERED))
os._exit(0)  # no close: like SIGKILL
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (data_dir / "profile.db-wal").stat().st_size > 0
    before = snapshot(data_dir)
    capfd.readouterr()
    with pytest.raises(WrongPassphrase):
        open_profile(data_dir, "wrong", kdf_limits=FAST)
    assert capfd.readouterr().err == ""
    assert snapshot(data_dir) == before
    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as recovered:
        assert len(recovered.messages("guest:x")) == 20  # the right key recovers it


def test_wrong_kdf_limits_look_like_a_wrong_passphrase(tmp_path: Path) -> None:
    data_dir = tmp_path / "p"
    new_profile(data_dir).close()
    with pytest.raises(WrongPassphrase):
        open_profile(data_dir, PASSPHRASE, kdf_limits=KdfLimits(opslimit=2, memlimit=8192))


# -- nothing plaintext at rest -------------------------------------------------


def test_no_plaintext_at_rest(tmp_path: Path) -> None:
    from p2pchat.store import Contact, TrustState

    data_dir = tmp_path / "p"
    profile = new_profile(data_dir)
    profile.upsert_contact(Contact(b"\xbb" * 32, CONTACT_NAME, TrustState.ACCEPTED, False, 1))
    for n in range(200):
        profile.add_message(message(n))
    profile.enqueue_outbox(b"\x01" * 16, PEER, MARKER + " queued", created_ms=1)
    # Open connection: the WAL holds the recent pages.
    assert (data_dir / "profile.db-wal").stat().st_size > 0
    assert_no_secrets_on_disk(data_dir, *secrets())
    profile.close()
    assert_no_secrets_on_disk(data_dir, *secrets())
    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as reopened:
        assert len(reopened.search(MARKER.split("-")[0])) == 50  # default search limit


def test_plain_sqlite_cannot_read_the_profile(tmp_path: Path) -> None:
    data_dir = tmp_path / "p"
    with new_profile(data_dir) as profile:
        profile.add_message(message(1))
    plain = sqlite3.connect(data_dir / "profile.db")
    try:
        with pytest.raises(sqlite3.DatabaseError):
            plain.execute("SELECT * FROM sqlite_master").fetchall()
    finally:
        plain.close()


# -- no-history mode -----------------------------------------------------------


def test_no_history_never_writes_bodies(tmp_path: Path) -> None:
    data_dir = tmp_path / "p"
    profile = new_profile(data_dir, keep_history=False)
    assert not profile.settings.keep_history
    first = message(1)
    assert profile.add_message(first)
    assert not profile.add_message(first)  # de-dup still works, in memory
    for n in range(2, 200):
        assert profile.add_message(message(n))
    assert profile.enqueue_outbox(b"\x01" * 16, PEER, MARKER + " queued", created_ms=1)
    assert [e.body for e in profile.pending_outbox(PEER)] == [MARKER + " queued"]
    assert profile.bump_outbox_attempts(b"\x01" * 16) == 1
    assert profile.messages(PEER) == []
    assert profile.search("QZX") == []
    assert not profile.mark_delivered(first.message_id)
    assert_no_secrets_on_disk(data_dir, *secrets())
    profile.close()
    assert_no_secrets_on_disk(data_dir, *secrets())

    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as reopened:
        assert reopened.pending_outbox(PEER) == []  # documented: lost on restart
        assert reopened.messages(PEER) == []


def test_switching_history_off_moves_outbox_to_memory(tmp_path: Path) -> None:
    data_dir = tmp_path / "p"
    profile = new_profile(data_dir)
    kept = message(1, body="kept")
    profile.add_message(kept)
    profile.enqueue_outbox(b"\x01" * 16, PEER, "queued", created_ms=1)
    profile.enqueue_outbox(b"\x02" * 16, PEER, "queued too", created_ms=2)

    profile.set_keep_history(False)
    assert [e.body for e in profile.pending_outbox(PEER)] == ["queued", "queued too"]
    assert profile.add_message(message(2))  # not stored
    assert not profile.add_message(kept)  # already in history: still a duplicate
    assert profile.messages(PEER) == [kept]  # history stays readable
    assert profile.remove_outbox(b"\x02" * 16)
    profile.close()

    profile = open_profile(data_dir, PASSPHRASE, kdf_limits=FAST)
    assert profile.pending_outbox(PEER) == []
    profile.enqueue_outbox(b"\x03" * 16, PEER, "back to disk", created_ms=3)
    profile.set_keep_history(True)
    profile.close()
    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as reopened:
        assert [e.body for e in reopened.pending_outbox(PEER)] == ["back to disk"]


def test_message_seen_with_history_off_stays_a_duplicate_when_turned_on(
    tmp_path: Path,
) -> None:
    with new_profile(tmp_path / "p", keep_history=False) as profile:
        seen = message(1)
        assert profile.add_message(seen)
        profile.set_keep_history(True)
        assert not profile.add_message(seen)  # shown once already this session
        assert profile.add_message(message(2))


# -- the real KDF ----------------------------------------------------------------


def test_default_kdf_limits_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "p"
    with create_profile(data_dir, PASSPHRASE, name=NAME, identity_seed=distinctive_seed()):
        pass
    with open_profile(data_dir, PASSPHRASE) as profile:
        assert profile.identity.seed == distinctive_seed()
    with pytest.raises(WrongPassphrase):
        open_profile(data_dir, PASSPHRASE, kdf_limits=FAST)
    assert DEFAULT_KDF_LIMITS != FAST
