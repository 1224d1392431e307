"""Start chat: an invite link for a browser guest, its QR code, the time left, revoke.

The node makes the invite (``async_invite``) and serves the guest page itself;
the link's ``#secret`` part is the key to the conversation, so it is shown only
here, to be handed to the guest (scan, or copy with ``c``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pchat.control.api import InviteView, NodeApi
from p2pchat.errors import UserError
from p2pchat.tui.qr_text import qr_text

INVITE_SECONDS = 15 * 60
INVITE_USES = 1


class InviteScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    InviteScreen { align: center middle; }
    InviteScreen > VerticalScroll { width: 90; height: auto; max-height: 98%; padding: 0 2;
                                    border: thick $success; background: $surface; }
    InviteScreen #qr { width: auto; }
    InviteScreen Horizontal { height: auto; }
    InviteScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "revoke", "Revoke"),
        Binding("c", "copy", "Copy link"),
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, api: NodeApi, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._api = api
        self._clock = clock
        self.invite: InviteView | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Start chat", style="bold"), id="invite-title")
            yield Static(Text("Making an invite link…", style="dim"), id="invite-link")
            yield Static("", id="qr")
            yield Static("", id="invite-status")
            with Horizontal():
                yield Button("Revoke (x)", id="revoke", variant="error", disabled=True)
                yield Button("Copy link (c)", id="copy", disabled=True)
                yield Button("Close (Esc)", id="close")

    def on_mount(self) -> None:
        self._make_invite()
        self.set_interval(1.0, self._tick)

    @work(exclusive=True, group="invite")
    async def _make_invite(self) -> None:
        try:
            invite = await self._api.async_invite(
                expires_s=INVITE_SECONDS, uses=INVITE_USES, label=None, approve=False
            )
        except UserError as exc:
            self._status(Text(f"Could not make an invite: {exc}", style="red"))
            return
        self.show_invite(invite)

    def show_invite(self, invite: InviteView) -> None:
        self.invite = invite
        link = Text()
        link.append("Give this link to your guest (any browser on this network):\n\n")
        link.append(invite.url, style="bold underline")
        link.append(
            f"\n\nThe page comes from this computer; its certificate is self-signed "
            f"(SHA-256 {invite.certificate_sha256[:23]}…), so the browser warns once.",
            style="dim",
        )
        self.query_one("#invite-link", Static).update(link)
        self.query_one("#qr", Static).update(qr_text(invite.url))
        self.query_one("#revoke", Button).disabled = invite.revoked
        self.query_one("#copy", Button).disabled = False
        self._tick()

    def _tick(self) -> None:
        invite = self.invite
        if invite is None:
            return
        left = max(0, int(invite.expires_at - self._clock()))
        if invite.revoked:
            status = Text("Revoked: the link no longer works.", style="bold red")
        elif left == 0:
            status = Text("Expired: press s again on the main screen for a new link.",
                          style="bold red")  # fmt: skip
        else:
            minutes, seconds = divmod(left, 60)
            status = Text(f"Expires in {minutes}:{seconds:02d}", style="bold green")
            uses = "use" if invite.uses_left == 1 else "uses"
            status.append(f"  ·  {invite.uses_left} {uses} left", style="")
            if invite.guests:
                status.append(f"  ·  {invite.guests} guest(s) came in", style="")
        self._status(status)

    def _status(self, text: Text) -> None:
        self.query_one("#invite-status", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"revoke": self.action_revoke, "copy": self.action_copy, "close": self.action_close}[
            event.button.id or "close"
        ]()

    def action_revoke(self) -> None:
        if self.invite is not None and not self.invite.revoked:
            self._revoke(self.invite.invite_id)

    @work(exclusive=True, group="invite")
    async def _revoke(self, invite_id: str) -> None:
        try:
            self.invite = await self._api.async_revoke(invite_id)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.query_one("#revoke", Button).disabled = True
        self._tick()

    def action_copy(self) -> None:
        if self.invite is not None:
            self.app.copy_to_clipboard(self.invite.url)
            self.notify("Link copied (if your terminal supports OSC 52).")

    def action_close(self) -> None:
        self.dismiss(None)
