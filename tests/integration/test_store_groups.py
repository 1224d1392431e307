"""Groups in the profile store (schema v4) against real SQLCipher: the v3 → v4
migration, groups, chains, member pins, group frames in the outbox (history on and
off), group messages in history and search."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from p2pchat.store import (
    MAX_GROUPS,
    ChainState,
    Contact,
    DeliveryState,
    Direction,
    GroupState,
    Profile,
    StaleGroupList,
    StoredGroup,
    StoredMessage,
    TooManyGroups,
    TrustState,
    contact_conversation_id,
    group_conversation_id,
    open_profile,
)
from p2pchat.store.connection import configure, connect
from p2pchat.store.keys import derive_key
from p2pchat.store.schema import SCHEMA_VERSION, migrate, schema_version
from tests.integration.store_profiles import FAST, PASSPHRASE, SEED, reopen

ME = b"\x01" * 32
ADMIN = b"\xad" * 32
ALICE = b"\xaa" * 32
BOB = b"\xbb" * 32
GROUP_ID = bytes(range(16))
GROUP = group_conversation_id(GROUP_ID)
# Every byte value: the list must come back exactly as it went in.
LIST_BYTES = bytes(range(256)) * 3
GROUP_MESSAGE_FRAME = 6
GROUP_LIST_FRAME = 7


def group(
    group_id: bytes = GROUP_ID,
    *,
    name: str = "Family",
    epoch: int = 1,
    member_list: bytes = LIST_BYTES,
    joined_epoch: int = 1,
    state: GroupState = GroupState.ACTIVE,
    created_ms: int = 1000,
    admin_key: bytes = ADMIN,
) -> StoredGroup:
    return StoredGroup(
        group_id=group_id,
        name=name,
        admin_key=admin_key,
        epoch=epoch,
        member_list=member_list,
        joined_epoch=joined_epoch,
        state=state,
        created_ms=created_ms,
    )


def group_message(
    body: str, *, sender: str = "Alice", key: bytes | None = ALICE, ts: int = 10, n: int = 0
) -> StoredMessage:
    return StoredMessage(
        message_id=(0x6000 + n).to_bytes(16, "big"),
        conversation_id=GROUP,
        direction=Direction.IN if key != ME else Direction.OUT,
        sender=sender,
        timestamp_ms=ts,
        body=body,
        delivery=DeliveryState.DELIVERED,
        sender_key=key,
    )


# -- migration v3 → v4 ----------------------------------------------------------


def _raw(data_dir: Path, *, create: bool = False) -> Any:
    salt_file = data_dir / "profile.salt"
    if create:
        data_dir.mkdir(mode=0o700)
        salt_file.write_bytes(bytes(range(16)))
    key = derive_key(PASSPHRASE, salt_file.read_bytes(), FAST)
    conn = connect(data_dir / "profile.db", key, create=create)
    configure(conn)
    return conn


def _build_v3_profile(data_dir: Path) -> Any:
    """A profile as the v3 code wrote one: the v3 schema and rows written with the v3
    column lists, two messages indexed and one stored after the last indexing (a
    crash before the deferred index ran). Returns the open raw connection."""
    conn = _raw(data_dir, create=True)
    migrate(conn, target=3)
    assert schema_version(conn) == 3
    conn.execute("INSERT INTO identity (id, seed, display_name) VALUES (1, ?, 'old me')", (SEED,))
    conn.execute("INSERT INTO settings (key, value) VALUES ('keep_history', 'true')")
    for key, name, trust in [(ALICE, "Alice", "accepted"), (BOB, "Bob", "pending_incoming")]:
        conn.execute(
            "INSERT INTO contacts (public_key, display_name, trust, verified, pinned_at_ms)"
            " VALUES (?, ?, ?, 0, 5)",
            (key, name, trust),
        )
    alice = contact_conversation_id(ALICE)
    for n, body in enumerate(["indexed apple", "indexed banana", "stranded cherry"], start=1):
        conn.execute(
            "INSERT INTO messages (message_id, conversation_id, direction, sender,"
            " timestamp_ms, body, delivery) VALUES (?, ?, 'in', 'Alice', ?, ?, 'delivered')",
            (n.to_bytes(16, "big"), alice, n, body),
        )
        if n == 2:  # what Profile.index_pending did at v3
            conn.execute(
                "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages"
                " WHERE id > (SELECT up_to FROM fts_indexed)"
            )
            conn.execute("UPDATE fts_indexed SET up_to = (SELECT max(id) FROM messages)")
    for n, body in enumerate(["queued one", "queued two"], start=1):
        conn.execute(
            "INSERT INTO outbox (message_id, conversation_id, created_ms, body)"
            " VALUES (?, ?, ?, ?)",
            ((0x100 + n).to_bytes(16, "big"), alice, n, body),
        )
    return conn


_V3_TABLES = ("identity", "settings", "contacts", "messages", "outbox", "fts_indexed")


def _rows(conn: Any, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1")]


def test_v3_profile_migrates_to_v4_keeping_every_row(data_dir: Path) -> None:
    conn = _build_v3_profile(data_dir)
    before = {table: _rows(conn, table) for table in _V3_TABLES}
    conn.close()

    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as profile:
        assert profile.identity.name == "old me"
        assert [c.display_name for c in profile.contacts()] == ["Alice", "Bob"]
        # FTS unchanged by the new column: the indexed rows and the stranded one.
        for word in ("apple", "banana", "cherry"):
            assert len(profile.search(word)) == 1, word
        assert all(m.sender_key is None for m in profile.messages(contact_conversation_id(ALICE)))
        entries = profile.pending_outbox(contact_conversation_id(ALICE))
        assert [(e.body, e.frame_type, e.payload) for e in entries] == [
            ("queued one", 1, None),
            ("queued two", 1, None),
        ]
        assert profile.groups.all() == []

    conn = _raw(data_dir)
    try:
        assert schema_version(conn) == SCHEMA_VERSION == 6
        after = {table: _rows(conn, table) for table in _V3_TABLES}
        # Every old row, with the new columns at their defaults at the end.
        assert after["messages"] == [(*row, None, "text") for row in before["messages"]]
        assert after["outbox"] == [(*row, 1, None) for row in before["outbox"]]
        for table in ("identity", "settings", "contacts"):
            assert after[table] == before[table], table
        assert after["fts_indexed"] == [(1, 3)]  # the stranded row was indexed on open
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        assert _rows(conn, "groups") == _rows(conn, "group_chains") == []
    finally:
        conn.close()


def test_v4_migration_is_one_transaction(data_dir: Path) -> None:
    # Make the migration's LAST statement fail (a `sender_key` column already there):
    # the tables and the outbox columns it made before must be gone, the version 3.
    conn = _build_v3_profile(data_dir)
    conn.execute("ALTER TABLE messages ADD COLUMN sender_key BLOB")
    before = {table: _rows(conn, table) for table in _V3_TABLES}
    conn.close()

    with pytest.raises(Exception, match="duplicate column"):
        open_profile(data_dir, PASSPHRASE, kdf_limits=FAST)

    conn = _raw(data_dir)
    try:
        assert schema_version(conn) == 3
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert not {"groups", "group_chains"} & tables
        outbox_columns = [row[1] for row in conn.execute("PRAGMA table_info(outbox)")]
        assert "frame_type" not in outbox_columns
        assert {table: _rows(conn, table) for table in _V3_TABLES} == before
        conn.execute("ALTER TABLE messages DROP COLUMN sender_key")
    finally:
        conn.close()
    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as profile:  # now it migrates
        assert len(profile.search("cherry")) == 1


# -- groups ---------------------------------------------------------------------


def test_group_round_trip(profile: Profile) -> None:
    assert profile.groups.get(GROUP_ID) is None
    held = group()
    assert profile.groups.save(held)
    assert profile.groups.get(GROUP_ID) == held
    other = group(bytes(16), name="family", created_ms=5)  # the same name, another group
    assert profile.groups.save(other)
    work = group(b"\x07" * 16, name="Work", state=GroupState.LEFT)
    assert profile.groups.save(work)
    profile = reopen(profile)
    try:
        assert profile.groups.all() == [other, held, work]  # by name, then id
        assert profile.groups.find_by_name("FAMILY") == [other, held]
        assert profile.groups.find_by_name("work") == [work]
        assert profile.groups.find_by_name("nobody") == []
        assert profile.groups.get(GROUP_ID).member_list == LIST_BYTES  # type: ignore[union-attr]
    finally:
        profile.close()


def test_a_newer_list_replaces_the_held_one_and_epochs_only_grow(profile: Profile) -> None:
    profile.groups.save(group())
    newer = group(epoch=3, name="Family 2", member_list=b"list 3", created_ms=999)
    assert profile.groups.save(newer)
    assert profile.groups.get(GROUP_ID) == dataclasses.replace(newer, created_ms=1000)
    assert not profile.groups.save(newer)  # the same list again: a harmless duplicate
    with pytest.raises(StaleGroupList, match=r"epoch 3\) is not newer than the one held"):
        profile.groups.save(group(epoch=3, member_list=b"another list 3"))
    with pytest.raises(StaleGroupList, match="epoch 2"):
        profile.groups.save(group(epoch=2, member_list=b"list 2"))
    with pytest.raises(ValueError, match="admin never changes"):
        profile.groups.save(group(epoch=4, admin_key=ALICE))
    assert profile.groups.get(GROUP_ID).member_list == b"list 3"  # type: ignore[union-attr]


def test_group_state_and_delete(profile: Profile) -> None:
    profile.groups.save(group())
    profile.groups.set_chain(GROUP_ID, ALICE, 4, b"\x04" * 32)
    assert profile.groups.set_state(GROUP_ID, GroupState.REMOVED)
    assert profile.groups.get(GROUP_ID).state is GroupState.REMOVED  # type: ignore[union-attr]
    assert not profile.groups.set_state(bytes(16), GroupState.LEFT)
    profile.add_message(group_message("kept after delete"))
    assert profile.groups.delete(GROUP_ID)
    assert not profile.groups.delete(GROUP_ID)
    assert profile.groups.get(GROUP_ID) is None
    assert profile._conn.execute("SELECT count(*) FROM group_chains").fetchone()[0] == 0
    assert [m.body for m in profile.messages(GROUP)] == ["kept after delete"]
    profile.groups.save(group())  # the same id again starts with no chains
    assert profile.groups.chain(GROUP_ID, ALICE) is None


def test_group_bounds(profile: Profile) -> None:
    with profile.batch():
        for n in range(MAX_GROUPS):
            profile.groups.save(group(n.to_bytes(16, "big"), name=f"g{n}"))
    with pytest.raises(TooManyGroups, match=f"already holds {MAX_GROUPS} groups") as raised:
        profile.groups.save(group(b"\xff" * 16))
    assert "\n" not in raised.value.user_message
    assert profile.groups.save(group(bytes(16), name="g0", epoch=2))  # updates still work
    profile.groups.delete(bytes(16))
    assert profile.groups.save(group(b"\xff" * 16))  # room again

    profile.groups.delete(b"\xff" * 16)
    bad: list[tuple[StoredGroup, str]] = [
        (group(name=""), "group name must be"),
        (group(name="é" * 33), "group name must be"),  # 66 bytes
        (group(epoch=2**32), "epochs must be"),
        (group(joined_epoch=2, epoch=1), "epochs must be"),
        (group(joined_epoch=0), "epochs must be"),
        (group(member_list=b""), "member list must be"),
        (group(member_list=bytes(64 * 1024 + 1)), "member list must be"),
        (group(b"short"), "group id must be"),
        (group(admin_key=b"short"), "admin key must be"),
    ]
    for candidate, problem in bad:
        with pytest.raises(ValueError, match=problem):
            profile.groups.save(candidate)
    assert profile.groups.save(group(b"\xfe" * 16, name="é" * 32))  # 64 bytes: fits


# -- chains ---------------------------------------------------------------------


def test_chains_only_move_forward(profile: Profile) -> None:
    profile.groups.save(group())
    assert profile.groups.chain(GROUP_ID, ALICE) is None
    assert profile.groups.next_link(GROUP_ID, ME) == (1, bytes(32))
    assert profile.groups.set_chain(GROUP_ID, ALICE, 1, b"\x01" * 32)
    assert profile.groups.set_chain(GROUP_ID, ALICE, 5, b"\x05" * 32)  # a gap: forward still
    assert not profile.groups.set_chain(GROUP_ID, ALICE, 5, b"\xee" * 32)  # replay
    assert not profile.groups.set_chain(GROUP_ID, ALICE, 2, b"\xee" * 32)  # reorder
    assert profile.groups.set_chain(GROUP_ID, ME, 1, b"\x11" * 32)
    profile = reopen(profile)
    try:
        assert profile.groups.chain(GROUP_ID, ALICE) == ChainState(5, b"\x05" * 32)
        assert profile.groups.chain(GROUP_ID, BOB) is None
        assert profile.groups.next_link(GROUP_ID, ME) == (2, b"\x11" * 32)
        with pytest.raises(ValueError, match="no such group"):
            profile.groups.set_chain(bytes(16), ALICE, 1, bytes(32))
        for seq, digest, key, problem in [
            (0, bytes(32), ALICE, "chain seq"),
            (2**63, bytes(32), ALICE, "chain seq"),
            (6, b"x", ALICE, "chain hash"),
            (6, bytes(32), b"x", "sender key"),
        ]:
            with pytest.raises(ValueError, match=problem):
                profile.groups.set_chain(GROUP_ID, key, seq, digest)
        assert profile.groups.set_chain(GROUP_ID, ALICE, 2**63 - 1, bytes(32))
    finally:
        profile.close()


def test_every_chain_of_a_group_comes_back_and_deliveries_only_count_my_messages(
    profile: Profile,
) -> None:
    profile.groups.save(group())
    profile.groups.set_chain(GROUP_ID, ALICE, 3, b"\x03" * 32)
    profile.groups.set_chain(GROUP_ID, BOB, 1, b"\x01" * 32)  # maybe no longer listed
    profile.groups.set_chain(GROUP_ID, ME, 2, b"\x02" * 32)
    mine, theirs = group_message("mine", key=ME, n=1), group_message("theirs", n=2)
    for message in (mine, theirs):
        profile.add_message(message)
    assert profile.groups.add_delivery(mine.message_id, ALICE)
    assert not profile.groups.add_delivery(mine.message_id, ALICE)  # counted once
    assert profile.groups.add_delivery(mine.message_id, BOB)
    assert not profile.groups.add_delivery(theirs.message_id, BOB)  # not mine
    assert not profile.groups.add_delivery(bytes(16), BOB)  # no such message
    with pytest.raises(ValueError, match="member key"):
        profile.groups.add_delivery(mine.message_id, b"x")
    profile = reopen(profile)
    try:
        assert profile.groups.chains(GROUP_ID) == {
            ALICE: ChainState(3, b"\x03" * 32),
            BOB: ChainState(1, b"\x01" * 32),
            ME: ChainState(2, b"\x02" * 32),
        }
        assert profile.groups.chains(bytes(16)) == {}
        assert profile.groups.deliveries(GROUP) == {mine.message_id: sorted([ALICE, BOB])}
        assert profile.groups.deliveries("c:someone") == {}
    finally:
        profile.close()


def test_sending_a_group_message_is_all_or_nothing(profile: Profile) -> None:
    # The node's send: next seq, the message, my chain, one copy per member, one commit.
    profile.groups.save(group())

    def send(body: str, n: int, fail: bool = False) -> None:
        with profile.batch():
            seq, _prev = profile.groups.next_link(GROUP_ID, ME)
            profile.add_message(group_message(body, sender="me", key=ME, n=n))
            profile.groups.set_chain(GROUP_ID, ME, seq, bytes([seq]) * 32)
            for member in (ALICE, BOB):
                profile.enqueue_outbox(
                    member[:8] + n.to_bytes(8, "big"),
                    contact_conversation_id(member),
                    "",
                    created_ms=n,
                    frame_type=GROUP_MESSAGE_FRAME,
                    payload=f"signed {body}".encode(),
                )
                if fail:
                    raise OSError("crash mid-send")

    send("one", 1)
    with pytest.raises(OSError, match="crash mid-send"):
        send("two", 2, fail=True)
    assert [m.body for m in profile.messages(GROUP)] == ["one"]
    assert profile.groups.next_link(GROUP_ID, ME) == (2, b"\x01" * 32)
    for member in (ALICE, BOB):
        pending = profile.pending_outbox(contact_conversation_id(member))
        assert [e.payload for e in pending] == [b"signed one"]


# -- member pins ----------------------------------------------------------------


def test_member_pins_are_not_contacts(profile: Profile) -> None:
    alice = Contact(ALICE, "Alice", TrustState.ACCEPTED, verified=True, pinned_at_ms=1)
    profile.upsert_contact(alice)
    assert profile.groups.pin_member(ALICE, "Alice in the list", pinned_at_ms=50) == alice
    carol = profile.groups.pin_member(BOB, "Carol", pinned_at_ms=50)
    assert carol == Contact(BOB, "Carol", TrustState.MEMBER, verified=False, pinned_at_ms=50)
    renamed = profile.groups.pin_member(BOB, "Caroline", pinned_at_ms=99)
    assert renamed == dataclasses.replace(carol, display_name="Caroline")  # pin time kept
    profile = reopen(profile)
    try:
        assert profile.contacts() == [alice]  # what every contact list shows today
        assert profile.contacts(include_members=True) == [alice, renamed]
        assert profile.get_contact(BOB) == renamed
        assert profile.set_trust(BOB, TrustState.PENDING_INCOMING)  # a member who asks
        assert profile.groups.pin_member(BOB, "x", pinned_at_ms=0).trust is (
            TrustState.PENDING_INCOMING
        )
    finally:
        profile.close()


# -- group messages in history ----------------------------------------------------


def test_group_messages_in_history_and_search(profile: Profile) -> None:
    profile.add_message(group_message("lunch at noon", n=1, ts=10))
    profile.add_message(group_message("noon is fine", sender="Alice", key=BOB, n=2, ts=20))
    profile.add_message(group_message("see you", sender="me", key=ME, n=3, ts=30))
    shown = [(m.sender, m.sender_key, m.body) for m in profile.messages(GROUP)]
    assert shown == [
        ("Alice", ALICE, "lunch at noon"),
        ("Alice", BOB, "noon is fine"),  # two Alices: the key tells them apart
        ("me", ME, "see you"),
    ]
    assert profile.get_message((0x6002).to_bytes(16, "big")).sender_key == BOB  # type: ignore[union-attr]
    hits = profile.search("noon", conversation_id=GROUP, marks=("<", ">"))
    assert [(h.message.sender_key, h.snippet) for h in hits] == [
        (BOB, "<noon> is fine"),
        (ALICE, "lunch at <noon>"),
    ]
    assert profile.search_count("noon") == 2
    with pytest.raises(ValueError, match="sender key"):
        profile.add_message(dataclasses.replace(group_message("x", n=9), sender_key=b"short"))
    profile = reopen(profile)
    try:
        assert [m.sender_key for m in profile.messages(GROUP)] == [ALICE, BOB, ME]
    finally:
        profile.close()


def test_conversations_name_a_group_by_its_name(profile: Profile) -> None:
    profile.add_message(group_message("hi", n=1, ts=10))
    unknown = group_conversation_id(b"\x09" * 16)  # messages, but no group row (deleted)
    profile.add_message(
        dataclasses.replace(group_message("yo", n=2, ts=5), conversation_id=unknown)
    )
    profile.groups.save(group(name="Family"))
    summaries = [(s.conversation_id, s.name) for s in profile.conversations()]
    assert summaries == [(GROUP, "Family"), (unknown, "Alice")]  # else its last sender


# -- group frames in the outbox ---------------------------------------------------


def test_outbox_holds_group_frames_beside_text(profile: Profile) -> None:
    alice = contact_conversation_id(ALICE)
    assert profile.enqueue_outbox(b"\x01" * 16, alice, "text", created_ms=1)
    assert profile.enqueue_outbox(
        b"\x02" * 16, alice, "", created_ms=2, frame_type=GROUP_LIST_FRAME, payload=b"\x00list"
    )
    assert profile.enqueue_outbox(
        b"\x03" * 16, alice, "", created_ms=3, frame_type=GROUP_MESSAGE_FRAME, payload=b"msg\xff"
    )
    refused: list[tuple[str, int, bytes | None, str]] = [
        ("", 1, b"x", "text outbox entry has a body"),
        ("", GROUP_MESSAGE_FRAME, None, "needs a payload"),
        ("", GROUP_MESSAGE_FRAME, b"", "needs a payload"),
        ("both", GROUP_MESSAGE_FRAME, b"x", "needs a payload"),
        ("", 256, b"x", "frame type must be"),
        ("", 0, b"x", "frame type must be"),
        ("", GROUP_MESSAGE_FRAME, bytes(64 * 1024 + 1), "needs a payload"),
    ]
    for body, frame_type, payload, problem in refused:
        with pytest.raises(ValueError, match=problem):
            profile.enqueue_outbox(
                b"\x09" * 16, alice, body, created_ms=9, frame_type=frame_type, payload=payload
            )
    profile = reopen(profile)
    try:
        pending = profile.pending_outbox(alice)
        assert [(e.body, e.frame_type, e.payload) for e in pending] == [
            ("text", 1, None),
            ("", GROUP_LIST_FRAME, b"\x00list"),
            ("", GROUP_MESSAGE_FRAME, b"msg\xff"),
        ]
    finally:
        profile.close()


def test_no_history_outbox_keeps_group_frames(profile: Profile) -> None:
    alice = contact_conversation_id(ALICE)
    profile.enqueue_outbox(
        b"\x01" * 16, alice, "", created_ms=1, frame_type=GROUP_MESSAGE_FRAME, payload=b"on disk"
    )
    profile.set_keep_history(False)  # moves the entry into memory
    profile.enqueue_outbox(
        b"\x02" * 16, alice, "", created_ms=2, frame_type=GROUP_LIST_FRAME, payload=b"in memory"
    )
    profile.enqueue_outbox(b"\x03" * 16, alice, "text", created_ms=3)
    expected = [
        ("", GROUP_MESSAGE_FRAME, b"on disk"),
        ("", GROUP_LIST_FRAME, b"in memory"),
        ("text", 1, None),
    ]
    assert [(e.body, e.frame_type, e.payload) for e in profile.pending_outbox(alice)] == expected
    assert profile._conn.execute("SELECT count(*) FROM main.outbox").fetchone()[0] == 0
    profile.set_keep_history(True)  # and back to the file
    profile = reopen(profile)
    try:
        pending = profile.pending_outbox(alice)
        assert [(e.body, e.frame_type, e.payload) for e in pending] == expected
    finally:
        profile.close()


# -- seeded random operations -------------------------------------------------------


def test_random_chain_and_outbox_operations_match_a_model(profile: Profile) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    groups = [bytes([n]) * 16 for n in range(3)]
    senders = [ALICE, BOB, ME]
    conversations = [contact_conversation_id(ALICE), contact_conversation_id(BOB)]
    for group_id in groups:
        profile.groups.save(group(group_id))
    chains: dict[tuple[bytes, bytes], tuple[int, bytes]] = {}
    outbox: dict[bytes, tuple[str, str, int, bytes | None]] = {}  # id → cid, body, type, payload
    order: list[bytes] = []
    keep_history = True
    for step in range(400):
        action = rng.random()
        if action < 0.35:
            key = (rng.choice(groups), rng.choice(senders))
            seq = rng.randrange(1, 30)
            digest = rng.randbytes(32)
            moved = profile.groups.set_chain(*key, seq, digest)
            assert moved == (key not in chains or seq > chains[key][0]), f"seed {seed}"
            if moved:
                chains[key] = (seq, digest)
        elif action < 0.7:
            message_id = rng.randbytes(15) + bytes([step % 256])
            cid = rng.choice(conversations)
            if rng.random() < 0.5:
                entry = (cid, f"text {step}", 1, None)
            else:
                entry = (cid, "", rng.choice([6, 7]), rng.randbytes(rng.randrange(1, 200)))
            assert profile.enqueue_outbox(
                message_id, cid, entry[1], created_ms=step, frame_type=entry[2], payload=entry[3]
            ), f"seed {seed}"
            outbox[message_id] = entry
            order.append(message_id)
        elif action < 0.85 and order:
            victim = rng.choice(order)
            assert profile.remove_outbox(victim), f"seed {seed}"
            order.remove(victim)
            del outbox[victim]
        elif action < 0.93:
            keep_history = not keep_history
            profile.set_keep_history(keep_history)
        else:
            profile = reopen(profile)
            if not keep_history:  # the in-memory outbox is lost with the connection
                outbox.clear()
                order.clear()
        for cid in conversations:
            got = [
                (e.message_id, (e.conversation_id, e.body, e.frame_type, e.payload))
                for e in profile.pending_outbox(cid)
            ]
            assert got == [(i, outbox[i]) for i in order if outbox[i][0] == cid], f"seed {seed}"
    for (group_id, sender), (seq, digest) in chains.items():
        assert profile.groups.chain(group_id, sender) == ChainState(seq, digest), f"seed {seed}"
    profile.close()
