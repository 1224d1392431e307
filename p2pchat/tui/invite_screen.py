"""Start chat: an invite link for a browser guest, its QR code, the time left, revoke.

The node makes the invite (``async_invite``) and serves the guest page itself;
the link's ``#secret`` part is the key to the conversation, so it is shown only
here, to be handed to the guest: scanned, copied (``c``, where the terminal
passes OSC 52), selected on a screen of its own (``l``), or as a PNG (``w``).

Pressing ``s`` again offers the links that are still open instead of making one
more each time; ``n`` makes a new one, ← → go through the live ones. A link is
for a 1:1 chat or, made with a group open (or from its member list), for that
group: its guests join the group. Each link says which; ``n`` makes the kind
the dialog was opened for (``InviteTarget``). What the
dialog says about a link (uses left, guests in) is the node's answer, asked
again whenever a guest event comes (``refresh_invites``).

``p`` makes a link that also needs a password (asked twice on a screen of its
own, handed to the node and forgotten); ``v`` sets the invite server new links
go through (``p2pchat server``). The dialog says which server serves the link
(this node on the LAN, or via HOST) and, for a remote one, its state as the
node's ``InviteServerStatus`` events tell it (``server_status``).

The QR code sits beside the text when both fit (80x24 does, at error level L);
when not, the dialog says so and ``f`` shows the code on a screen of its own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.widgets.button import ButtonVariant

from p2pchat.control.api import InviteView, NodeApi
from p2pchat.errors import UserError
from p2pchat.node.events import InviteServerStatus
from p2pchat.tui.invite_target import ONE_TO_ONE, InvitesMade, InviteTarget
from p2pchat.tui.link_screen import LinkScreen
from p2pchat.tui.password_screen import PasswordScreen
from p2pchat.tui.qr_screen import QrScreen
from p2pchat.tui.qr_text import fit_qr, smallest_qr_size
from p2pchat.tui.server_screen import ServerScreen
from p2pchat.tui.text_format import one_line

INVITE_SECONDS = 15 * 60
INVITE_USES = 1

_CHROME_W = 4  # border + padding, left and right
_CHROME_H = 2  # border, top and bottom
_GAP = 2  # between the QR code and the text
_INFO_MIN = 33  # narrowest text column beside the code (all buttons still fit)
_INFO_MAX = 50
_INFO_ALONE = 66  # the text column when the code is not shown


class InviteScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    InviteScreen { align: center middle; }
    InviteScreen #invite-box { width: auto; height: auto; padding: 0 1;
                               border: thick $success; background: $surface; }
    InviteScreen #qr { width: auto; height: auto; margin-right: 2; }
    InviteScreen #invite-info { width: 50; height: auto; }
    InviteScreen #invite-status { margin-top: 1; }
    InviteScreen #qr-note { color: $warning; }
    InviteScreen .buttons { height: auto; width: 100%; }
    InviteScreen #first-buttons { margin-top: 1; }
    InviteScreen Button { margin-right: 1; }
    /* Notices stay on the text side: one over the code would stop a phone reading it. */
    InviteScreen Toast { max-width: 34; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy link"),
        Binding("l", "link_alone", "Link alone"),
        Binding("f", "qr_full", "QR full screen"),
        Binding("w", "save_qr", "Save QR as PNG"),
        Binding("n", "new_link", "New link"),
        Binding("p", "password_link", "New link with password"),
        Binding("v", "server", "Invite server"),
        Binding("x", "revoke", "Revoke"),
        # Priority: the scrolling text column would take ← → for itself.
        Binding("left", "other(-1)", "Previous link", priority=True),
        Binding("right", "other(1)", "Next link", priority=True),
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(
        self,
        api: NodeApi,
        *,
        target: InviteTarget = ONE_TO_ONE,
        made: InvitesMade | None = None,
        save_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._api = api
        self.target = target  # what a new link is for
        self._made = made if made is not None else {}  # shared: outlives this dialog
        self._save_dir = save_dir  # where w writes the PNG (the data dir); None: nowhere
        self._clock = clock
        self.invites: list[InviteView] = []  # the live links, oldest first
        self.index = 0  # the one shown
        self._gone: set[str] = set()  # ids the node no longer lists (used up, expired)
        self._saved: dict[str, Path] = {}  # invite id → its PNG
        self._servers: dict[str, InviteServerStatus] = {}  # server URL → its last event

    @property
    def invite(self) -> InviteView | None:
        return self.invites[self.index] if self.invites else None

    def compose(self) -> ComposeResult:
        with Horizontal(id="invite-box"):
            yield Static("", id="qr")
            with VerticalScroll(id="invite-info"):
                yield Static(_title(self.target), id="invite-title")
                yield Static(Text("Making an invite link…", style="dim"), id="invite-link")
                yield Static("", id="invite-status")
                yield Static("", id="qr-note")
                with Horizontal(id="first-buttons", classes="buttons"):
                    yield _button("Copy (c)", "copy")
                    yield _button("Link alone (l)", "link")
                with Horizontal(classes="buttons"):
                    yield _button("Big QR (f)", "full")
                    yield _button("Save QR (w)", "save")
                with Horizontal(classes="buttons"):
                    yield _button("New link (n)", "new", disabled=False)
                    yield _button("Revoke (x)", "revoke", variant="error")
                with Horizontal(classes="buttons"):
                    yield _button("New link with password (p)", "password", disabled=False)
                with Horizontal(classes="buttons"):
                    yield _button("Invite server (v)", "server", disabled=False)
                yield _button("Close (Esc)", "close", disabled=False)

    def on_mount(self) -> None:
        self._load()
        self.set_interval(1.0, self._tick)

    def on_resize(self, _event: Resize) -> None:
        self._layout()

    # -- the links ---------------------------------------------------------------------

    @work(group="invite-load")
    async def _load(self) -> None:
        """The newest link of the kind wanted still open to a new guest, else a new one."""
        try:
            listed = await self._api.async_invites()
        except UserError as exc:
            self._error(f"Could not list the invites: {exc}")
            return
        self.invites = sorted(listed, key=lambda i: i.expires_at)
        now = self._clock()
        open_now = [
            i
            for i, v in enumerate(self.invites)
            if _open(v, now) and self._made_for(v) == self.target
        ]
        if open_now:
            self.index = open_now[-1]
            self._show()
        else:
            await self._async_new()

    async def _async_new(self, password: bytes | None = None) -> None:
        try:
            invite = await self._api.async_invite(
                expires_s=INVITE_SECONDS,
                uses=INVITE_USES,
                label=None,
                approve=False,
                group=self.target.group,
                password=password,
            )
        except UserError as exc:
            self._error(f"Could not make an invite: {exc}")
            return
        self._made[invite.invite_id] = self.target
        self.invites.append(invite)
        self.index = len(self.invites) - 1
        self._show()

    @work(group="invite-refresh")
    async def refresh_invites(self) -> None:
        """Ask the node again (a guest came, left or was refused): real uses left."""
        try:
            fresh = {i.invite_id: i for i in await self._api.async_invites()}
        except UserError:
            return
        known = {i.invite_id for i in self.invites}
        for n, invite in enumerate(self.invites):
            if invite.invite_id in fresh:
                self.invites[n] = fresh[invite.invite_id]
            elif not invite.revoked:
                self._gone.add(invite.invite_id)
        self.invites += sorted(
            (i for i in fresh.values() if i.invite_id not in known), key=lambda i: i.expires_at
        )
        self._show()

    def show_invite(self, invite: InviteView) -> None:
        """Show ``invite`` (added to the list if new)."""
        for n, known in enumerate(self.invites):
            if known.invite_id == invite.invite_id:
                self.invites[n] = invite
                self.index = n
                break
        else:
            self.invites.append(invite)
            self.index = len(self.invites) - 1
        self._show()

    def _made_for(self, invite: InviteView) -> InviteTarget | None:
        """What a link is for: as this TUI made it, else as the node says (a group
        link made with `p2pchat invite --group`); None: a link made elsewhere."""
        made = self._made.get(invite.invite_id)
        if made is None and invite.group is not None:
            made = InviteTarget(invite.group, invite.group_name or "")
        return made

    # -- drawing -----------------------------------------------------------------------

    def _show(self) -> None:
        invite = self.invite
        if invite is None:
            return
        made_for = self._made_for(invite)
        title = _title(made_for)
        if len(self.invites) > 1:
            title.append(f"  ·  link {self.index + 1} of {len(self.invites)} (← →)", style="")
        self.query_one("#invite-title", Static).update(title)
        if made_for is None:
            link = Text("Made with p2pchat invite: for 1:1 or a group, this window cannot "
                        "tell. The code, or this link:\n")  # fmt: skip
        elif made_for.group is not None:
            link = Text("Guests who open this join the group ")
            link.append(made_for.short_name, style="bold")
            link.append(". Let them scan the code, or give them this link:\n")
        elif invite.server is not None:  # any browser that reaches the server
            link = Text("Let your guest scan the code, or give them this link:\n")
        else:
            link = Text("Let your guest scan the code, or give them this link (any browser "
                        "on this network):\n")  # fmt: skip
        link.append(invite.url, style="bold underline")
        self.query_one("#invite-link", Static).update(link)
        for name in ("copy", "link", "full", "save"):
            self.query_one(f"#{name}", Button).disabled = False
        self._layout()
        self._tick()

    def _layout(self) -> None:
        """QR code beside the text if both fit the terminal, else the text alone."""
        invite = self.invite
        width, height = self.app.size
        inner = max(1, width - _CHROME_W)
        qr = self.query_one("#qr", Static)
        info = self.query_one("#invite-info", VerticalScroll)
        info.styles.max_height = max(1, height - _CHROME_H)
        note = self.query_one("#qr-note", Static)
        drawing = None
        if invite is not None:
            drawing = fit_qr(invite.url, inner - _INFO_MIN - _GAP, height - _CHROME_H)
        if drawing is not None:
            qr.update(drawing.text)
            qr.display = True
            info.styles.width = min(_INFO_MAX, inner - drawing.width - _GAP)
            note.update("")
            note.display = False
        else:
            qr.display = False
            info.styles.width = min(_INFO_ALONE, inner)
            if invite is not None:
                columns, rows = smallest_qr_size(invite.url)
                note.update(
                    f"The QR code ({columns}x{rows}) does not fit beside this text: "
                    "f shows it on its own screen, w saves it as a PNG file."
                )
                note.display = True

    def _tick(self) -> None:
        invite = self.invite
        if invite is None:
            return
        self.query_one("#invite-status", Static).update(self._status(invite))
        self.query_one("#revoke", Button).disabled = invite.revoked

    def _status(self, invite: InviteView) -> Text:
        left = max(0, int(invite.expires_at - self._clock()))
        minutes, seconds = divmod(left, 60)
        came = f"{invite.guests} guest{'s' if invite.guests != 1 else ''} came in"
        if invite.revoked:
            return Text("Revoked: the link no longer works. n: a new link.", style="bold red")
        if left == 0:
            return Text("Expired: n makes a new link.", style="bold red")
        if invite.invite_id in self._gone:
            return Text("No longer valid: n makes a new link.", style="bold red")
        if invite.uses_left == 0:
            status = Text()
            status.append(f"Used: {came}, no uses left. n makes a new link.", style="bold yellow")
            status.append(f"\nThey can come back for {minutes}:{seconds:02d}.")
            return status
        status = Text()
        status.append(f"Expires in {minutes}:{seconds:02d}", style="bold green")
        uses = "use" if invite.uses_left == 1 else "uses"
        status.append(f"  ·  {invite.uses_left} {uses} left")
        if invite.guests:
            status.append(f"  ·  {came}")
        if invite.password:
            status.append("\nNeeds a password: tell it another way than the link.",
                          style="bold")  # fmt: skip
        if invite.server is not None:  # a remote invite server: its state is what matters
            status.append_text(self._server_line(invite.server, invite.server_state))
            return status
        status.append(
            f"\nLAN (this node). Self-signed page: the browser warns once. "
            f"SHA-256 {invite.certificate_sha256[:23]}…",
            style="dim",
        )
        return status

    def _server_line(self, url: str, node_state: str | None) -> Text:
        """``via HOST: state``; the newest event's state and detail over the node's
        last answer; reconnecting or refused is a warning (new guests cannot come)."""
        event = self._servers.get(url)
        state = event.state if event is not None else node_state or "connecting"
        detail = f" ({one_line(event.detail, 80)})" if event is not None and event.detail else ""
        line = Text(f"\nvia {url.removeprefix('https://')}: {state}{detail}")
        if state == "connected":
            line.stylize("dim")
        elif state == "refused":
            line.stylize("bold red")
            line.append(": new guests cannot come in through this link.", style="bold red")
        elif state == "reconnecting":
            line.stylize("bold yellow")
            line.append(": new guests cannot reach you until it is back.", style="bold yellow")
        else:
            line.stylize("bold yellow")
        return line

    def server_status(self, event: InviteServerStatus) -> None:
        """The node's connection to a remote invite server changed: show it now."""
        self._servers[event.url] = event
        self._tick()

    def _error(self, message: str) -> None:
        self.query_one("#invite-link", Static).update(Text(message, style="red"))

    # -- actions -----------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        actions = {
            "copy": self.action_copy, "link": self.action_link_alone, "full": self.action_qr_full,
            "save": self.action_save_qr, "new": self.action_new_link,
            "revoke": self.action_revoke, "close": self.action_close,
            "password": self.action_password_link, "server": self.action_server,
        }  # fmt: skip
        actions.get(event.button.id or "close", self.action_close)()

    def action_other(self, step: int) -> None:
        if len(self.invites) > 1:
            self.index = (self.index + step) % len(self.invites)
            self._show()

    def action_new_link(self) -> None:
        self._new_link()

    @work(group="invite-new")
    async def _new_link(self) -> None:
        await self._async_new()

    def action_password_link(self) -> None:
        self.app.push_screen(PasswordScreen(), self._password_entered)

    def _password_entered(self, password: bytes | None) -> None:
        if password is not None:  # None: cancelled
            self._new_password_link(password)

    @work(group="invite-new")
    async def _new_password_link(self, password: bytes) -> None:
        # The password lives only in this call's frame: the node keeps it with the invite.
        await self._async_new(password)

    def action_server(self) -> None:
        self.app.push_screen(ServerScreen(self._api))

    def action_revoke(self) -> None:
        if self.invite is not None and not self.invite.revoked:
            self._revoke(self.invite.invite_id)

    @work(group="invite-revoke")
    async def _revoke(self, invite_id: str) -> None:
        try:
            view = await self._api.async_revoke(invite_id)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.show_invite(view)
        saved = self._saved.pop(invite_id, None)
        if saved is not None:
            with contextlib.suppress(OSError):
                saved.unlink()
            self.notify(f"Deleted {saved}: the link in it no longer works anyway.")

    def action_copy(self) -> None:
        if self.invite is not None:
            self.app.copy_to_clipboard(self.invite.url)
            self.notify(
                "Link sent to the clipboard. Nothing to paste? Your terminal (or tmux) "
                "blocks OSC 52: press l for the link alone.",
                timeout=8,
            )

    def action_link_alone(self) -> None:
        if self.invite is not None:
            self.app.push_screen(LinkScreen(self.invite.url))

    def action_qr_full(self) -> None:
        if self.invite is not None:
            self.app.push_screen(QrScreen(self.invite.url))

    def action_save_qr(self) -> None:
        invite = self.invite
        if invite is None:
            return
        if self._save_dir is None:
            self.notify("No folder to save to.", severity="error")
            return
        path = self._save_dir / f"invite-{invite.invite_id}.png"
        try:
            _write_png(invite.url, path)
        except OSError as exc:
            self.notify(f"Could not save the QR code: {exc}", severity="error")
            return
        self._saved[invite.invite_id] = path
        self.notify(
            f"QR code saved to {path}. Anyone who sees it can join while the link works: "
            "delete it after (revoking here deletes it).",
            timeout=15,
        )

    def action_close(self) -> None:
        self.dismiss(None)


def _title(made_for: InviteTarget | None) -> Text:
    """What the link is for, first: a 1:1 chat, a group, or not known."""
    if made_for is None:
        return Text("Start chat (a link made elsewhere)", style="bold")
    if made_for.group is None:
        return Text("Start chat", style="bold")
    return Text(f"Invite to {made_for.short_name}", style="bold")


def _open(invite: InviteView, now: float) -> bool:
    return not invite.revoked and invite.uses_left > 0 and invite.expires_at > now


def _button(
    label: str, name: str, *, variant: ButtonVariant = "default", disabled: bool = True
) -> Button:
    return Button(label, id=name, variant=variant, compact=True, disabled=disabled)


def _write_png(url: str, path: Path) -> None:
    """The QR code as a PNG only we can read (it holds the link's secret)."""
    import segno

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        segno.make(url, error="m").save(out, kind="png", scale=8, border=4)
