"""Start chat's password links (``p``) and invite server (``v``, and the server's live
state in the dialog), over a scripted node, driven by keys as a user would.
(The node's side of both: tests/integration/test_password_* and test_remote_owner.)"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from p2pchat.control.api import ServerView
from p2pchat.node.events import InviteServerStatus
from p2pchat.tui.password_screen import PasswordScreen
from p2pchat.tui.server_screen import ServerScreen
from tests.tui.fakes import FakeNode, MainScreenApp, bob_history, until
from tests.tui.test_start_chat import open_start_chat, text_of

SERVER = "https://chat.example.org"


def password_calls(node: FakeNode) -> list[object]:
    return [args[0] for name, args in node.calls if name == "invite password"]


async def type_passwords(pilot: Pilot[None], first: str, second: str) -> PasswordScreen:
    await pilot.press("p")
    await until(pilot, lambda: isinstance(pilot.app.screen, PasswordScreen), "the password form")
    screen = pilot.app.screen
    assert isinstance(screen, PasswordScreen)
    await pilot.press(*first, "enter")  # to the second field
    await pilot.press(*second, "enter")  # make the link
    return screen


def error_of(screen: PasswordScreen | ServerScreen, name: str) -> str:
    message = str(screen.query_one(name, Static).content)
    assert "\n" not in message, message  # one line, never a traceback
    return message


async def submit(pilot: Pilot[None], screen: ServerScreen) -> None:
    """Enter in the token file field: Save (keys, as the layout may still be moving)."""
    screen.query_one("#server-token-file", Input).focus()
    await pilot.press("enter")


def fullwidth(text: str) -> str:
    """ASCII letters as their fullwidth forms, which NFKC folds back."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in text)


async def test_a_password_link_gives_the_node_the_normalised_password() -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        assert not invite.invite.password  # type: ignore[union-attr]
        # Fullwidth letters and a space around: NFKC and stripped, as the page does.
        typed = f" {fullwidth('zebra')}7"
        form = await type_passwords(pilot, typed, typed)
        await until(pilot, lambda: app.screen is invite, "back to the dialog")
        await until(pilot, lambda: password_calls(node), "the invite made")
        assert password_calls(node) == [b"zebra7"]
        assert invite.invite is not None
        assert invite.invite.password
        assert invite.invite.invite_id == "inv2"  # a new link, shown
        status = text_of(invite.query_one("#invite-status"))
        assert "Needs a password: tell it another way than the link." in status
        assert "zebra" not in status
        assert all(field.value == "" for field in form.query(Input))  # not kept on screen


async def test_a_mismatched_or_short_password_is_refused_in_one_line() -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        form = await type_passwords(pilot, "abcd", "abce")
        await until(pilot, lambda: error_of(form, "#password-error"), "the refusal")
        assert "differ" in error_of(form, "#password-error")
        assert app.screen is form

        for field in form.query(Input):
            field.value = ""
        form.query_one("#password", Input).focus()
        await pilot.press("space", *"abc", "space", "enter", "space", *"abc", "space", "enter")
        await until(pilot, lambda: "too short" in error_of(form, "#password-error"), "too short")
        assert "4 characters" in error_of(form, "#password-error")

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is invite, "back to the dialog")
        assert password_calls(node) == []
        assert [name for name, _ in node.calls].count("invite") == 1  # the first link only
        assert all(field.value == "" for field in form.query(Input))


async def test_the_server_line_follows_the_status_events() -> None:
    node = FakeNode(server=ServerView(SERVER, True, None))
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        assert invite.invite is not None
        assert invite.invite.server == SERVER

        def status() -> str:
            return text_of(invite.query_one("#invite-status"))

        assert "via chat.example.org: connecting" in status()
        assert "LAN" not in status()
        steps = [
            ("connected", "", "via chat.example.org: connected"),
            (
                "reconnecting",
                "connection lost",
                "reconnecting (connection lost): new guests cannot reach",
            ),
            ("refused", "the room is taken", "refused (the room is taken): new guests cannot"),
            ("connected", "", "via chat.example.org: connected"),
        ]
        for state, detail, shown in steps:
            await node.queue.put(InviteServerStatus(SERVER, state, detail))
            await until(pilot, lambda shown=shown: shown in status(), f"{state} shown")  # type: ignore[misc]
        assert "new guests" not in status()


async def test_a_lan_link_says_lan() -> None:
    app = MainScreenApp(FakeNode(), bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        assert "LAN (this node)" in text_of(invite.query_one("#invite-status"))


async def test_the_invite_server_is_set_and_cleared_from_the_dialog(tmp_path: Path) -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    token_file = tmp_path / "owner-token"
    token_file.write_text("s3cr3t-owner-token\n", encoding="utf-8")
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ServerScreen), "the server screen")
        screen = app.screen
        assert isinstance(screen, ServerScreen)
        await until(pilot, lambda: screen.view is not None, "the node's answer")
        assert "LAN" in text_of(screen.query_one("#server-now"))

        # A bad URL and a missing token file: one line each, the node not asked.
        await pilot.press(*"http://chat.example.org", "enter", "enter")
        await until(pilot, lambda: error_of(screen, "#server-error"), "the refusal")
        assert "https://HOST[:PORT]" in error_of(screen, "#server-error")
        assert not error_of(screen, "#server-error").startswith("--")
        screen.query_one("#server-url", Input).value = "chat.example.org"
        screen.query_one("#server-token-file", Input).value = str(tmp_path / "nope")
        await submit(pilot, screen)
        await until(pilot, lambda: "nope" in error_of(screen, "#server-error"), "no such file")
        assert not [c for c in node.calls if c[0].startswith("server")]

        screen.query_one("#server-token-file", Input).value = str(token_file)
        await submit(pilot, screen)
        await until(pilot, lambda: ("server set", ("chat.example.org", "s3cr3t-owner-token"))
                    in node.calls, "server set")  # fmt: skip
        await until(pilot, lambda: SERVER in text_of(screen.query_one("#server-now")), "shown")
        now = text_of(screen.query_one("#server-now"))
        assert "with an owner token" in now
        assert "s3cr3t" not in now

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is invite, "back to the dialog")
        await pilot.press("n")  # a new link goes through the saved server
        await until(pilot, lambda: invite.invite is not None and invite.invite.server == SERVER,
                    "a link via the server")  # fmt: skip
        assert "via chat.example.org" in text_of(invite.query_one("#invite-status"))

        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ServerScreen), "the server screen")
        screen = app.screen
        assert isinstance(screen, ServerScreen)
        screen.query_one("#server-clear", Button).focus()
        await pilot.press("enter")
        await until(pilot, lambda: ("server clear", ()) in node.calls, "server clear")
        await until(pilot, lambda: "LAN" in text_of(screen.query_one("#server-now")), "LAN")
