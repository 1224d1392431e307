"""File transfers in the profile store (``Profile.files``, schema v6) on real SQLCipher."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest

import p2pchat.store
from p2pchat.cli import main
from p2pchat.store import (
    MAX_UNFINISHED_PER_PEER,
    Contact,
    DeliveryState,
    Direction,
    MessageKind,
    Profile,
    StoredMessage,
    StoredTransfer,
    TooManyTransfers,
    TransferDirection,
    TransferState,
    TrustState,
    contact_conversation_id,
    create_profile,
    open_profile,
)
from p2pchat.store.connection import configure, connect
from p2pchat.store.keys import derive_key
from p2pchat.store.schema import SCHEMA_VERSION, migrate, schema_version
from tests.integration.store_profiles import FAST, PASSPHRASE, SEED, reopen

ALICE = b"\xaa" * 32
BOB = b"\xbb" * 32
ALICE_CONVERSATION = contact_conversation_id(ALICE)
BOB_CONVERSATION = contact_conversation_id(BOB)
BLOCK = 256 * 1024
FILE_KEY = bytes(range(100, 132))
ENDED = (
    TransferState.DONE,
    TransferState.FAILED,
    TransferState.CANCELLED,
    TransferState.DECLINED,
)


def transfer(
    n: int,
    *,
    peer: bytes = ALICE,
    direction: Direction = TransferDirection.OUT,
    name: str = "holiday photos.zip",
    size: int = 3 * BLOCK + 1,
    created_ms: int | None = None,
) -> StoredTransfer:
    outgoing = direction is Direction.OUT
    return StoredTransfer(
        transfer_id=(0x7000 + n).to_bytes(16, "big"),
        conversation=contact_conversation_id(peer),
        peer_key=peer,
        direction=direction,
        name=name,
        size=size,
        block_bytes=BLOCK,
        file_hash=bytes([n % 256]) * 32,
        file_key=FILE_KEY,
        mime="application/zip",
        state=TransferState.QUEUED if outgoing else TransferState.OFFERED,
        verified_blocks=0,
        source_path=Path(f"/home/me/{name}") if outgoing else None,
        partial_path=None if outgoing else Path(f"/home/me/Downloads/.p2pchat-partial/{n}.part"),
        final_path=None,
        error=None,
        created_ms=1000 + n if created_ms is None else created_ms,
        updated_ms=1000 + n if created_ms is None else created_ms,
    )


def transfer_many(count: int) -> list[StoredTransfer]:
    return [transfer(n) for n in range(100, 100 + count)]


# -- migration v5 → v6 ----------------------------------------------------------


def _raw(data_dir: Path, *, create: bool = False) -> Any:
    salt_file = data_dir / "profile.salt"
    if create:
        data_dir.mkdir(mode=0o700)
        salt_file.write_bytes(bytes(range(16)))
    key = derive_key(PASSPHRASE, salt_file.read_bytes(), FAST)
    conn = connect(data_dir / "profile.db", key, create=create)
    configure(conn)
    return conn


def _build_v5_profile(data_dir: Path) -> Any:
    """A profile as the v5 code wrote one, with v5's columns: a contact, messages (one
    a group message with its sender key and a delivery row), an outbox entry, the
    last message stored after the last indexing. Returns the open raw connection."""
    conn = _raw(data_dir, create=True)
    migrate(conn, target=5)
    assert schema_version(conn) == 5
    conn.execute("INSERT INTO identity (id, seed, display_name) VALUES (1, ?, 'old me')", (SEED,))
    conn.execute("INSERT INTO settings (key, value) VALUES ('keep_history', 'true')")
    conn.execute(
        "INSERT INTO contacts (public_key, display_name, trust, verified, pinned_at_ms)"
        " VALUES (?, 'Alice', 'accepted', 0, 5)",
        (ALICE,),
    )
    for n, (body, key) in enumerate(
        [("indexed apple", None), ("group banana", b"\x01" * 32), ("stranded cherry", None)],
        start=1,
    ):
        conn.execute(
            "INSERT INTO messages (message_id, conversation_id, direction, sender,"
            " timestamp_ms, body, delivery, sender_key)"
            " VALUES (?, ?, 'out', 'me', ?, ?, 'sent', ?)",
            (n.to_bytes(16, "big"), ALICE_CONVERSATION, n, body, key),
        )
        if n == 2:  # what Profile.index_pending did at v5
            conn.execute(
                "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages"
                " WHERE id > (SELECT up_to FROM fts_indexed)"
            )
            conn.execute("UPDATE fts_indexed SET up_to = (SELECT max(id) FROM messages)")
    conn.execute(
        "INSERT INTO group_deliveries (message_id, member_key) VALUES (?, ?)",
        ((2).to_bytes(16, "big"), BOB),
    )
    conn.execute(
        "INSERT INTO outbox (message_id, conversation_id, created_ms, body, frame_type, payload)"
        " VALUES (?, ?, 7, '', 6, x'0102')",
        ((0x100).to_bytes(16, "big"), ALICE_CONVERSATION),
    )
    return conn


_V5_TABLES = ("identity", "settings", "contacts", "messages", "outbox", "group_deliveries")


def _rows(conn: Any, table: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]


def test_v5_profile_migrates_to_v6_keeping_every_row(data_dir: Path) -> None:
    conn = _build_v5_profile(data_dir)
    before = {table: _rows(conn, table) for table in _V5_TABLES}
    conn.close()

    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as profile:
        messages = profile.messages(ALICE_CONVERSATION)
        assert [(m.body, m.kind) for m in messages] == [
            ("indexed apple", MessageKind.TEXT),
            ("group banana", MessageKind.TEXT),
            ("stranded cherry", MessageKind.TEXT),
        ]
        for word in ("apple", "banana", "cherry"):
            assert len(profile.search(word)) == 1, word
        assert profile.files.all() == profile.files.unfinished() == []
        assert profile.settings.auto_accept_bytes == 100_000_000
        assert profile.settings.downloads_dir is None
        # A transfer can be stored in the migrated profile.
        assert profile.files.add(transfer(1), sender="old me")

    conn = _raw(data_dir)
    try:
        assert schema_version(conn) == SCHEMA_VERSION == 6
        after = {table: _rows(conn, table) for table in _V5_TABLES}
        # Every old row, `kind` 'text' at the end; the transfer's history row after them.
        assert after["messages"][:3] == [(*row, "text") for row in before["messages"]]
        assert after["messages"][3][-1] == "file"
        for table in ("identity", "settings", "contacts", "outbox", "group_deliveries"):
            assert after[table] == before[table], table
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    finally:
        conn.close()


def test_v6_migration_is_one_transaction(data_dir: Path) -> None:
    # Its LAST statement fails (a `transfers_delete` trigger already there): the table
    # and the column it made before must be gone, the version 5.
    conn = _build_v5_profile(data_dir)
    conn.execute("CREATE TRIGGER transfers_delete AFTER DELETE ON contacts BEGIN SELECT 1; END")
    conn.close()

    with pytest.raises(Exception, match="already exists"):
        open_profile(data_dir, PASSPHRASE, kdf_limits=FAST)

    conn = _raw(data_dir)
    try:
        assert schema_version(conn) == 5
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "transfers" not in tables
        assert "kind" not in [row[1] for row in conn.execute("PRAGMA table_info(messages)")]
    finally:
        conn.close()


# -- transfers ------------------------------------------------------------------


def test_add_get_and_the_history_row(profile: Profile) -> None:
    out = transfer(1)
    assert profile.files.add(out, sender="me")
    assert profile.files.get(out.transfer_id) == out
    assert profile.files.get(bytes(16)) is None
    assert "file_key" not in repr(out)
    assert FILE_KEY.hex() not in repr(out)

    # The history row: same id, the file name as text, kind FILE; an offer waits in
    # the outbox like a text, so it is pending until its receipt.
    (row,) = profile.messages(ALICE_CONVERSATION)
    assert row == StoredMessage(
        message_id=out.transfer_id,
        conversation_id=ALICE_CONVERSATION,
        direction=Direction.OUT,
        sender="me",
        timestamp_ms=out.created_ms,
        body="holiday photos.zip",
        delivery=DeliveryState.PENDING,
        kind=MessageKind.FILE,
    )
    assert profile.mark_delivered(out.transfer_id, ALICE_CONVERSATION)

    incoming = transfer(2, peer=BOB, direction=Direction.IN, name="notes.txt")
    assert profile.files.add(incoming, sender="Bob")
    (row,) = profile.messages(BOB_CONVERSATION)
    assert (row.direction, row.delivery, row.kind) == (
        Direction.IN,
        DeliveryState.DELIVERED,
        MessageKind.FILE,
    )

    # A repeated offer changes nothing.
    assert not profile.files.add(dataclasses.replace(incoming, name="other"), sender="Bob")
    assert profile.files.get(incoming.transfer_id) == incoming
    assert len(profile.messages(BOB_CONVERSATION)) == 1
    # Nor does a transfer id that is a text message's already.
    text = StoredMessage(
        message_id=(0x7003).to_bytes(16, "big"),
        conversation_id=BOB_CONVERSATION,
        direction=Direction.IN,
        sender="Bob",
        timestamp_ms=5,
        body="hi",
        delivery=DeliveryState.DELIVERED,
    )
    assert profile.add_message(text)
    assert not profile.files.add(transfer(3, peer=BOB), sender="me")
    assert profile.files.get(text.message_id) is None


def test_progress_state_and_listing(profile: Profile) -> None:
    first, second, third = transfer(1), transfer(2, peer=BOB), transfer(3, direction=Direction.IN)
    for t in (first, second, third):
        assert profile.files.add(t, sender="me")

    assert profile.files.set_state(first.transfer_id, TransferState.SENDING, now_ms=2000)
    assert profile.files.update_progress(first.transfer_id, 3, now_ms=2001)
    assert profile.files.update_progress(first.transfer_id, 1, now_ms=2002)  # a resume point
    got = profile.files.get(first.transfer_id)
    assert got is not None
    assert (got.state, got.verified_blocks, got.updated_ms) == (TransferState.SENDING, 1, 2002)
    assert got.block_count == 4
    with pytest.raises(ValueError, match=r"0\.\.4"):
        profile.files.update_progress(first.transfer_id, 5, now_ms=2003)
    assert not profile.files.update_progress(bytes(16), 1, now_ms=2003)
    assert not profile.files.set_state(bytes(16), TransferState.DONE, now_ms=2003)

    assert [t.transfer_id for t in profile.files.all()] == [
        third.transfer_id,
        second.transfer_id,
        first.transfer_id,
    ]
    assert [t.transfer_id for t in profile.files.all(limit=1, offset=1)] == [second.transfer_id]
    assert [t.transfer_id for t in profile.files.active_for(ALICE)] == [
        first.transfer_id,
        third.transfer_id,
    ]
    assert profile.files.count_unfinished_for(ALICE) == 2
    ids = [first.transfer_id, bytes(16), third.transfer_id, first.transfer_id]
    assert profile.files.get_many(ids) == {first.transfer_id: got, third.transfer_id: third}
    many = [t.transfer_id for t in transfer_many(1200)] + [third.transfer_id]  # 3 queries
    assert profile.files.get_many(many) == {third.transfer_id: third}

    final = Path("/home/me/Downloads/holiday photos.zip")
    assert profile.files.set_state(
        third.transfer_id, TransferState.DONE, now_ms=3000, final_path=final
    )
    assert profile.files.set_state(
        first.transfer_id, TransferState.FAILED, now_ms=3001, error="the file changed"
    )
    done, failed = profile.files.get(third.transfer_id), profile.files.get(first.transfer_id)
    assert done is not None
    assert failed is not None
    assert (done.state, done.final_path, done.error) == (TransferState.DONE, final, None)
    assert (failed.state, failed.error) == (TransferState.FAILED, "the file changed")
    # An ended transfer never changes again.
    assert not profile.files.set_state(first.transfer_id, TransferState.SENDING, now_ms=3002)
    assert not profile.files.update_progress(first.transfer_id, 2, now_ms=3002)
    assert profile.files.active_for(ALICE) == []
    assert profile.files.count_unfinished_for(ALICE) == 0
    with pytest.raises(ValueError, match="one line"):
        profile.files.set_state(second.transfer_id, TransferState.FAILED, now_ms=1, error="a\nb")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"block_bytes": 100_000}, "power of two"),
        ({"block_bytes": 2 * 1024 * 1024}, "power of two"),
        ({"size": 2**40 + 1}, "size"),
        ({"name": "é" * 128}, "file name"),
        ({"name": ""}, "file name"),
        ({"transfer_id": bytes(15)}, "transfer id"),
        ({"file_key": None}, "file key"),
        ({"file_key": bytes(31)}, "file key"),
        ({"file_hash": bytes(33)}, "file hash"),
        ({"state": TransferState.DONE}, "ended"),
        ({"verified_blocks": 5}, "verified blocks"),
        ({"mime": "x" * 256}, "MIME"),
        ({"source_path": Path("/a\0b")}, "source path"),
    ],
)
def test_add_refuses_out_of_bound_fields(
    profile: Profile, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        profile.files.add(dataclasses.replace(transfer(1), **change), sender="me")
    assert profile.files.all() == []
    assert profile.messages(ALICE_CONVERSATION) == []


def test_unfinished_per_peer_is_bounded(profile: Profile) -> None:
    profile.upsert_contact(Contact(ALICE, "Alice", TrustState.ACCEPTED, False, 1))
    with profile.batch():
        for n in range(MAX_UNFINISHED_PER_PEER):
            direction = Direction.IN if n % 2 else Direction.OUT
            assert profile.files.add(transfer(n, direction=direction), sender="me")
    with pytest.raises(TooManyTransfers) as refused:
        profile.files.add(transfer(100), sender="me")
    assert str(refused.value) == refused.value.user_message
    assert "\n" not in str(refused.value)
    assert "64 file transfers with Alice are not finished" in str(refused.value)
    assert profile.files.get(transfer(100).transfer_id) is None
    assert len(profile.messages(ALICE_CONVERSATION)) == MAX_UNFINISHED_PER_PEER  # no row left

    assert profile.files.add(transfer(101, peer=BOB), sender="me")  # another peer: its own bound
    assert profile.files.set_state(transfer(0).transfer_id, TransferState.CANCELLED, now_ms=1)
    assert profile.files.add(transfer(100), sender="me")  # an ended one frees its place


def test_search_history_and_export_find_a_transfer_by_name(
    profile: Profile, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    profile.upsert_contact(Contact(ALICE, "alice", TrustState.ACCEPTED, False, 1))
    assert profile.files.add(transfer(1, name="quarterly-report 2026.pdf"), sender="me")
    (hit,) = profile.search("quarterly")
    assert hit.message.kind is MessageKind.FILE
    assert hit.message.message_id == transfer(1).transfer_id
    assert profile.search("report") != []
    profile.close()

    monkeypatch.setattr(
        p2pchat.store, "open_profile", functools.partial(open_profile, kdf_limits=FAST)
    )
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", PASSPHRASE)
    cli = ["--data-dir", str(data_dir), "history"]
    assert main([*cli, "--search", "quarterly", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["total"] == 1
    assert "quarterly" in json.dumps(found["hits"])
    assert main([*cli, "alice", "--json"]) == 0
    assert "quarterly-report 2026.pdf" in capsys.readouterr().out
    target = tmp_path / "alice.json"
    assert main([*cli, "alice", "--export", str(target)]) == 0
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert [m["text"] for m in exported["messages"]] == ["quarterly-report 2026.pdf"]


def test_deleting_a_conversation_deletes_its_transfers(profile: Profile) -> None:
    assert profile.files.add(transfer(1), sender="me")
    assert profile.files.add(transfer(2, peer=BOB), sender="me")
    profile._conn.execute("DELETE FROM messages WHERE conversation_id = ?", (ALICE_CONVERSATION,))
    assert profile.files.get(transfer(1).transfer_id) is None
    assert profile.files.get(transfer(2).transfer_id) is not None


@pytest.mark.parametrize("state", ENDED)
def test_the_file_key_is_wiped_when_the_transfer_ends(
    profile: Profile, state: TransferState
) -> None:
    assert profile.files.add(transfer(1), sender="me")
    assert profile.files.add(transfer(2), sender="me")
    assert profile.files.set_state(transfer(1).transfer_id, TransferState.SENDING, now_ms=5)
    held = profile.files.get(transfer(1).transfer_id)
    assert held is not None
    assert held.file_key == FILE_KEY

    assert profile.files.set_state(transfer(1).transfer_id, state, now_ms=6)
    ended = profile.files.get(transfer(1).transfer_id)
    assert ended is not None
    assert ended.file_key is None
    keys = dict(profile._conn.execute("SELECT transfer_id, file_key FROM transfers"))
    assert keys == {transfer(1).transfer_id: None, transfer(2).transfer_id: FILE_KEY}

    # The key is never in the files on disk in clear (SQLCipher encrypts them).
    profile._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in profile.paths.data_dir.iterdir():
        assert FILE_KEY not in path.read_bytes(), path


def test_unfinished_after_reopen(profile: Profile) -> None:
    for n in range(6):
        assert profile.files.add(
            transfer(n, peer=(ALICE, BOB)[n % 2], created_ms=5000 - n), sender="me"
        )
    assert profile.files.set_state(transfer(1).transfer_id, TransferState.RECEIVING, now_ms=9)
    assert profile.files.update_progress(transfer(1).transfer_id, 2, now_ms=9)
    assert profile.files.set_state(transfer(2).transfer_id, TransferState.DONE, now_ms=9)
    assert profile.files.set_state(transfer(4).transfer_id, TransferState.DECLINED, now_ms=9)

    profile = reopen(profile)
    try:
        unfinished = profile.files.unfinished()
        assert [t.transfer_id for t in unfinished] == [
            transfer(n).transfer_id
            for n in (5, 3, 1, 0)  # oldest first
        ]
        assert all(t.file_key == FILE_KEY for t in unfinished)
        resumed = unfinished[2]
        assert (resumed.state, resumed.verified_blocks) == (TransferState.RECEIVING, 2)
        assert [t.transfer_id for t in profile.files.active_for(BOB)] == [
            transfer(n).transfer_id for n in (5, 3, 1)
        ]
    finally:
        profile.close()


def test_without_history_a_transfer_is_kept_only_until_it_ends(profile: Profile) -> None:
    profile.set_keep_history(False)
    assert profile.files.add(transfer(1), sender="me")
    assert profile.files.add(transfer(2, direction=Direction.IN), sender="Alice")
    assert not profile.files.add(transfer(2, direction=Direction.IN), sender="Alice")
    assert profile.messages(ALICE_CONVERSATION) == []  # no history row
    assert profile.search("holiday") == []

    assert profile.files.delete_finished_without_history() == 0
    assert profile.files.set_state(transfer(1).transfer_id, TransferState.DONE, now_ms=9)
    assert profile.files.delete_finished_without_history() == 1
    assert profile.files.get(transfer(1).transfer_id) is None

    profile = reopen(profile)  # the unfinished one is still there to resume
    try:
        assert [t.transfer_id for t in profile.files.unfinished()] == [transfer(2).transfer_id]
        assert not profile.files.add(transfer(2, direction=Direction.IN), sender="Alice")
        profile.set_keep_history(True)  # with history on, an ended transfer stays
        assert profile.files.set_state(transfer(2).transfer_id, TransferState.FAILED, now_ms=9)
        assert profile.files.delete_finished_without_history() == 0
        assert profile.files.get(transfer(2).transfer_id) is not None
    finally:
        profile.close()


# -- settings -------------------------------------------------------------------


def test_file_settings_are_kept_and_checked(profile: Profile) -> None:
    assert profile.settings.auto_accept_bytes == 100_000_000
    assert profile.settings.downloads_dir is None
    profile.set_auto_accept_bytes(0)
    profile.set_downloads_dir(Path("/srv/inbox"))
    for bad in (-1, 2**40 + 1, True):
        with pytest.raises(ValueError, match="auto-accept"):
            profile.set_auto_accept_bytes(bad)
    for bad_dir in (Path("relative/dir"), Path("/a\0b"), Path("/" + "x" * 5000)):
        with pytest.raises(ValueError, match="downloads directory"):
            profile.set_downloads_dir(bad_dir)
    profile.set_keep_history(False)

    profile = reopen(profile)
    try:
        settings = profile.settings
        assert (settings.keep_history, settings.auto_accept_bytes, settings.downloads_dir) == (
            False,
            0,
            Path("/srv/inbox"),
        )
        profile.set_downloads_dir(None)
        profile.set_auto_accept_bytes(2**40)
    finally:
        profile.close()
    with open_profile(profile.paths.data_dir, PASSPHRASE, kdf_limits=FAST) as again:
        assert again.settings.downloads_dir is None
        assert again.settings.auto_accept_bytes == 2**40


def test_a_new_profile_has_the_default_file_settings(tmp_path: Path) -> None:
    with create_profile(
        tmp_path / "p", PASSPHRASE, name="me", identity_seed=SEED, kdf_limits=FAST
    ) as fresh:
        assert fresh.settings.auto_accept_bytes == 100_000_000
        assert fresh.settings.downloads_dir is None


def test_partial_path_is_set_at_accept_until_the_transfer_ends(profile: Profile) -> None:
    incoming = transfer(9, direction=Direction.IN)
    assert profile.files.add(incoming, sender="alice")
    chosen = Path("/media/usb/.p2pchat-partial/9.part")  # `files accept ID --to /media/usb`
    assert profile.files.set_partial_path(incoming.transfer_id, chosen, now_ms=5000)
    got = profile.files.get(incoming.transfer_id)
    assert got is not None
    assert (got.partial_path, got.updated_ms) == (chosen, 5000)
    with pytest.raises(ValueError, match="NUL"):
        profile.files.set_partial_path(incoming.transfer_id, Path("/a\0b"), now_ms=5001)
    assert profile.files.set_state(incoming.transfer_id, TransferState.CANCELLED, now_ms=5002)
    assert not profile.files.set_partial_path(incoming.transfer_id, Path("/x"), now_ms=5003)
    assert not profile.files.set_partial_path(bytes(16), chosen, now_ms=5003)
