"""Opening what is not a usable profile: missing, corrupt, too new, older schema."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from p2pchat.store import (
    DeliveryState,
    Direction,
    KdfLimits,
    ProfileCorrupt,
    ProfileNotFound,
    ProfileTooNew,
    StoredMessage,
    WrongPassphrase,
    create_profile,
    open_profile,
)
from p2pchat.store.connection import configure, connect
from p2pchat.store.keys import derive_key
from p2pchat.store.schema import SCHEMA_VERSION, migrate, schema_version

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "pw"
SEED = bytes(32)


def make(data_dir: Path) -> None:
    create_profile(data_dir, PASSPHRASE, name="me", identity_seed=SEED, kdf_limits=FAST).close()


def test_missing_profile_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFound) as raised:
        open_profile(tmp_path / "nothing", PASSPHRASE, kdf_limits=FAST)
    assert "p2pchat init" in raised.value.user_message
    assert not (tmp_path / "nothing").exists()  # opening creates nothing


def test_missing_salt(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "profile.salt").unlink()
    with pytest.raises(ProfileCorrupt, match="salt file is missing"):
        open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST)


def test_truncated_salt(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "profile.salt").write_bytes(b"short")
    with pytest.raises(ProfileCorrupt, match="expected 16 bytes"):
        open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not whole database pages"),
        (b"hello, I am a text file\n", "not whole database pages"),
        (b"SQLite format 3\x00" + bytes(4080), "plain, unencrypted SQLite"),
    ],
)
def test_not_a_profile(tmp_path: Path, content: bytes, problem: str) -> None:
    make(tmp_path)
    (tmp_path / "profile.db").write_bytes(content)
    with pytest.raises(ProfileCorrupt, match=problem) as raised:
        open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST)
    assert raised.value.user_message.startswith("cannot open profile file")


def test_random_pages_read_as_wrong_passphrase(tmp_path: Path) -> None:
    # Encrypted garbage and a wrong key fail the same HMAC check: SQLCipher
    # cannot tell them apart, so neither can we (the message says "try again").
    make(tmp_path)
    (tmp_path / "profile.db").write_bytes(hashlib.sha256(b"x").digest() * 128)
    with pytest.raises(WrongPassphrase):
        open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST)


def test_new_profile_is_at_current_schema_version(tmp_path: Path) -> None:
    make(tmp_path)
    conn = _raw_connection(tmp_path)
    try:
        assert schema_version(conn) == SCHEMA_VERSION == 6
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_older_schema_is_migrated_on_open(tmp_path: Path) -> None:
    # Build a version-1 profile by hand (no FTS table yet), with a message in it.
    salt = bytes(range(16))
    (tmp_path / "profile.salt").write_bytes(salt)
    conn = connect(tmp_path / "profile.db", derive_key(PASSPHRASE, salt, FAST), create=True)
    configure(conn)
    migrate(conn, target=1)
    conn.execute("INSERT INTO identity VALUES (1, ?, 'old')", (SEED,))
    conn.execute(
        "INSERT INTO messages (message_id, conversation_id, direction, sender,"
        " timestamp_ms, body, delivery) VALUES (?, 'guest:x', 'in', 'x', 1,"
        " 'written before search existed', 'delivered')",
        (bytes(16),),
    )
    assert schema_version(conn) == 1
    conn.close()

    with open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST) as profile:
        hits = profile.search("existed")
        assert [h.message.body for h in hits] == ["written before search existed"]
        assert profile.settings.keep_history  # no row yet: the default
        assert profile.add_message(
            StoredMessage(b"\x01" * 16, "guest:x", Direction.IN, "x", 2, "new", DeliveryState.SENT)
        )
        assert len(profile.search("new")) == 1
    conn = _raw_connection(tmp_path)
    try:
        assert schema_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    make(tmp_path)
    conn = _raw_connection(tmp_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = (tmp_path / "profile.db").read_bytes()
    with pytest.raises(ProfileTooNew, match="upgrade p2pchat"):
        open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST)
    assert (tmp_path / "profile.db").read_bytes() == before


def test_interrupted_create_leftovers_do_not_block_create(tmp_path: Path) -> None:
    (tmp_path / "profile.db.creating").write_bytes(b"half made")
    (tmp_path / "profile.salt").write_bytes(b"stale salt......")
    make(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.db", "profile.salt"]
    open_profile(tmp_path, PASSPHRASE, kdf_limits=FAST).close()


def _raw_connection(data_dir: Path):  # type: ignore[no-untyped-def]
    salt = (data_dir / "profile.salt").read_bytes()
    return connect(data_dir / "profile.db", derive_key(PASSPHRASE, salt, FAST))
