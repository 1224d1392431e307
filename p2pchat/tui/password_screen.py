"""``p`` in Start chat: the password for a new link, typed twice, masked.

The checks are the CLI's (``link_password.checked_link_password``: 4 characters or
more, 128 bytes at most once normalised); a refusal is one line on this screen.
What it returns is the normalised bytes the node takes (``crypto/cpace.py``); the
fields are emptied on the way out, so the password is not kept on the screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from p2pchat.crypto.cpace import MAX_PASSWORD_BYTES, normalize_password
from p2pchat.errors import UserError
from p2pchat.link_password import checked_link_password
from p2pchat.tui.text_format import one_line


class PasswordScreen(ModalScreen[bytes | None]):
    DEFAULT_CSS = """
    PasswordScreen { align: center middle; }
    PasswordScreen > Vertical { width: 60; max-width: 100%; height: auto; max-height: 100%;
                                padding: 0 1; border: thick $accent; background: $surface; }
    PasswordScreen #password-error { color: $error; height: auto; }
    PasswordScreen Horizontal { height: auto; }
    PasswordScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("New link with a password", style="bold"))
            yield Static(
                "The guest types it after opening the link: tell it another way than "
                "the link. 5 wrong tries revoke the link."
            )
            yield Input(placeholder="Password (4 characters or more)", password=True,
                        max_length=MAX_PASSWORD_BYTES, id="password")  # fmt: skip
            yield Input(placeholder="Same password again", password=True,
                        max_length=MAX_PASSWORD_BYTES, id="password-again")  # fmt: skip
            yield Static("", id="password-error")
            with Horizontal():
                yield Button("Make the link", id="make", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    def _first_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#password-again", Input).focus()

    @on(Input.Submitted, "#password-again")
    def _second_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self._try_make()

    @on(Button.Pressed, "#make")
    def _make_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._try_make()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_cancel(self) -> None:
        self._forget()
        self.dismiss(None)

    def _try_make(self) -> None:
        first = self.query_one("#password", Input).value
        second = self.query_one("#password-again", Input).value
        try:
            password = entered_password(first, second)
        except UserError as exc:
            self.query_one("#password-error", Static).update(Text(one_line(str(exc), 200)))
            return
        self._forget()
        self.dismiss(password)

    def _forget(self) -> None:
        for field in self.query(Input):
            field.value = ""


def entered_password(first: str, second: str) -> bytes:
    """The normalised password, or a one-line ``UserError`` (differ, too short, too long)."""
    if first != second:
        raise UserError("The two passwords differ: type the same one twice.")
    return normalize_password(checked_link_password(first, "this form"))
