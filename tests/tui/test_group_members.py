"""The member list's newer parts over the scripted node (tests/tui/fakes.py): keeping a
browser guest, members that need a newer p2pchat or only share a contact's name, name
clash warnings, and how many members have each of my group messages ("✓ 2/3")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual.widgets import Button, OptionList

from p2pchat.control.api import GroupMemberView, GroupView
from p2pchat.crypto.identity import peer_id
from p2pchat.node.events import (
    GroupChanged,
    GuestJoined,
    GuestLeft,
    ReceiptEvent,
    SessionChanged,
)
from p2pchat.store import KdfLimits, StoredMessage, create_profile
from p2pchat.store.records import DeliveryState, Direction
from p2pchat.tui.chat_pane import ChatLog
from p2pchat.tui.group_members_screen import GroupMembersScreen
from p2pchat.tui.history import ProfileHistory
from tests.tui.fakes import (
    BOB,
    CAROL,
    ME,
    NOW_MS,
    FakeNode,
    MainScreenApp,
    bob_history,
    stored,
    until,
)
from tests.tui.test_groups import SIZE, bobs_group, member_rows, open_members, toasts
from tests.tui.test_start_chat import lines_of

GUEST = "guest:Zm9vYmFyYmF6"


def guest_member(name: str = "gus", *, kept: bool = False) -> GroupMemberView:
    return GroupMemberView(GUEST, name, "guest", admin=False, me=False, online=True,
                           contact=False, kept=kept)  # fmt: skip


async def my_group_with_a_guest(node: FakeNode) -> GroupView:
    """A group I am the admin of: bob, carol (offline) and a browser guest in it."""
    group = await node.async_group_create("family", [BOB.peer_id, CAROL.peer_id])
    group = replace(group, members=[*group.members, guest_member()])
    node.groups[group.conversation] = group
    node.events += [
        SessionChanged(BOB.peer_id, "bob", "open"),
        GuestJoined(GUEST, "gus", "inv1", "12345 67890 13579", "direct"),
    ]
    return group


def highlight(screen: GroupMembersScreen, index: int) -> None:
    screen.query_one("#members", OptionList).highlighted = index


async def test_the_admin_keeps_a_guest_who_then_shows_away() -> None:
    node = FakeNode()
    group = await my_group_with_a_guest(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app, group.conversation)
        keep = screen.query_one("#keep", Button)
        highlight(screen, 1)  # bob: a LAN member, nothing to keep
        await until(pilot, lambda: keep.disabled, "keep off for bob")
        await pilot.press("k")
        highlight(screen, 3)
        await until(pilot, lambda: not keep.disabled, "keep on for the guest")
        assert "guest" in member_rows(screen)[3]
        assert "kept" not in member_rows(screen)[3]
        await pilot.press("k")
        await until(pilot, lambda: "guest, kept" in member_rows(screen)[3], "kept")
        assert [c for c in node.calls if c[0] == "group_keep"] == [
            ("group_keep", (group.conversation, GUEST))
        ]
        assert keep.disabled  # kept already
        assert "online" in member_rows(screen)[3]
        # No event comes for a keep: a redraw from the main screen's own view keeps it.
        await node.queue.put(SessionChanged(CAROL.peer_id, "carol", "open"))
        await until(pilot, lambda: "online" in member_rows(screen)[2], "carol online")
        assert "guest, kept" in member_rows(screen)[3]
        await node.queue.put(GuestLeft(GUEST, "gus", "the page was closed"))
        await until(pilot, lambda: "away" in member_rows(screen)[3], "the guest away")
        assert "offline" not in member_rows(screen)[3]


async def test_a_refused_keep_is_one_line_and_keeps_the_dialog() -> None:
    node = FakeNode(refuse_keep="gus has left family: it cannot be kept")
    group = await my_group_with_a_guest(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app, group.conversation)
        highlight(screen, 3)
        await until(pilot, lambda: not screen.query_one("#keep", Button).disabled, "keep on")
        await pilot.press("k")
        await until(pilot, lambda: any("cannot be kept" in t for t in toasts(app)), "the line")
        assert app.screen is screen
        assert "kept" not in member_rows(screen)[3]


async def test_keep_is_off_for_a_member_who_is_not_the_admin() -> None:
    node = FakeNode()
    group = bobs_group(node)
    group = replace(group, members=[*group.members, guest_member()])
    node.groups[group.conversation] = group
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app, group.conversation)
        highlight(screen, 3)
        await pilot.pause(0.1)
        assert screen.query_one("#keep", Button).disabled
        await pilot.press("k")
        await pilot.pause(0.1)
        assert not any(c[0] == "group_keep" for c in node.calls)


async def test_rows_say_needs_a_newer_p2pchat_and_not_your_contact() -> None:
    node = FakeNode()
    group = bobs_group(node)
    old_bob = replace(group.members[0], needs_upgrade=True)
    impostor = GroupMemberView("mall-0000-1111-2222", "carol", "lan", admin=False, me=False,
                               online=False, contact=False, not_contact="carol")  # fmt: skip
    group = replace(group, members=[old_bob, *group.members[1:], impostor])
    node.groups[group.conversation] = group
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app, group.conversation)
        rows = member_rows(screen)
        assert "needs a newer p2pchat" in rows[0]
        assert "online" not in rows[0]
        assert "not your contact" not in rows[2]  # the real carol
        assert "carol (not your contact carol)" in rows[3]


async def test_a_name_clash_is_a_warning_notice_and_a_toast() -> None:
    node = FakeNode()
    group = bobs_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: group.conversation in app.main.roster.groups, "known")
        event = GroupChanged(group.group_id, "family", "name_clash", "mall-0000-1111-2222",
                             "carol", 4)  # fmt: skip
        await node.queue.put(event)
        await until(pilot, lambda: any("not your contact carol" in t for t in toasts(app)),
                    "a toast")  # fmt: skip
        assert any(n.severity == "warning" for n in app._notifications)
        lines = app.main.conversations.log(group.conversation).lines()
        notices = [(line.text, line.state) for line in lines if line.direction == "notice"]
        assert (
            "careful: carol (mall-0000-1111-2222) is not your contact carol: another key",
            "warning",
        ) in notices


def my_group_history(label: str) -> tuple[StoredMessage, ...]:
    return (
        stored(label, 1, "dinner at 8?", "out", "delivered", "alice"),
        stored(label, 2, "bring cake", "out", "sent", "alice"),
    )


async def test_my_group_messages_say_how_many_members_have_them() -> None:
    node = FakeNode()
    group = await my_group_with_a_guest(node)  # the guest does not count: LAN members only
    label = group.conversation
    first, second = my_group_history(label)
    history = bob_history()
    history.stored[label] = [first, second]
    history.delivered[label] = {first.message_id.hex(): [BOB.peer_id]}
    app = MainScreenApp(node, history)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: label in app.main.roster.groups, "known")
        app.main.open_conversation(label, focus_input=False)

        def line_of(text: str) -> str:
            return next((t for t in lines_of(app.main.chat.query_one(ChatLog)) if text in t), "")

        await until(pilot, lambda: "✓ 1/2" in line_of("dinner at 8?"), "bob has it (history)")
        assert "✓ sent" in line_of("bring cake")  # no receipt yet
        for member in (CAROL.peer_id, CAROL.peer_id, BOB.peer_id):  # carol's twice: once
            await node.queue.put(ReceiptEvent(label, member, first.message_id.hex()))
        await node.queue.put(ReceiptEvent(label, CAROL.peer_id, second.message_id.hex()))
        await until(pilot, lambda: "✓ 2/2" in line_of("dinner at 8?"), "both have it")
        await until(pilot, lambda: "✓ 1/2" in line_of("bring cake"), "carol has it")
        # A receipt that overtakes its message still counts.
        await node.queue.put(ReceiptEvent(label, BOB.peer_id, "ff" + "0" * 29 + "1"))
        app.main.chat.input.focus()
        await pilot.press(*"on my way", "enter")
        await until(pilot, lambda: "✓ 1/2" in line_of("on my way"), "bob has it (early)")
        # The total is the members now: carol removed, her copy no longer counts.
        await node.async_group_remove(label, CAROL.peer_id)
        await until(pilot, lambda: "✓ 1/1" in line_of("dinner at 8?"), "out of bob only")
        assert "✓ 0/1" in line_of("bring cake")


def test_history_reads_who_has_my_group_messages(tmp_path: Path) -> None:
    label = "group:" + "ab" * 16
    with create_profile(
        tmp_path / "p", "pass", name="alice", identity_seed=bytes(32),
        kdf_limits=KdfLimits(opslimit=1, memlimit=8192),
    ) as profile:  # fmt: skip
        mine = StoredMessage(bytes(range(16)), label, Direction.OUT, "alice", NOW_MS, "hi all",
                             DeliveryState.SENT)  # fmt: skip
        profile.add_message(mine)
        bob, carol = b"\x01" * 32, b"\x02" * 32
        assert profile.groups.add_delivery(mine.message_id, bob)
        assert profile.groups.add_delivery(mine.message_id, carol)
        history = ProfileHistory(profile)
        reached = history.reached(label)
        assert {m: sorted(members) for m, members in reached.items()} == {
            mine.message_id.hex(): sorted([peer_id(bob), peer_id(carol)])
        }
        assert history.reached(ME.peer_id) == {}  # a 1:1 conversation: no such thing
