"""The profile store against real SQLCipher: what goes in comes back out."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.store import (
    MAX_OUTBOX_PER_CONVERSATION,
    Contact,
    DeliveryState,
    Direction,
    InvalidSearchQuery,
    OutboxFull,
    Profile,
    ProfileExists,
    StoredMessage,
    TrustState,
    contact_conversation_id,
    create_profile,
    guest_conversation_id,
    open_profile,
    profile_exists,
)
from tests.integration.store_profiles import FAST, PASSPHRASE, SEED, reopen

ALICE_KEY = b"\xaa" * 32
BOB_KEY = b"\xbb" * 32
ALICE = contact_conversation_id(ALICE_KEY)
GUEST = guest_conversation_id("g1")

_ids = itertools.count(1)


def message(
    conversation_id: str = ALICE,
    body: str = "hi",
    timestamp_ms: int = 1000,
    direction: Direction = Direction.IN,
    sender: str = "alice",
    message_id: bytes | None = None,
) -> StoredMessage:
    return StoredMessage(
        message_id=message_id or next(_ids).to_bytes(16, "big"),
        conversation_id=conversation_id,
        direction=direction,
        sender=sender,
        timestamp_ms=timestamp_ms,
        body=body,
        delivery=DeliveryState.DELIVERED if direction is Direction.IN else DeliveryState.SENT,
    )


def test_create_then_open_round_trip(data_dir: Path) -> None:
    assert not profile_exists(data_dir)
    with create_profile(
        data_dir, PASSPHRASE, name="Zoë", identity_seed=SEED, kdf_limits=FAST
    ) as created:
        assert created.identity.seed == SEED
        assert created.settings.keep_history
    assert profile_exists(data_dir)
    assert sorted(p.name for p in data_dir.iterdir()) == ["profile.db", "profile.salt"]
    assert len((data_dir / "profile.salt").read_bytes()) == 16
    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as opened:
        assert opened.identity.seed == SEED
        assert opened.identity.name == "Zoë"
        opened.set_name("Zoe")
    with open_profile(data_dir, PASSPHRASE, kdf_limits=FAST) as opened:
        assert opened.identity.name == "Zoe"


def test_identity_repr_hides_seed(profile: Profile) -> None:
    assert SEED.hex() not in repr(profile.identity)
    assert repr(SEED) not in repr(profile.identity)


def test_files_are_private(profile: Profile) -> None:
    profile.add_message(message())  # make the WAL exist
    assert (profile.paths.data_dir.stat().st_mode & 0o777) == 0o700
    for path in [profile.paths.salt, *profile.paths.database_files()]:
        assert (path.stat().st_mode & 0o777) == 0o600, path


def test_create_over_existing_profile_fails(profile: Profile, data_dir: Path) -> None:
    with pytest.raises(ProfileExists, match="already exists"):
        create_profile(data_dir, "other", name="x", identity_seed=SEED, kdf_limits=FAST)
    assert profile.identity.seed == SEED


def test_contacts(profile: Profile) -> None:
    bob = Contact(BOB_KEY, "bob", TrustState.PENDING_OUTGOING, verified=False, pinned_at_ms=5)
    alice = Contact(ALICE_KEY, "Alice", TrustState.PENDING_INCOMING, verified=False, pinned_at_ms=7)
    profile.upsert_contact(bob)
    profile.upsert_contact(alice)
    assert profile.contacts() == [alice, bob]
    assert profile.set_trust(BOB_KEY, TrustState.ACCEPTED)
    assert profile.set_verified(BOB_KEY, True)
    assert not profile.set_trust(b"\x01" * 32, TrustState.BLOCKED)
    assert not profile.set_verified(b"\x01" * 32, True)
    # An update keeps the original pin time.
    profile.upsert_contact(
        Contact(BOB_KEY, "Bobby", TrustState.ACCEPTED, verified=True, pinned_at_ms=999)
    )
    profile = reopen(profile)
    assert profile.get_contact(BOB_KEY) == Contact(
        BOB_KEY, "Bobby", TrustState.ACCEPTED, verified=True, pinned_at_ms=5
    )
    assert profile.get_contact(b"\x02" * 32) is None
    with pytest.raises(ValueError, match="32 bytes"):
        profile.upsert_contact(Contact(b"x", "x", TrustState.ACCEPTED, False, 0))
    profile.close()


def test_add_message_deduplicates_by_id(profile: Profile) -> None:
    first = message(body="original")
    assert profile.add_message(first)
    again = message(body="changed", timestamp_ms=5, message_id=first.message_id)
    assert not profile.add_message(again)
    assert profile.messages(ALICE) == [first]
    profile = reopen(profile)
    assert not profile.add_message(first)
    assert profile.get_message(first.message_id) == first
    profile.close()


def test_add_message_rejects_bad_id(profile: Profile) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        profile.add_message(message(message_id=b"short"))


def test_messages_are_ordered_by_time_then_arrival(profile: Profile) -> None:
    late = message(timestamp_ms=300)
    early = message(timestamp_ms=100)
    tie_a = message(timestamp_ms=200, body="a")
    tie_b = message(timestamp_ms=200, body="b")
    other = message(conversation_id=GUEST, timestamp_ms=150)
    for m in (late, early, tie_a, tie_b, other):
        assert profile.add_message(m)
    assert profile.messages(ALICE) == [early, tie_a, tie_b, late]
    assert profile.messages(GUEST) == [other]
    assert profile.messages("nobody") == []


def test_messages_since_until_limit(profile: Profile) -> None:
    stored = [message(timestamp_ms=t) for t in range(0, 1000, 100)]
    with profile.batch():
        for m in stored:
            profile.add_message(m)
    assert profile.messages(ALICE, since_ms=300) == stored[3:]
    assert profile.messages(ALICE, until_ms=300) == stored[:3]
    assert profile.messages(ALICE, since_ms=200, until_ms=500) == stored[2:5]
    # limit keeps the most recent of the range, still oldest first
    assert profile.messages(ALICE, limit=3) == stored[-3:]
    assert profile.messages(ALICE, until_ms=500, limit=2) == stored[3:5]
    assert profile.messages(ALICE, limit=0) == []


def test_batch_rolls_back_on_error(profile: Profile) -> None:
    kept = message()
    profile.add_message(kept)
    lost = message()

    def fail_midway() -> None:
        with profile.batch():
            profile.add_message(lost)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    assert profile.messages(ALICE) == [kept]
    assert profile.add_message(lost)


def test_delivery_state_only_moves_forward(profile: Profile) -> None:
    out = StoredMessage(
        b"\x07" * 16, ALICE, Direction.OUT, "me", 1, "queued", DeliveryState.PENDING
    )
    profile.add_message(out)
    assert profile.mark_sent(out.message_id)
    assert profile.mark_delivered(out.message_id)
    assert not profile.mark_sent(out.message_id)
    assert not profile.mark_delivered(out.message_id)
    assert not profile.mark_delivered(b"\x08" * 16)
    stored = profile.get_message(out.message_id)
    assert stored is not None
    assert stored.delivery is DeliveryState.DELIVERED


def test_delivery_can_be_scoped_to_a_conversation(profile: Profile) -> None:
    out = StoredMessage(b"\x07" * 16, ALICE, Direction.OUT, "me", 1, "hi", DeliveryState.PENDING)
    profile.add_message(out)
    assert not profile.mark_sent(out.message_id, GUEST)  # another peer's receipt
    assert not profile.mark_delivered(out.message_id, GUEST)
    assert profile.mark_sent(out.message_id, ALICE)
    assert profile.mark_delivered(out.message_id, ALICE)


def test_remove_outbox_can_be_scoped_to_a_conversation(profile: Profile) -> None:
    profile.enqueue_outbox(b"\x07" * 16, ALICE, "hi", created_ms=1)
    assert not profile.remove_outbox(b"\x07" * 16, GUEST)
    assert profile.remove_outbox(b"\x07" * 16, ALICE)


def test_search(profile: Profile) -> None:
    profile.add_message(message(body="Meet at the café at noon", timestamp_ms=1))
    profile.add_message(message(body="the cafe is closed", timestamp_ms=2))
    profile.add_message(message(conversation_id=GUEST, body="cafeteria food", timestamp_ms=3))
    profile.add_message(message(body="nothing here", timestamp_ms=4))

    hits = profile.search("cafe")
    assert [h.message.timestamp_ms for h in hits] == [2, 1]  # newest first; é folds to e
    assert hits[1].snippet == "Meet at the [café] at noon"
    assert [h.message.timestamp_ms for h in profile.search("caf*")] == [3, 2, 1]
    assert [h.message.timestamp_ms for h in profile.search("caf*", conversation_id=GUEST)] == [3]
    assert [h.message.timestamp_ms for h in profile.search("cafe noon")] == [1]
    assert len(profile.search("caf*", limit=1)) == 1
    assert profile.search("absent") == []
    assert profile.search("   ") == []
    hit = profile.search("closed", marks=("<b>", "</b>"))[0]
    assert hit.snippet == "the cafe is <b>closed</b>"


def test_search_orders_by_arrival(profile: Profile) -> None:
    # An old message delivered late (from an outbox) is the newest hit.
    profile.add_message(message(body="lunch today", timestamp_ms=500))
    profile.add_message(message(body="lunch yesterday", timestamp_ms=100))
    assert [h.message.timestamp_ms for h in profile.search("lunch")] == [100, 500]


@pytest.mark.parametrize(
    "typed", ['"unbalanced', "(cafe", "cafe AND", "NOT", "col:cafe", "^cafe", "a - b", "*"]
)
def test_search_accepts_fts_syntax_errors_as_text(profile: Profile, typed: str) -> None:
    profile.add_message(message(body="(cafe) AND col:cafe NOT a - b ^cafe"))
    assert isinstance(profile.search(typed), list)


def test_search_never_crashes(profile: Profile) -> None:
    profile.add_message(message(body="some text to find"))

    def outcome(typed: str) -> str:
        try:
            profile.search(typed)
        except InvalidSearchQuery as error:  # allowed, if it explains itself
            return error.user_message
        return "ok"

    @settings(max_examples=200, deadline=None)
    @given(st.text())
    def check(typed: str) -> None:
        result = outcome(typed)
        assert result == "ok" or result.startswith("cannot search")

    check()


def test_search_finds_edited_and_ignores_deleted_rows(profile: Profile) -> None:
    # Guards the FTS triggers: the index follows the messages table.
    profile.add_message(message(body="before"))
    conn = profile._conn  # no public edit/delete yet; drive the triggers directly
    conn.execute("UPDATE messages SET body = 'after'")
    assert profile.search("before") == []
    assert len(profile.search("after")) == 1
    conn.execute("DELETE FROM messages")
    assert profile.search("after") == []
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


def _indexed(profile: Profile, word: str) -> list[int]:
    """Rowids the FTS index itself holds for ``word`` (no index_pending first)."""
    rows = profile._conn.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (word,)
    ).fetchall()
    return [row[0] for row in rows]


def test_messages_stored_and_not_yet_indexed_are_indexed_on_open(profile: Profile) -> None:
    # A node killed between a message's commit and its (deferred) indexing: the
    # next open indexes it, so no stored message is ever unsearchable.
    profile.add_message(message(body="indexed"))
    profile.index_pending()
    profile.add_message(message(body="stranded"))
    profile.add_message(message(body="stranded too"))
    assert _indexed(profile, "stranded") == []  # indexing is deferred: not in the commit
    profile = reopen(profile)
    try:
        assert len(_indexed(profile, "stranded")) == 2
        assert len(_indexed(profile, "indexed")) == 1
        profile._conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    finally:
        profile.close()


def test_search_indexes_what_was_just_stored(profile: Profile) -> None:
    profile.add_message(message(body="fresh words"))
    assert _indexed(profile, "fresh") == []  # not indexed yet: search indexes first
    assert [h.message.body for h in profile.search("fresh")] == ["fresh words"]
    assert profile.search_count("words") == 1


def test_index_stays_sound_through_deletes_of_indexed_and_unindexed_rows(
    profile: Profile,
) -> None:
    # Deleting a row never indexed must not send FTS a 'delete' (that corrupts an
    # external-content index), and SQLite gives a deleted largest rowid to the next
    # insert: that row must still be indexed. Random mixes, seeded; 'integrity-check'
    # raises if the index and the table disagree.
    import random

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    conn = profile._conn  # no public delete yet: drive the triggers directly
    bodies: dict[int, str] = {}
    for step in range(300):
        action = rng.random()
        if action < 0.5 or not bodies:
            word = f"w{step}"
            profile.add_message(message(body=f"{word} common"))
            bodies[conn.execute("SELECT max(id) FROM messages").fetchone()[0]] = word
        elif action < 0.8:
            victim = max(bodies) if rng.random() < 0.5 else rng.choice(list(bodies))
            conn.execute("DELETE FROM messages WHERE id = ?", (victim,))
            del bodies[victim]
        else:
            profile.index_pending()
        if rng.random() < 0.1:
            conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    assert profile.search_count("common") == len(bodies), f"seed {seed}"
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    for rowid, word in bodies.items():
        assert _indexed(profile, word) == [rowid], f"seed {seed}"


def test_conversation_summaries(profile: Profile) -> None:
    profile.upsert_contact(Contact(ALICE_KEY, "Alice", TrustState.ACCEPTED, False, 0))
    profile.add_message(message(ALICE, timestamp_ms=10))
    profile.add_message(message(ALICE, timestamp_ms=30, direction=Direction.OUT, sender="me"))
    profile.add_message(message(GUEST, timestamp_ms=20, sender="Guest Gail"))
    profile.add_message(message(GUEST, timestamp_ms=25, direction=Direction.OUT, sender="me"))
    stranger = contact_conversation_id(BOB_KEY)
    profile.add_message(message(stranger, timestamp_ms=5, direction=Direction.OUT, sender="me"))
    summaries = [
        (s.conversation_id, s.name, s.last_message_ms, s.message_count)
        for s in profile.conversations()
    ]
    assert summaries == [
        (ALICE, "Alice", 30, 2),
        (GUEST, "Guest Gail", 25, 2),
        (stranger, stranger, 5, 1),
    ]


def test_outbox_order_and_removal(profile: Profile) -> None:
    ids = [bytes([i]) * 16 for i in range(1, 5)]
    assert profile.enqueue_outbox(ids[0], ALICE, "first", created_ms=100)
    assert profile.enqueue_outbox(ids[1], ALICE, "second", created_ms=100)  # same ms: FIFO
    assert profile.enqueue_outbox(ids[2], ALICE, "zeroth", created_ms=50)
    assert profile.enqueue_outbox(ids[3], GUEST, "guest", created_ms=1)
    assert not profile.enqueue_outbox(ids[0], ALICE, "dup", created_ms=1)
    assert [e.body for e in profile.pending_outbox(ALICE)] == ["zeroth", "first", "second"]
    assert profile.bump_outbox_attempts(ids[0]) == 1
    assert profile.bump_outbox_attempts(ids[0]) == 2
    assert profile.bump_outbox_attempts(b"\x09" * 16) is None
    assert profile.remove_outbox(ids[2])
    assert not profile.remove_outbox(ids[2])
    profile = reopen(profile)  # history on: the outbox survives a restart
    pending = profile.pending_outbox(ALICE)
    assert [(e.body, e.attempts, e.created_ms) for e in pending] == [
        ("first", 2, 100),
        ("second", 0, 100),
    ]
    assert pending[0].message_id == ids[0]
    assert [e.body for e in profile.pending_outbox(GUEST)] == ["guest"]
    profile.close()


def test_outbox_is_bounded(profile: Profile) -> None:
    with profile.batch():
        for i in range(MAX_OUTBOX_PER_CONVERSATION):
            profile.enqueue_outbox(i.to_bytes(16, "big"), ALICE, "x", created_ms=i)
    with pytest.raises(OutboxFull, match="waiting"):
        profile.enqueue_outbox(b"\xff" * 16, ALICE, "one too many", created_ms=0)
    assert profile.enqueue_outbox(b"\xff" * 16, GUEST, "other queue", created_ms=0)


def test_keep_history_setting_persists(profile: Profile) -> None:
    profile.set_keep_history(False)
    profile = reopen(profile)
    assert not profile.settings.keep_history
    profile.set_keep_history(True)
    profile = reopen(profile)
    assert profile.settings.keep_history
    profile.close()


def test_keep_history_cannot_switch_inside_batch(profile: Profile) -> None:
    with profile.batch(), pytest.raises(RuntimeError, match="batch"):
        profile.set_keep_history(False)
    assert profile.settings.keep_history
