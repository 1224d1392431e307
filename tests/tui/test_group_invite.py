"""Start chat for a group (issue 12): with a group open that I am the admin of, ``s``
makes a link whose guests join that group; the member list offers the same; links
say what they are for. Over the scripted node (tests/tui/fakes.py keeps the node's
rule: only the admin invites); the real node: test_tui_lan.py's group scenario."""

from __future__ import annotations

import dataclasses

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from p2pchat.control.api import GroupView
from p2pchat.tui.group_members_screen import GroupMembersScreen
from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.main_screen import MainScreen
from tests.tui.fakes import BOB, CAROL, FakeNode, MainScreenApp, bob_history, until
from tests.tui.test_groups import bobs_group, open_members, toasts
from tests.tui.test_start_chat import BUTTONS, all_shown, shown_id, text_of

SIZE = (110, 46)


def invite_calls(node: FakeNode) -> list[object]:
    """The group each invite the node was asked for was for (None: 1:1)."""
    return [args[2] for name, args in node.calls if name == "invite"]


async def my_group(node: FakeNode) -> GroupView:
    return await node.async_group_create("family", [BOB.peer_id, CAROL.peer_id])


async def press_s_in(pilot: Pilot[None], app: MainScreenApp, label: str | None) -> None:
    """Open ``label`` (None: nothing open) and press ``s`` from the sidebar."""
    await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
    if label is not None:
        await until(pilot, lambda: label in app.main.roster.groups or not label.startswith("group:"),
                    "the group known")  # fmt: skip
        app.main.open_conversation(label, focus_input=False)
    app.main.sidebar.options.focus()
    await pilot.press("s")


async def invite_shown(pilot: Pilot[None], app: MainScreenApp, count: int) -> InviteScreen:
    await until(
        pilot,
        lambda: (
            isinstance(app.screen, InviteScreen)
            and app.screen.invite is not None
            and len(app.screen.invites) == count
        ),
        f"{count} links listed",
    )
    assert isinstance(app.screen, InviteScreen)
    return app.screen


def title(screen: InviteScreen) -> str:
    return text_of(screen.query_one("#invite-title"))


async def test_s_in_my_group_makes_a_link_for_that_group_and_revokes_it() -> None:
    node = FakeNode()
    group = await my_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await press_s_in(pilot, app, group.conversation)
        screen = await invite_shown(pilot, app, 1)
        assert invite_calls(node) == [group.conversation]
        assert "Invite to family" in title(screen)
        assert "Guests who open this join the group family" in text_of(
            screen.query_one("#invite-link")
        )
        await pilot.press("x")
        await until(pilot, lambda: ("revoke", ("inv1",)) in node.calls, "revoked")
        await until(pilot, lambda: "Revoked" in text_of(screen.query_one("#invite-status")),
                    "said so")  # fmt: skip
        await pilot.press("n")  # a new link of the same kind
        await invite_shown(pilot, app, 2)
        assert invite_calls(node) == [group.conversation] * 2
        assert "Invite to family" in title(screen)


async def test_a_member_who_is_not_the_admin_gets_one_line_and_no_link() -> None:
    node = FakeNode()
    group = bobs_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await press_s_in(pilot, app, group.conversation)
        await until(pilot, lambda: any("Only family's admin, bob, can invite guests" in t
                                       for t in toasts(app)), "the notice")  # fmt: skip
        assert app.screen is app.main
        assert invite_calls(node) == []


async def test_a_group_i_left_offers_no_link() -> None:
    node = FakeNode()
    group = await node.async_group_create("family", [])
    await node.async_group_leave(group.conversation)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await press_s_in(pilot, app, group.conversation)
        await until(pilot, lambda: any("You left family" in t for t in toasts(app)), "notice")
        assert app.screen is app.main
        assert invite_calls(node) == []


