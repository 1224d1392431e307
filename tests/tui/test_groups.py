"""Groups in the TUI over the scripted node (tests/tui/fakes.py, which keeps the
node's group rules): the sidebar, New group, the member list, notices, history.
The same against the real node: test_tui_lan.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Input, OptionList, SelectionList, Static

from p2pchat.control.api import GroupView
from p2pchat.node.events import (
    GroupChanged,
    GroupMessageRefused,
    PeerFound,
    SessionChanged,
)
from p2pchat.store import KdfLimits, StoredMessage, create_profile
from p2pchat.store.records import DeliveryState, Direction
from p2pchat.tui.chat_pane import ChatLog, render_chat_line
from p2pchat.tui.confirm_screen import ConfirmScreen
from p2pchat.tui.group_members_screen import GroupMembersScreen, PickContactScreen
from p2pchat.tui.help_screen import HelpScreen
from p2pchat.tui.history import ProfileHistory
from p2pchat.tui.new_group_screen import NewGroupScreen
from tests.tui.fakes import (
    BOB,
    CAROL,
    ME,
    NOW_MS,
    FakeNode,
    MainScreenApp,
    bob_history,
    group_message,
    until,
)
from tests.tui.test_start_chat import all_shown, lines_of

SIZE = (110, 34)
SIZES = [(80, 24), (100, 30), (110, 46)]
MARKUP_NAME = "[red]mallory[/red]"


def bobs_group(node: FakeNode) -> GroupView:
    """A group bob (online, a session open) is the admin of; carol is in it too."""
    group = node.join_group("family", BOB, [CAROL])
    node.events += [
        PeerFound(BOB.peer_id, "bob", ["192.168.1.21"], True),
        SessionChanged(BOB.peer_id, "bob", "open"),
    ]
    return group


def row_text(app: MainScreenApp, option_id: str) -> str:
    options = app.main.sidebar.options
    return str(options.get_option(option_id).prompt)


def chat_text(app: MainScreenApp) -> list[str]:
    return [str(render_chat_line(line, "me")) for line in app.main.conversations.log(
        app.main.current or "").lines()]  # fmt: skip


def toasts(app: MainScreenApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_sidebar_lists_a_group_with_its_unread_count_and_opens_it() -> None:
    node = FakeNode()
    group = bobs_group(node)
    node.events += [
        group_message(group, BOB, 1, "dinner at 8?"),
        group_message(group, CAROL, 2, "[bold]yes[/bold]", name=MARKUP_NAME),
    ]
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        row = f"k:{group.conversation}"
        await until(pilot, lambda: app.main.roster.unread.get(group.conversation) == 2, "unread")
        await until(pilot, lambda: "2" in row_text(app, row), "the count in the sidebar")
        assert "family" in row_text(app, row)
        assert "2/3" in row_text(app, row)  # bob and I are online, carol is not
        options = app.main.sidebar.options
        options.focus()
        options.highlighted = options.get_option_index(row)
        await pilot.press("enter")
        await until(pilot, lambda: app.main.current == group.conversation, "the group open")
        assert app.main.roster.unread == {}
        log = "\n".join(lines_of(app.main.chat.query_one(ChatLog)))
        assert "bob" in log
        assert "dinner at 8?" in log
        # Names and texts from the network are text, never markup.
        assert MARKUP_NAME[:11] in log
        assert "[bold]yes[/bold]" in log
        await pilot.press(*"coming", "enter")
        await until(pilot, lambda: ("send", (group.conversation, "coming")) in node.calls, "sent")
        await until(pilot, lambda: any("me" in t and "coming" in t for t in chat_text(app)),
                    "my line, as me")  # fmt: skip
        title = str(app.main.chat.query_one("#chat-title", Static).render())
        assert "2 of 3 online" in title
        assert "members (m)" in title


async def press_create(pilot: Pilot[None], screen: Screen[object]) -> None:
    button = screen.query_one("#create", Button)
    # A button ignores a press while it still shows the last one (-active).
    await until(pilot, lambda: not button.has_class("-active"), "the button ready")
    button.focus()
    await pilot.press("enter")


async def test_new_group_picks_members_from_accepted_contacts() -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, NewGroupScreen), "the dialog")
        screen = app.screen
        members = screen.query_one("#group-members", SelectionList)
        # Accepted contacts only: dave has only asked.
        assert [str(members.get_option_at_index(i).prompt).split()[0]
                for i in range(members.option_count)] == ["bob", "carol"]  # fmt: skip
        await press_create(pilot, screen)  # no name yet: one line says so
        await until(pilot, lambda: "name" in str(
            screen.query_one("#new-group-error", Static).render()), "the error")  # fmt: skip
        screen.query_one("#group-name", Input).value = "é" * 33  # 66 bytes
        await press_create(pilot, screen)
        await until(pilot, lambda: "64 bytes" in str(
            screen.query_one("#new-group-error", Static).render()), "the bound")  # fmt: skip
        screen.query_one("#group-name", Input).value = ""
        screen.query_one("#group-name", Input).focus()
        await pilot.press(*"family", "enter")  # Enter goes on to the members
        assert members.has_focus
        await pilot.press("space", "down", "space")
        await press_create(pilot, screen)
        await until(pilot, lambda: not isinstance(app.screen, NewGroupScreen), "closed")
        assert ("group_create", ("family", (BOB.peer_id, CAROL.peer_id))) in node.calls
        label = next(iter(node.groups))
        await until(pilot, lambda: app.main.current == label, "the new group open")
        await until(pilot, lambda: any("you created family" in t for t in chat_text(app)),
                    "the notice")  # fmt: skip
        assert "family" in row_text(app, f"k:{label}")


async def test_a_refused_name_keeps_the_dialog_open_with_the_nodes_line() -> None:
    node = FakeNode()
    await node.async_group_create("family", [])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await pilot.press("g", *"family")
        screen = app.screen
        assert isinstance(screen, NewGroupScreen)
        await press_create(pilot, screen)
        await until(pilot, lambda: "already" in str(
            screen.query_one("#new-group-error", Static).render()), "the node's line")  # fmt: skip
        await pilot.press("escape")
        assert not isinstance(app.screen, NewGroupScreen)


async def open_members(pilot: Pilot[None], app: MainScreenApp, label: str) -> GroupMembersScreen:
    await until(pilot, lambda: label in app.main.roster.groups, "the group known")
    app.main.open_conversation(label, focus_input=False)
    app.main.sidebar.options.focus()
    await pilot.press("m")
    await until(pilot, lambda: isinstance(app.screen, GroupMembersScreen), "members")
    assert isinstance(app.screen, GroupMembersScreen)
    return app.screen


def member_rows(screen: GroupMembersScreen) -> list[str]:
    members = screen.query_one("#members", OptionList)
    return [str(members.get_option_at_index(i).prompt) for i in range(members.option_count)]


async def test_the_admin_adds_removes_and_cannot_leave_while_others_remain() -> None:
    node = FakeNode()
    node.events += [SessionChanged(BOB.peer_id, "bob", "open")]
    group = await node.async_group_create("family", [BOB.peer_id])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app, group.conversation)
        rows = member_rows(screen)
        assert "alice" in rows[0]
        assert "you, admin" in rows[0]
        assert "online" in rows[0]
        assert "bob" in rows[1]
        assert "online" in rows[1]
        assert "offline" not in rows[1]
        assert not screen.query_one("#remove", Button).disabled
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PickContactScreen), "the picker")
        picker = app.screen.query_one("#pick-contact", OptionList)
        assert picker.option_count == 1  # carol: bob is in already, dave is no contact
        await pilot.press("enter")
        await until(pilot, lambda: len(member_rows(screen)) == 3, "carol added")
        assert ("group_add", (group.conversation, CAROL.peer_id)) in node.calls
        assert "carol" in member_rows(screen)[2]
        assert "offline" in member_rows(screen)[2]
        screen.query_one("#members", OptionList).highlighted = 1
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        await until(pilot, lambda: len(member_rows(screen)) == 2, "bob removed")
        assert ("group_remove", (group.conversation, BOB.peer_id)) in node.calls
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        await until(pilot, lambda: any("remove the other members" in t for t in toasts(app)),
                    "the node's one line")  # fmt: skip
        assert app.screen is screen  # still open, still a member
        await pilot.press("escape")
        await until(pilot, lambda: any("bob was removed" in t for t in chat_text(app)), "notice")
        assert any("carol joined" in t for t in chat_text(app))


async def test_a_member_sees_remove_disabled_and_leaves_after_confirming() -> None:
    node = FakeNode()
    group = bobs_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app, group.conversation)
        assert screen.query_one("#add", Button).disabled
        assert screen.query_one("#remove", Button).disabled
        assert "Only the admin (bob)" in str(screen.query_one("#members-note", Static).render())
        assert "admin" in member_rows(screen)[0]
        assert "bob" in member_rows(screen)[0]
        await pilot.press("x", "a")
        assert not any(call[0].startswith("group_") for call in node.calls)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked")
        await pilot.press("n")  # changed my mind
        assert app.screen is screen
        assert ("group_leave", (group.conversation,)) not in node.calls
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        await until(pilot, lambda: app.screen is app.main, "back in the group")
        assert ("group_leave", (group.conversation,)) in node.calls
        await until(pilot, lambda: app.main.chat.input.disabled, "nothing more to send")
        assert "left" in app.main.chat.input.placeholder
        await until(pilot, lambda: "left" in row_text(app, f"k:{group.conversation}"), "sidebar")
        await until(pilot, lambda: any("you left the group" in t for t in chat_text(app)), "line")


async def test_group_changes_and_refusals_are_notices_in_the_conversation() -> None:
    node = FakeNode()
    group = bobs_group(node)
    gid = group.group_id
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: group.conversation in app.main.roster.groups, "known")
        app.main.open_conversation(group.conversation, focus_input=False)
        for event in [
            GroupChanged(gid, "family", "member_added", "erin-1", MARKUP_NAME, 4),
            GroupChanged(gid, "family", "member_left", CAROL.peer_id, "carol", 5),
            GroupMessageRefused(gid, BOB.peer_id, "group-bad-signature", "a forged signature"),
            group_message(group, BOB, 7, "where is everyone", missing_before=2),
            GroupChanged(gid, "family", "you_were_removed", ME.peer_id, ME.name, 6),
        ]:
            await node.queue.put(event)
        await until(pilot, lambda: any("you were removed" in t for t in chat_text(app)), "all")
        lines = app.main.conversations.log(group.conversation).lines()
        notices = [(line.text, line.state) for line in lines if line.direction == "notice"]
        assert (f"{MARKUP_NAME} joined", "info") in notices
        assert ("carol left", "info") in notices
        assert ("you were removed", "warning") in notices
        refused = [text for text, state in notices if state == "warning" and "refused" in text]
        assert refused
        assert "a forged signature" in refused[0]
        assert "bob" in refused[0]
        gap = [i for i, line in enumerate(lines) if "2 earlier messages from bob" in line.text]
        message = [i for i, line in enumerate(lines) if line.text == "where is everyone"]
        assert gap
        assert message
        assert gap[0] == message[0] - 1
        log = "\n".join(lines_of(app.main.chat.query_one(ChatLog)))
        assert f"{MARKUP_NAME} joined" in log  # literal, not red


async def test_a_refusal_naming_no_group_i_hold_is_a_warning_toast() -> None:
    node = FakeNode(events=[GroupMessageRefused("", BOB.peer_id, "group-unknown", "no such group")])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any("no such group" in t for t in toasts(app)), "the toast")


@pytest.mark.parametrize("size", SIZES)
async def test_group_dialogs_fit(size: tuple[int, int]) -> None:
    node = FakeNode()
    group = bobs_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.1)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, NewGroupScreen), "new group")
        await all_shown(pilot, app, app.screen,
                        ["#group-name", "#group-members", "#create", "#cancel"])  # fmt: skip
        await pilot.press("escape")
        screen = await open_members(pilot, app, group.conversation)
        await all_shown(pilot, app, screen, ["#members-title", "#members", "#members-note",
                                              "#add", "#remove", "#invite", "#keep", "#leave", "#close"])  # fmt: skip
        await pilot.press("escape")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert "New&#160;group" in app.export_screenshot()


async def test_footer_offers_new_group_and_members_within_80_columns() -> None:
    node = FakeNode()
    group = bobs_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: group.conversation in app.main.roster.groups, "known")

        def footer() -> dict[str, tuple[int, int]]:
            keys = app.main.query("FooterKey")
            return {str(k.render()).strip(): (k.region.x, k.region.right) for k in keys}

        app.main.open_conversation(group.conversation, focus_input=False)
        app.main.sidebar.options.focus()
        await until(pilot, lambda: "m Members" in footer(), "members in the footer")
        shown = footer()
        assert "g New group" in shown
        palette = shown.pop("^p palette")
        assert all(right <= palette[0] for _, right in shown.values()), shown  # none hidden


def test_history_reads_a_group_conversation(tmp_path: Path) -> None:
    label = "group:" + "ab" * 16
    with create_profile(
        tmp_path / "p", "pass", name="alice", identity_seed=bytes(32),
        kdf_limits=KdfLimits(opslimit=1, memlimit=8192),
    ) as profile:  # fmt: skip
        profile.add_message(
            StoredMessage(
                bytes(16),
                label,
                Direction.IN,
                "bob",
                NOW_MS,
                "hello family",
                DeliveryState.DELIVERED,
                sender_key=bytes(32),
            )
        )
        history = ProfileHistory(profile)
        assert [m.body for m in history.messages(label, limit=10)] == ["hello family"]
        assert history.label_of(label) == label
        assert history.messages("group:" + "AB" * 16, limit=10) == []  # one spelling only
