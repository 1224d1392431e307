"""``v`` in Start chat: the invite server new links use (the TUI's ``p2pchat server``).

Set (a URL and the file holding the owner token) or clear (back to the node on the
LAN), through the same node calls as ``p2pchat server set/clear``; the node saves it
in the profile. The token is read from its file here and never shown.
"""

from __future__ import annotations

import os
import re
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from p2pchat.commands.invite_cmds import read_token_file
from p2pchat.control.api import NodeApi, ServerView
from p2pchat.errors import UserError
from p2pchat.node.invite_server import MAX_SERVER_URL_CHARS, parse_server_url
from p2pchat.tui.text_format import one_line

MAX_PATH_CHARS = 4096
_OPTION = re.compile(r"^--[a-z-]+: ")  # the CLI's messages name its option; here there is none


class ServerScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ServerScreen { align: center middle; }
    ServerScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%;
                              padding: 0 1; border: thick $accent; background: $surface; }
    ServerScreen #server-now { margin-bottom: 1; }
    ServerScreen #server-error { color: $error; height: auto; }
    ServerScreen Horizontal { height: auto; }
    ServerScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, api: NodeApi) -> None:
        super().__init__()
        self._api = api
        self.view: ServerView | None = None  # the node's last answer

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Invite server", style="bold"))
            yield Static(Text("Asking the node…", style="dim"), id="server-now")
            yield Static("For guests outside your network: new links go through this server.")
            yield Input(placeholder="https://HOST[:PORT]", max_length=MAX_SERVER_URL_CHARS,
                        id="server-url")  # fmt: skip
            yield Input(placeholder="File with the owner token (first line)",
                        max_length=MAX_PATH_CHARS, id="server-token-file")  # fmt: skip
            yield Static("", id="server-error")
            with Horizontal():
                yield Button("Save", id="server-save", variant="primary")
                yield Button("Clear: LAN", id="server-clear")
                yield Button("Close (Esc)", id="server-close")

    def on_mount(self) -> None:
        self.query_one("#server-url", Input).focus()
        self._ask()

    @work(group="server-ask")
    async def _ask(self) -> None:
        try:
            self._shown(await self._api.async_server())
        except UserError as exc:
            self._error(str(exc))

    @on(Input.Submitted, "#server-url")
    def _url_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#server-token-file", Input).focus()

    @on(Input.Submitted, "#server-token-file")
    @on(Button.Pressed, "#server-save")
    def _save_pressed(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        url = self.query_one("#server-url", Input).value.strip()
        path = self.query_one("#server-token-file", Input).value.strip()
        try:
            parse_server_url(url)  # a bad URL is told before the node is asked
            token = read_token_file(os.path.expanduser(path), "token file") if path else None
        except UserError as exc:
            self._error(str(exc))
            return
        self._set(url, token)

    @on(Button.Pressed, "#server-clear")
    def _clear_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._clear()

    @on(Button.Pressed, "#server-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_close(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="server-change")
    async def _set(self, url: str, token: str | None) -> None:
        try:
            view = await self._api.async_server_set(url, token)
        except UserError as exc:
            self._error(str(exc))
            return
        self.query_one("#server-url", Input).value = ""
        self.query_one("#server-token-file", Input).value = ""
        self._shown(view)

    @work(exclusive=True, group="server-change")
    async def _clear(self) -> None:
        try:
            view = await self._api.async_server_clear()
        except UserError as exc:
            self._error(str(exc))
            return
        self._shown(view)

    def _shown(self, view: ServerView) -> None:
        self.view = view
        self.query_one("#server-error", Static).update("")
        self.query_one("#server-now", Static).update(server_line(view))

    def _error(self, message: str) -> None:
        self.query_one("#server-error", Static).update(
            Text(one_line(_OPTION.sub("", message), 200))
        )


def server_line(view: ServerView) -> Text:
    """What new links use now, as one line or two."""
    if view.url is None:
        return Text("New links: this node, for guests on your network (LAN).")
    line = Text("New links: via ")
    line.append(view.url, style="bold")
    line.append(", with an owner token" if view.token_set else ", without an owner token")
    state = view.state or "not connected yet (no link on it in this run)"
    line.append(f"\nNow: {state}", style="bold yellow" if view.state in ("reconnecting",
                                                                          "refused") else "dim")  # fmt: skip
    return line
