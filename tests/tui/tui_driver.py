"""Drives the real TUI (ChatApp + the real node) with Textual's Pilot, inside a
network namespace; run by test_tui_lan.py as ``python -m tests.tui.tui_driver``.

Argument: one JSON object (see ``Args``). Prints one JSON line per step passed
(``{"step": ...}``); ``{"wait": "impostor"}`` asks the test to start an impostor
node and to answer with a line on stdin. Exits 0 when the scenario is through,
1 with ``{"error": ...}`` when a step fails. The peer ("bob", a ``p2pchat
daemon`` in another namespace) is driven with the real CLI over its control
socket, which works from any namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, OptionList, SelectionList, Static

from p2pchat.node_lock import NodeLock
from p2pchat.tui.app import ChatApp
from p2pchat.tui.chat_pane import ChatLog
from p2pchat.tui.confirm_screen import ConfirmScreen
from p2pchat.tui.create_profile_screen import CreateProfileScreen
from p2pchat.tui.group_members_screen import GroupMembersScreen
from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.key_warning_screen import KeyWarningScreen
from p2pchat.tui.main_screen import MainScreen
from p2pchat.tui.new_group_screen import NewGroupScreen
from p2pchat.tui.safety_screen import SafetyScreen
from p2pchat.tui.search_screen import SearchScreen
from p2pchat.tui.unlock_screen import UnlockScreen

SIZE = (120, 44)


@dataclass(frozen=True)
class Args:
    scenario: str  # "chat" | "first_run" | "outbox_at_start" | "group"
    data_dir: str
    passphrase: str
    interface: str
    peer_data_dir: str = ""
    peer_name: str = ""
    peer_id: str = ""
    me: str = "alice"
    # "group": a second contact (carol), a daemon in a third namespace
    other_data_dir: str = ""
    other_id: str = ""


def step(name: str, **detail: Any) -> None:
    print(json.dumps({"step": name, **detail}), flush=True)


async def until(pilot: Pilot[Any], predicate: Callable[[], object], what: str,
                timeout: float = 60.0) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await pilot.pause(0.1)


async def cli(data_dir: str, *args: str, passphrase: str) -> tuple[int, str, str]:
    env = dict(os.environ, P2PCHAT_PASSPHRASE=passphrase)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "p2pchat", "--data-dir", data_dir, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def main_screen(app: ChatApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None, "the main screen is not up"
    return screen


async def choose_row(pilot: Pilot[Any], screen: MainScreen, option_id: str) -> None:
    """Highlight a sidebar row by keyboard (as a user would) and press Enter."""
    options = screen.sidebar.options
    options.focus()
    await pilot.pause()
    target = options.get_option_index(option_id)
    await pilot.press("home")
    for _ in range(options.option_count):
        if options.highlighted == target:
            break
        await pilot.press("down")
    assert options.highlighted == target, f"could not reach {option_id}"
    await pilot.press("enter")


async def unlock(pilot: Pilot[Any], app: ChatApp, passphrase: str) -> None:
    await until(pilot, lambda: isinstance(app.screen, UnlockScreen), "the unlock screen")
    await pilot.press(*"wrong passphrase", "enter")
    status = app.screen.query_one("#unlock-status", Static)
    await until(pilot, lambda: "Wrong passphrase" in str(status.render()), "wrong passphrase")
    step("wrong_passphrase_refused")
    await pilot.press(*passphrase, "enter")
    await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen", 30)
    step("unlocked")


async def chat_scenario(pilot: Pilot[Any], app: ChatApp, args: Args) -> None:
    await unlock(pilot, app, args.passphrase)
    screen = main_screen(app)
    bob = args.peer_id
    peer_cli = args.peer_data_dir

    # The control socket works beside the TUI.
    code, out, err = await cli(args.data_dir, "status", "--json", passphrase=args.passphrase)
    assert code == 0, err
    assert json.loads(out)["name"] == args.me
    step("control_socket")

    # Peers appear, live.
    await until(pilot, lambda: bob in screen.roster.peers, "bob on the LAN")
    await until(pilot, lambda: _has_row(screen, f"p:{bob}"), "bob's row in the sidebar")
    step("peer_found")

    # Ask bob; bob accepts with the CLI; the session opens.
    await choose_row(pilot, screen, f"p:{bob}")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the ask dialog")
    await pilot.press("y")
    await until(pilot, lambda: _state(screen, bob) == "pending_outgoing", "request sent")
    for _ in range(60):
        code, _, err = await cli(peer_cli, "accept", args.me, passphrase=args.passphrase)
        if code == 0:
            break
        await pilot.pause(0.5)
    assert code == 0, f"bob could not accept: {err}"
    await until(pilot, lambda: _state(screen, bob) == "accepted", "contact accepted")
    await until(pilot, lambda: screen.roster.session(bob) == "open", "session open")
    step("contact_accepted")

    # Send: open bob's conversation from the sidebar, type, Enter; wait for the receipt.
    await choose_row(pilot, screen, f"c:{bob}")
    assert screen.current == bob
    assert app.focused is screen.chat.input
    await pilot.press(*"hello from the TUI", "enter")
    await until(pilot, lambda: _line(screen, bob, "hello from the TUI", "delivered"), "delivered")
    step("sent_delivered")

    # Start chat: a link, its QR code, the time left; a message meanwhile is unread.
    await pilot.press("escape")  # to the sidebar
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, InviteScreen), "the invite screen")
    invite_screen = app.screen
    assert isinstance(invite_screen, InviteScreen)
    await until(pilot, lambda: invite_screen.invite is not None, "an invite link", 30)
    invite = invite_screen.invite
    assert invite is not None
    assert invite.url.startswith("https://"), invite.url
    assert "/c/" in invite.url, invite.url
    assert "#" in invite.url, invite.url
    qr = str(invite_screen.query_one("#qr", Static).render())
    assert "█" in qr, "no QR code drawn"
    status = invite_screen.query_one("#invite-status", Static)
    assert "Expires in" in str(status.render())
    step("invite_shown", url=invite.url)

    code, _, err = await cli(peer_cli, "send", args.me, "are you there?",
                             passphrase=args.passphrase)  # fmt: skip
    assert code == 0, err
    await until(pilot, lambda: screen.roster.unread.get(bob) == 1, "unread count")
    assert screen.notifier.sent, "no notification for a message out of view"
    assert app.title.startswith("(1) "), app.title
    step("unread_notified", title=app.title)

    await pilot.press("x")
    await until(pilot, lambda: invite_screen.invite is not None and invite_screen.invite.revoked,
                "revoked")  # fmt: skip
    code, out, err = await cli(args.data_dir, "invites", "--json", passphrase=args.passphrase)
    assert code == 0, err
    listed = [i for i in json.loads(out) if i["invite_id"] == invite.invite_id]
    assert not listed or listed[0]["revoked"], listed
    assert "Revoked" in str(status.render())
    step("invite_revoked")
    await pilot.press("escape")
    await until(pilot, lambda: app.screen is screen, "back to the main screen")
    await choose_row(pilot, screen, f"c:{bob}")
    assert screen.roster.unread.get(bob) is None
    assert _line(screen, bob, "are you there?", "in")
    assert not app.title.startswith("(")
    step("unread_cleared")

    # Safety number: the same digits as bob's; mark verified.
    await pilot.press("escape", "v")
    await until(pilot, lambda: isinstance(app.screen, SafetyScreen), "the safety screen")
    safety = app.screen
    assert isinstance(safety, SafetyScreen)
    code, out, err = await cli(peer_cli, "verify", args.me, "--json", passphrase=args.passphrase)
    assert code == 0, err
    assert safety.view.safety_number == json.loads(out)["safety_number"]
    await pilot.press("m")
    await until(pilot, lambda: screen.roster.contacts[bob].verified, "verified")
    step("safety_verified")

    # Search the history.
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, SearchScreen), "the search screen")
    await pilot.press(*"hello", "enter")
    results = app.screen.query_one("#search-results")
    await until(pilot, lambda: getattr(results, "option_count", 0) == 1, "one search hit")
    await pilot.press("down", "enter")
    await until(pilot, lambda: app.screen is screen and screen.current == bob, "hit opened")
    step("search")

    # Key change: an impostor advertises bob's name with another key.
    print(json.dumps({"wait": "impostor"}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await until(pilot, lambda: isinstance(app.screen, KeyWarningScreen), "key warning", 90)
    warning = app.screen
    for key in ("escape", "enter", "space", "q", "y", "a", "s", "tab", "enter"):
        await pilot.press(key)
        assert app.screen is warning, f"{key!r} closed the key warning"
    step("key_warning_blocks")
    await pilot.press("A")
    await until(pilot, lambda: app.screen is screen, "warning acknowledged")
    assert screen.roster.session(bob) == "open", "the session with the pinned key stays"
    step("key_warning_acknowledged")

    await pilot.press("ctrl+q")


async def first_run_scenario(pilot: Pilot[Any], app: ChatApp, args: Args) -> None:
    await until(pilot, lambda: isinstance(app.screen, CreateProfileScreen), "the create screen")
    create = app.screen
    name = create.query_one("#name", Input)
    name.value = ""
    name.focus()
    await pilot.press(*args.me, "enter")  # Enter moves on to the passphrase
    await pilot.press(*args.passphrase, "enter")
    await pilot.press(*"not the same", "enter")
    error = create.query_one("#create-error", Static)
    await until(pilot, lambda: "differ" in str(error.render()), "passphrases differ")
    step("mismatch_refused")
    second = create.query_one("#passphrase2", Input)
    second.value = ""
    second.focus()
    create.query_one("#history", Checkbox).value = False
    await pilot.press(*args.passphrase, "enter")
    await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen", 30)
    assert not main_screen(app).history.keep_history
    assert await asyncio.to_thread(Path(args.data_dir, "profile.db").exists)
    step("created")
    code, out, err = await cli(args.data_dir, "id", "--json", passphrase=args.passphrase)
    assert code == 0, err
    assert json.loads(out)["name"] == args.me
    step("profile_opens")
    await pilot.press("ctrl+q")


async def outbox_at_start_scenario(pilot: Pilot[Any], app: ChatApp, args: Args) -> None:
    """Bob queued two messages while alice was away; they arrive as her TUI starts.
    Issue 10: counted "1" (the first message of a conversation was missed) or nothing
    (delivered before the main screen subscribed). See ``run`` for the slow screen."""
    await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen", 60)
    screen = main_screen(app)
    bob = args.peer_id
    await until(pilot, lambda: screen.roster.unread.get(bob) == 2, "bob 2 unread", 90)
    assert app.title.startswith("(2) "), app.title
    row = screen.sidebar.options.get_option(f"c:{bob}")
    assert str(row.prompt).rstrip().endswith(f"{args.peer_name}  2"), str(row.prompt)
    step("unread_counted", title=app.title)
    await choose_row(pilot, screen, f"c:{bob}")
    texts = [line.text for line in screen.conversations.log(bob).lines()]
    assert texts == ["while you were away", "second one"], texts
    assert screen.roster.unread == {}
    step("read")
    await pilot.press("ctrl+q")


async def group_scenario(pilot: Pilot[Any], app: ChatApp, args: Args) -> None:
    """Issue 12: the TUI (alice) makes a group with bob and carol (daemons in other
    namespaces, contacts already), talks in it, removes carol, sees bob leave, leaves."""
    await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen", 60)
    screen = main_screen(app)
    bob, carol = args.peer_id, args.other_id
    for peer in (bob, carol):
        await until(pilot, lambda p=peer: screen.roster.session(p) == "open", "sessions", 90)  # type: ignore[misc]
    step("sessions_open")

    # New group: a name, both contacts picked, Create.
    screen.sidebar.options.focus()
    await pilot.press("g")
    await until(pilot, lambda: isinstance(app.screen, NewGroupScreen), "the new group dialog")
    dialog = app.screen
    await pilot.press(*"family", "enter")
    picks = dialog.query_one("#group-members", SelectionList)
    assert picks.has_focus
    await pilot.press("space", "down", "space")
    assert sorted(picks.selected) == sorted([bob, carol]), picks.selected
    dialog.query_one("#create", Button).focus()
    await pilot.press("enter")
    await until(pilot, lambda: app.screen is screen and screen.current is not None, "created", 30)
    label = screen.current or ""
    assert label.startswith("group:"), label
    assert _has_row(screen, f"k:{label}")
    step("group_created")

    # Start chat with my group open: a link whose guests join it. The node's view of
    # the link says which group.
    await pilot.press("escape", "s")
    await until(pilot, lambda: isinstance(app.screen, InviteScreen)
                and app.screen.invite is not None, "the group's link", 30)  # fmt: skip
    invite_screen = app.screen
    assert isinstance(invite_screen, InviteScreen)
    invite = invite_screen.invite
    assert invite is not None
    title = str(invite_screen.query_one("#invite-title", Static).render())
    assert "Invite to family" in title, title
    assert app.host is not None
    group_id = screen.roster.groups[label].group_id
    assert invite.group == f"group:{group_id}", invite
    assert invite.group_name == "family", invite
    await pilot.press("x")
    await until(pilot, lambda: invite_screen.invite is not None and invite_screen.invite.revoked,
                "the group's link revoked", 30)  # fmt: skip
    after = [i for i in await app.host.node.async_invites() if i.invite_id == invite.invite_id]
    assert all(i.revoked for i in after), after  # revoked, or no longer listed
    await pilot.press("escape", "i")
    step("group_invite_made")

    # Talk: mine reaches bob; bob's and carol's come back with their names.
    await pilot.press(*"hello family", "enter")
    for peer_dir in (args.peer_data_dir, args.other_data_dir):
        await until_cli(
            peer_dir,
            args.passphrase,
            ("history", "family", "--json"),
            lambda out: "hello family" in {m["text"] for m in json.loads(out)},
        )
    # Each member's receipt counts on its own: the line says both have it.
    chat_log = screen.chat.query_one(ChatLog)
    await until(pilot, lambda: any("hello family" in t and "✓ 2/2" in t for t in _shown(chat_log)),
                "bob's and carol's receipts", 60)  # fmt: skip
    step("sent_to_members")
    for peer_dir, text in (
        (args.peer_data_dir, "hi from bob"),
        (args.other_data_dir, "hi from carol"),
    ):
        code, _, err = await cli(peer_dir, "send", "family", text, passphrase=args.passphrase)
        assert code == 0, err
    await until(pilot, lambda: _line(screen, label, "hi from bob", "in"), "bob's message", 60)
    await until(pilot, lambda: _line(screen, label, "hi from carol", "in"), "carol's", 60)
    senders = {line.text: line.sender for line in screen.conversations.log(label).lines()}
    assert senders["hi from bob"] == args.peer_name, senders
    assert senders["hi from carol"] == "carol", senders
    step("received_with_names")

    # The member list: all online; remove carol.
    await pilot.press("escape", "m")
    await until(pilot, lambda: isinstance(app.screen, GroupMembersScreen), "the member list")
    members = app.screen
    assert isinstance(members, GroupMembersScreen)
    rows = members.query_one("#members", OptionList)
    await until(pilot, lambda: all("  online" in str(rows.get_option_at_index(i).prompt)
                                   for i in range(rows.option_count)), "all online")  # fmt: skip
    rows.highlighted = rows.get_option_index(carol)
    await pilot.press("x")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "remove asked")
    await pilot.press("y")
    await until(pilot, lambda: rows.option_count == 2, "carol removed", 30)
    await until_cli(
        args.other_data_dir,
        args.passphrase,
        ("groups", "--json"),
        lambda out: [g["state"] for g in json.loads(out)] == ["removed"],
    )
    step("member_removed")

    # Bob leaves: a notice; then I leave, after the confirm screen.
    code, _, err = await cli(args.peer_data_dir, "group", "leave", "family",
                             passphrase=args.passphrase)  # fmt: skip
    assert code == 0, err
    await until(pilot, lambda: _notice(screen, label, f"{args.peer_name} left"), "bob left", 60)
    await until(pilot, lambda: rows.option_count == 1, "only me left", 30)
    step("member_left")
    await pilot.press("l")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "leave asked")
    await pilot.press("y")
    await until(pilot, lambda: app.screen is screen, "back", 30)
    await until(pilot, lambda: screen.chat.input.disabled, "nothing more to send", 30)
    assert screen.roster.groups[label].state == "left"
    step("left")
    await pilot.press("ctrl+q")


async def until_cli(data_dir: str, passphrase: str, args: tuple[str, ...],
                    predicate: Callable[[str], bool], timeout: float = 60.0) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        code, out, err = await cli(data_dir, *args, passphrase=passphrase)
        if code == 0 and predicate(out):
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out: p2pchat {' '.join(args)}: {out or err}")
        await asyncio.sleep(0.5)


def hold_the_main_screen_until_delivered(args: Args) -> None:
    """The main screen reads events only once bob's node has had both receipts: the
    worst case for messages that arrive while the TUI comes up, made certain."""
    original = MainScreen.consume_events

    def consume_later(screen: MainScreen) -> None:
        async def later() -> None:
            while True:
                code, out, _ = await cli(args.peer_data_dir, "history", args.me, "--json",
                                         passphrase=args.passphrase)  # fmt: skip
                sent = [m for m in json.loads(out or "[]") if m["direction"] == "out"]
                if code == 0 and len(sent) == 2 and all(m["delivery"] == "delivered" for m in sent):
                    break
                await asyncio.sleep(0.5)
            step("delivered_before_the_screen_listened")
            original(screen)

        screen.run_worker(later(), group="hold")

    MainScreen.consume_events = consume_later  # type: ignore[method-assign]


def _has_row(screen: MainScreen, option_id: str) -> bool:
    try:
        screen.sidebar.options.get_option_index(option_id)
    except Exception:  # OptionDoesNotExist
        return False
    return True


def _state(screen: MainScreen, peer: str) -> str | None:
    view = screen.roster.contacts.get(peer)
    return view.state if view else None


def _notice(screen: MainScreen, label: str, text: str) -> bool:
    return any(
        line.direction == "notice" and line.text == text
        for line in screen.conversations.log(label).lines()
    )


def _shown(widget: ChatLog) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.region.height)]


def _line(screen: MainScreen, label: str, text: str, state: str) -> bool:
    return any(
        line.text == text and line.state == state
        for line in screen.conversations.log(label).lines()
    )


async def run(args: Args) -> int:
    data_dir = Path(args.data_dir)
    lock = NodeLock(data_dir)
    existing = (data_dir / "profile.db").exists()
    if existing:
        lock.acquire()
    passphrase = None
    if args.scenario in ("outbox_at_start", "group"):
        passphrase = args.passphrase  # as P2PCHAT_PASSPHRASE: straight to the node
    if args.scenario == "outbox_at_start":
        hold_the_main_screen_until_delivered(args)
    app = ChatApp(
        data_dir, lock, lock_held=existing, interfaces=[args.interface], passphrase=passphrase
    )
    scenario = {
        "chat": chat_scenario, "first_run": first_run_scenario,
        "outbox_at_start": outbox_at_start_scenario, "group": group_scenario,
    }[args.scenario]  # fmt: skip
    failure: BaseException | None = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            try:
                await scenario(pilot, app, args)
            except BaseException as exc:
                failure = exc
                app.save_screenshot(
                    path=str(data_dir.parent), filename=f"failed-{args.scenario}.svg"
                )
                app.exit()
    finally:
        lock.release()
    if failure is not None:
        print(json.dumps({"error": "".join(traceback.format_exception(failure))}), flush=True)
        return 1
    if app.error is not None:
        print(json.dumps({"error": str(app.error)}), flush=True)
        return 1
    assert app.host is None, "the node was not stopped"
    assert app.profile is None, "the profile was not closed"
    step("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(run(Args(**json.loads(sys.argv[1])))))