async def test_the_open_links_say_which_is_for_which_and_s_offers_the_matching_one() -> None:
    node = FakeNode()
    group = await my_group(node)
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        # Nothing open: a 1:1 link, as before groups.
        await press_s_in(pilot, app, None)
        screen = await invite_shown(pilot, app, 1)
        assert title(screen) == "Start chat"
        await pilot.press("escape")
        # The group open: its own link, not the open 1:1 one; both listed, labelled.
        await press_s_in(pilot, app, group.conversation)
        screen = await invite_shown(pilot, app, 2)
        assert shown_id(screen) == "inv2"
        assert invite_calls(node) == [None, group.conversation]
        assert "Invite to family" in title(screen)
        assert "link 2 of 2" in title(screen)
        await pilot.press("left")
        assert shown_id(screen) == "inv1"
        assert title(screen).startswith("Start chat  ·  link 1 of 2")
        await pilot.press("n")  # from the group's dialog: a group link
        await invite_shown(pilot, app, 3)
        assert invite_calls(node) == [None, group.conversation, group.conversation]
        assert "Invite to family" in title(screen)
        await pilot.press("escape")
        # A 1:1 conversation open: the 1:1 link again, no new one.
        await press_s_in(pilot, app, BOB.peer_id)
        screen = await invite_shown(pilot, app, 3)
        assert shown_id(screen) == "inv1"
        assert title(screen).startswith("Start chat  ·")
        assert len(invite_calls(node)) == 3


async def test_a_link_made_outside_the_tui_says_it_is_not_known() -> None:
    node = FakeNode()
    await node.async_invite(expires_s=600, uses=1, label=None, approve=False)  # p2pchat invite
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await press_s_in(pilot, app, None)
        screen = await invite_shown(pilot, app, 2)  # not offered as a 1:1 link: a new one
        assert invite_calls(node) == [None, None]
        await pilot.press("left")
        assert "made elsewhere" in title(screen)
        assert "cannot tell" in text_of(screen.query_one("#invite-link"))


async def test_the_member_list_invites_guests_for_the_admin_only() -> None:
    node = FakeNode()
    mine = await my_group(node)
    theirs = node.join_group("book club", BOB, [CAROL])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        members = await open_members(pilot, app, theirs.conversation)
        assert members.query_one("#invite", Button).disabled
        await pilot.press("i")
        assert app.screen is members
        await pilot.press("escape")
        members = await open_members(pilot, app, mine.conversation)
        button = members.query_one("#invite", Button)
        assert not button.disabled
        button.focus()
        await pilot.press("enter")
        screen = await invite_shown(pilot, app, 1)
        assert invite_calls(node) == [mine.conversation]
        assert "Invite to family" in title(screen)
        await pilot.press("escape")
        assert isinstance(app.screen, GroupMembersScreen)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_the_group_dialog_fits(size: tuple[int, int]) -> None:
    node = FakeNode()
    group = await node.async_group_create("é" * 32, [BOB.peer_id])  # the longest name
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=size) as pilot:
        await press_s_in(pilot, app, group.conversation)
        screen = await invite_shown(pilot, app, 1)
        assert "Invite to éééé" in title(screen)
        parts = ["#qr", "#invite-title", "#invite-link", "#invite-status"]
        await all_shown(pilot, app, screen, parts + [f"#{name}" for name in BUTTONS])


async def test_a_group_link_made_elsewhere_is_labelled_from_the_nodes_view() -> None:
    node = FakeNode()
    mine = await my_group(node)
    # As `p2pchat invite --group family` makes it: the node's view names the group.
    made = await node.async_invite(expires_s=900, uses=1, label=None, approve=False,
                                   group=mine.conversation)  # fmt: skip
    node.invites[made.invite_id] = dataclasses.replace(
        made, group=mine.conversation, group_name=mine.name
    )
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await press_s_in(pilot, app, mine.conversation)
        screen = await invite_shown(pilot, app, 1)  # offered, not made again
        assert invite_calls(node) == [mine.conversation]
        assert "Invite to family" in title(screen)
