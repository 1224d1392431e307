"""The pure state behind the screens: Roster, ConversationLog, settings."""

from __future__ import annotations

import stat
from pathlib import Path

from p2pchat.node.events import (
    ContactRequestReceived,
    GuestJoined,
    GuestLeft,
    GuestPath,
    PeerFound,
    PeerLost,
    SessionChanged,
)
from p2pchat.tui.conversation_log import MAX_LINES_PER_CONVERSATION, ConversationLog
from p2pchat.tui.roster import Change, Roster
from p2pchat.tui.settings import TuiSettings, load_settings, save_settings, settings_path
from tests.tui.fakes import BOB, CAROL, DAVE, bob_history


def test_roster_sorts_contacts_requests_and_strangers() -> None:
    roster = Roster()
    roster.set_contacts([CAROL, BOB, DAVE])
    assert roster.apply(PeerFound(BOB.peer_id, "bob", [], True)) is Change.CONTACTS
    roster.apply(PeerFound("erin-0000-0000-0000", "erin", [], False))
    roster.apply(PeerFound(DAVE.peer_id, "dave", [], False))
    assert [c.name for c in roster.accepted()] == ["bob", "carol"]
    assert [c.name for c in roster.requests()] == ["dave"]
    assert [p.name for p in roster.strangers()] == ["erin"]  # dave asked: not a stranger
    assert roster.online(BOB.peer_id)
    assert not roster.online(CAROL.peer_id)


def test_roster_sessions_follow_events_and_lost_peers() -> None:
    roster = Roster()
    roster.apply(PeerFound(BOB.peer_id, "bob", [], True))
    assert roster.apply(SessionChanged(BOB.peer_id, "bob", "open")) is Change.SIDEBAR
    assert roster.session(BOB.peer_id) == "open"
    roster.apply(SessionChanged(BOB.peer_id, "bob", "closed", "gone"))
    assert roster.session(BOB.peer_id) == "none"
    roster.apply(SessionChanged(BOB.peer_id, "bob", "connecting"))
    roster.apply(PeerLost(BOB.peer_id, "bob"))
    assert roster.session(BOB.peer_id) == "none"
    assert not roster.online(BOB.peer_id)


def test_roster_guests_and_requests() -> None:
    roster = Roster()
    assert roster.apply(ContactRequestReceived("x", "x")) is Change.CONTACTS
    roster.apply(GuestJoined("guest:a", "Ann", "inv", "123", "relay"))
    roster.apply(GuestJoined("guest:b", "Ben", "inv", "456", "direct"))
    roster.apply(GuestLeft("guest:a", "Ann", "closed the page"))
    assert [(g.name, g.state) for g in roster.guest_list()] == [("Ben", "joined"), ("Ann", "left")]
    roster.count_unread("guest:b")
    roster.count_unread("guest:b")
    assert roster.total_unread() == 2
    assert roster.mark_read("guest:b")
    assert not roster.mark_read("guest:b")


def test_roster_follows_a_guest_moving_path() -> None:
    roster = Roster()
    roster.apply(GuestJoined("guest:c", "Cy", "inv", "789", "turn"))
    assert roster.apply(GuestPath("guest:c", "Cy", "direct")) is Change.SIDEBAR
    assert [(g.name, g.path) for g in roster.guest_list()] == [("Cy", "direct")]
    assert roster.apply(GuestPath("guest:unknown", "Nobody", "turn")) is Change.SIDEBAR
    assert [g.name for g in roster.guest_list()] == ["Cy"]


def test_log_seeds_history_and_moves_states_forward_only() -> None:
    log = ConversationLog()
    log.seed(bob_history().stored[BOB.peer_id])
    states = [line.state for line in log.lines()]
    assert states == ["in", "delivered", "in", "sent", "queued"]
    queued = log.lines()[-1].message_id
    assert log.advance(queued, "sent")
    assert not log.advance(queued, "queued")  # never backwards
    assert log.advance(queued, "delivered")
    assert not log.advance(log.lines()[0].message_id, "delivered")  # incoming: no state


def test_log_keeps_a_state_that_came_before_its_message() -> None:
    log = ConversationLog()
    assert not log.advance("aa", "delivered")  # the receipt overtook the message event
    assert log.add(message_id="aa", direction="out", sender="me", timestamp_ms=1, text="hi")
    assert log.lines()[0].state == "delivered"
    assert not log.add(message_id="aa", direction="out", sender="me", timestamp_ms=1, text="hi")


def test_log_is_bounded() -> None:
    log = ConversationLog()
    for n in range(MAX_LINES_PER_CONVERSATION + 5):
        log.add(message_id=f"{n}", direction="in", sender="b", timestamp_ms=n, text="x")
    lines = log.lines()
    assert len(lines) == MAX_LINES_PER_CONVERSATION
    assert lines[0].message_id == "5"


def test_settings_round_trip_private(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == TuiSettings(notifications=True)
    save_settings(tmp_path, TuiSettings(notifications=False))
    assert load_settings(tmp_path) == TuiSettings(notifications=False)
    assert stat.S_IMODE(settings_path(tmp_path).stat().st_mode) == 0o600


def test_settings_survive_a_bad_file(tmp_path: Path) -> None:
    for text in ("{", "[]", '{"notifications": "no", "other": 1}', "\xff"):
        settings_path(tmp_path).write_text(text)
        assert load_settings(tmp_path) == TuiSettings()
