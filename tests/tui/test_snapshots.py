"""Snapshots of the main screens, drawn over a scripted node (tests/tui/fakes.py).

What is under test here is the rendering; the behaviour with the real node is
test_tui_lan.py's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App

from p2pchat.control.api import FileView, ServerView
from p2pchat.node.events import (
    FileOffered,
    FileProgress,
    GuestJoined,
    InviteServerStatus,
    KeyChangeWarning,
    MessageEvent,
    PeerFound,
    SessionChanged,
)
from p2pchat.tui.create_profile_screen import CreateProfileScreen
from p2pchat.tui.group_members_screen import GroupMembersScreen
from p2pchat.tui.help_screen import HelpScreen
from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.invite_target import InviteTarget
from p2pchat.tui.key_warning_screen import KeyWarningScreen
from p2pchat.tui.link_screen import LinkScreen
from p2pchat.tui.new_group_screen import NewGroupScreen
from p2pchat.tui.qr_screen import QrScreen
from p2pchat.tui.request_screen import RequestScreen
from p2pchat.tui.safety_screen import SafetyScreen
from p2pchat.tui.search_screen import SearchScreen
from p2pchat.tui.server_screen import ServerScreen
from p2pchat.tui.unlock_screen import UnlockScreen
from tests.tui.fakes import (
    BOB,
    CAROL,
    DAVE,
    INVITE_URL,
    NOW_MS,
    NOW_S,
    FakeNode,
    MainScreenApp,
    bob_history,
    file_row,
    group_message,
    until,
)
from tests.tui.snapshot import assert_snapshot
from tests.tui.test_start_chat import IPV6_URL

SIZE = (110, 34)
SMALL = (80, 24)  # the smallest terminal everything must fit (issue 10)
DATA_DIR = Path("/home/alice/.local/share/p2pchat")
ERIN = "erin-4444-5555-6666"
GUEST = "guest:q7fz2k"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(params=["usual", "80x24"])
def small(request: pytest.FixtureRequest) -> bool:
    """Each screen at its usual size and at 80x24 (snapshot ``<name>-80x24``)."""
    return bool(request.param == "80x24")


def sized(size: tuple[int, int], name: str, small: bool) -> tuple[tuple[int, int], str]:
    return (SMALL, f"{name}-80x24") if small else (size, name)


def lively_node() -> FakeNode:
    return FakeNode(
        now=lambda: NOW_S,
        events=[
            PeerFound(BOB.peer_id, "bob", ["192.168.1.21"], True),
            PeerFound(DAVE.peer_id, "dave", ["192.168.1.23"], False),
            PeerFound(ERIN, "erin", ["192.168.1.24"], False),
            SessionChanged(BOB.peer_id, "bob", "open"),
            GuestJoined(GUEST, "Grandma's tablet", "inv1", "12345 67890 13579", "direct"),
            MessageEvent(GUEST, GUEST, "Grandma's tablet", "in", "ee" * 16, NOW_MS, "hi!"),
        ],
    )


async def test_main_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized(SIZE, "main", small)
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        app.main.open_conversation(BOB.peer_id)
        await pilot.pause(0.1)
        # The guest's message came while nothing was open; the guest joined and
        # was opened; bob's conversation is open now, the guest's is unread.
        assert app.main.roster.unread == {}
        await pilot.press(*"See you soon")
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_welcome_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized(SIZE, "welcome", small)
    app = MainScreenApp(FakeNode(contacts=[], events=[]), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_invite_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized((110, 46), "start-chat", small)
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await app.push_screen(InviteScreen(app.node, clock=lambda: NOW_S + 75))
        await pilot.pause(0.2)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_key_warning_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized(SIZE, "key-warning", small)
    warning = KeyChangeWarning(
        BOB.peer_id, "bob", BOB.fingerprint, "77aa " * 15 + "77aa", "zzzz-9999-8888-7777"
    )
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await app.push_screen(KeyWarningScreen(warning))
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_safety_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized((110, 46), "safety-number", small)
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        view = await app.node.async_verify(DAVE.peer_id, mark_verified=False)
        await app.push_screen(SafetyScreen(view))
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_request_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized(SIZE, "contact-request", small)
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await app.push_screen(RequestScreen(DAVE))
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_search_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized(SIZE, "search", small)
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await app.push_screen(SearchScreen(app.history, {BOB.peer_id: "bob"}))
        await pilot.press(*"the", "enter")
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_help_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized((110, 40), "help", small)
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_start_chat_without_room_for_the_code(tmp_path: Path) -> None:
    """A link-local IPv6 link: its code does not fit 80x24 beside the text."""
    node = lively_node()
    node.invite_url = IPV6_URL
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.2)
        await app.push_screen(InviteScreen(app.node, clock=lambda: NOW_S + 75))
        await pilot.pause(0.2)
        await assert_snapshot(pilot, app, "start-chat-no-room-80x24", tmp_path)
        await pilot.press("f")  # the code on its own screen
        await pilot.pause(0.1)
        assert isinstance(app.screen, QrScreen)
        await assert_snapshot(pilot, app, "start-chat-qr-80x24", tmp_path)


async def test_start_chat_through_a_server(tmp_path: Path) -> None:
    """A password link on a remote invite server that is reconnecting (issue 14),
    and the invite server screen (v)."""
    node = lively_node()
    node.server = ServerView("https://chat.example.org", True, "reconnecting")
    node.invite_url = INVITE_URL.replace("192.168.1.20:43117", "chat.example.org")
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.2)
        screen = InviteScreen(app.node, clock=lambda: NOW_S + 75)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.invite is not None, "the link")
        await pilot.press("p")
        await pilot.press(*"zebra7", "enter", *"zebra7", "enter")
        await until(pilot, lambda: app.screen is screen and len(screen.invites) == 2, "made")
        node.queue.put_nowait(
            InviteServerStatus("https://chat.example.org", "reconnecting", "connection lost")
        )
        await until(pilot, lambda: "lost" in str(screen.query_one("#invite-status").content),
                    "the state")  # fmt: skip
        await assert_snapshot(pilot, app, "start-chat-remote-80x24", tmp_path)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ServerScreen)
                    and app.screen.view is not None, "the server screen")  # fmt: skip
        await assert_snapshot(pilot, app, "invite-server-80x24", tmp_path)


async def test_link_alone(tmp_path: Path) -> None:
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.2)
        await app.push_screen(LinkScreen(INVITE_URL))
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, "start-chat-link-80x24", tmp_path)


def family_node() -> FakeNode:
    """lively_node, in a group bob is the admin of (carol is offline)."""
    node = lively_node()
    group = node.join_group("Family dinner", BOB, [CAROL])
    node.events += [
        group_message(group, BOB, 3, "Sunday at 7? I'll cook."),
        group_message(group, CAROL, 4, "Yes! Bringing dessert."),
        group_message(group, BOB, 5, "[b]Great[/b], see you all"),
    ]
    return node


async def test_group_conversation(tmp_path: Path) -> None:
    """The sidebar with a group, and its conversation open (issue 12)."""
    node = family_node()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SMALL) as pilot:
        label = next(iter(node.groups))
        await until(pilot, lambda: label in app.main.roster.unread, "the messages in")
        app.main.open_conversation(label)
        await pilot.press(*"Count me in", "enter")  # mine: "me", queued
        await until(pilot, lambda: len(node.calls) == 1, "sent")
        await pilot.press(*"On my way")
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, "group-80x24", tmp_path)
        await pilot.press("escape", "m")
        await until(pilot, lambda: isinstance(app.screen, GroupMembersScreen), "members")
        await assert_snapshot(pilot, app, "group-members-80x24", tmp_path)


async def test_group_invite_screen(tmp_path: Path) -> None:
    """Start chat with a group open that I am the admin of (issue 12)."""
    node = lively_node()
    group = await node.async_group_create("Family dinner", [BOB.peer_id, CAROL.peer_id])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: group.conversation in app.main.roster.groups, "known")
        app.main.open_conversation(group.conversation)
        target = InviteTarget.of_group(group)
        screen = InviteScreen(node, target=target, made=app.main.invites_made,
                              clock=lambda: NOW_S + 75)  # fmt: skip
        await app.push_screen(screen)
        await until(pilot, lambda: screen.invite is not None, "the link")
        await assert_snapshot(pilot, app, "group-invite-80x24", tmp_path)


async def test_new_group_screen(tmp_path: Path) -> None:
    app = MainScreenApp(lively_node(), bob_history())
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.2)
        await pilot.press("g", *"Family dinner", "enter", "space")
        await until(pilot, lambda: isinstance(app.screen, NewGroupScreen), "new group")
        await assert_snapshot(pilot, app, "new-group-80x24", tmp_path)


async def test_file_transfer(tmp_path: Path) -> None:
    """bob's conversation with transfers: one sent, one coming in, one offer waiting
    (issue 13)."""
    mb = 1 << 20
    done, moving, waiting = (f"{n:032x}" for n in (6, 7, 8))
    history = bob_history()
    history.stored[BOB.peer_id] += [
        file_row(BOB.peer_id, 6, "slides.pdf", "out", "alice"),
        file_row(BOB.peer_id, 7, "holiday-photos.zip", "in", "bob"),
        file_row(BOB.peer_id, 8, "game-rules.odt", "in", "bob"),
    ]
    node = lively_node()
    node.files = {
        done: FileView(done, "contact:b", BOB.peer_id, "bob", "out", "slides.pdf", 2 * mb,
                       2 * mb, "done", "/home/alice/slides.pdf", None),
        moving: FileView(moving, "contact:b", BOB.peer_id, "bob", "in", "holiday-photos.zip",
                         240 * mb, 0, "receiving", None, None),
        waiting: FileView(waiting, "contact:b", BOB.peer_id, "bob", "in", "game-rules.odt",
                          150 * mb, 0, "offered", None, None),
    }  # fmt: skip
    node.events += [
        FileProgress(moving, "contact:b", BOB.peer_id, "in", "holiday-photos.zip", "receiving",
                     108 * mb, 240 * mb, 11 * mb, 12),
        FileOffered(waiting, "contact:b", BOB.peer_id, "bob", "game-rules.odt", 150 * mb,
                    "bigger than your auto-accept limit (100 MB)"),
    ]  # fmt: skip
    app = MainScreenApp(node, history)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.main.transfers.get(waiting), "the offer")
        app.main.open_conversation(BOB.peer_id)
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, "file-transfer-80x24", tmp_path)


class ScreenApp(App[None]):
    TITLE = "p2pchat"

    def __init__(self, screen_factory: type[CreateProfileScreen] | type[UnlockScreen]) -> None:
        super().__init__()
        self._factory = screen_factory

    def on_mount(self) -> None:
        self.push_screen(self._factory(DATA_DIR))


async def test_create_profile_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: bool
) -> None:
    size, name = sized(SIZE, "create-profile", small)
    monkeypatch.setattr("p2pchat.tui.create_profile_screen.getpass.getuser", lambda: "alice")
    app = ScreenApp(CreateProfileScreen)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)


async def test_unlock_screen(tmp_path: Path, small: bool) -> None:
    size, name = sized(SIZE, "unlock", small)
    app = ScreenApp(UnlockScreen)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.1)
        await assert_snapshot(pilot, app, name, tmp_path)
