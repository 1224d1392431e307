"""The TUI's Start chat against a real node (its invite server on ``lo``): a password
link made with ``p`` lets in a guest who types the password as a phone would (the
page's CPace, tests/integration/password_guest.py), and ``v`` saves and clears the
invite server in the real profile. (Over a scripted node: tests/tui/.)"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.widgets import Button, Input

from p2pchat.node import Node
from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.password_screen import PasswordScreen
from p2pchat.tui.server_screen import ServerScreen
from tests.integration.password_guest import async_attempt
from tests.tui.fakes import until


class InviteApp(App[None]):
    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self.invite_screen = InviteScreen(node)

    def on_mount(self) -> None:
        self.push_screen(self.invite_screen)


async def test_a_password_link_from_the_tui_lets_in_a_guest_with_the_password(
    node: Node,
) -> None:
    app = InviteApp(node)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.invite_screen
        await until(pilot, lambda: screen.invite is not None, "the first link")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PasswordScreen), "the form")
        typed = ["space", *"hunter22", "space"]  # stripped, as the page does
        await pilot.press(*typed, "enter", *typed, "enter")
        await until(pilot, lambda: len(screen.invites) == 2, "the password link")
        invite = screen.invites[-1]
        assert invite.password
        assert invite.url.endswith(".pw")
        assert [i.password for i in node.guests.invites()] == [False, True]

        wrong = await async_attempt(invite.url, "hunter23")
        assert (wrong.code, wrong.reason) == (4401, "wrong password (4 tries left)")
        right = await async_attempt(invite.url, "hunter22", text="hello owner")
        assert right.opened


async def test_the_invite_server_is_saved_and_cleared_in_the_profile(
    node: Node, tmp_path: Path
) -> None:
    token_file = tmp_path / "owner-token"
    token_file.write_text("owner-token-1\n", encoding="utf-8")
    app = InviteApp(node)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.invite_screen
        await until(pilot, lambda: screen.invite is not None, "the first link")
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ServerScreen), "the server screen")
        server = app.screen
        assert isinstance(server, ServerScreen)
        await until(pilot, lambda: server.view is not None, "the node's answer")
        server.query_one("#server-url", Input).value = "chat.example.org:8443"
        server.query_one("#server-token-file", Input).value = str(token_file)
        server.query_one("#server-token-file", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: node.profile.settings.invite_server is not None, "saved")
        settings = node.profile.settings
        assert settings.invite_server == "https://chat.example.org:8443"
        assert settings.invite_server_token == "owner-token-1"
        assert server.view is not None
        assert server.view.url == "https://chat.example.org:8443"
        assert server.view.token_set

        server.query_one("#server-clear", Button).focus()
        await pilot.press("enter")
        await until(pilot, lambda: node.profile.settings.invite_server is None, "cleared")
        assert node.profile.settings.invite_server_token is None
