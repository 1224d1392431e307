"""First run: make the profile (name, passphrase twice, whether to keep history).

Compact enough for 80x24; in a smaller terminal it scrolls (Tab brings each
field and the button into view).
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Label, Static

from p2pchat.passphrase import MAX_PASSPHRASE_CHARS
from p2pchat.profile_name import MAX_NAME_BYTES
from p2pchat.store.errors import StoreError
from p2pchat.tui.profile_opened import ProfileOpened

if TYPE_CHECKING:
    from p2pchat.store import KdfLimits, Profile


class CreateProfileScreen(Screen[None]):
    """Sends ProfileOpened with the new profile, open."""

    DEFAULT_CSS = """
    CreateProfileScreen { align: center middle; }
    CreateProfileScreen > VerticalScroll { width: 72; max-width: 100%; height: auto;
                                           max-height: 100%; padding: 0 2;
                                           border: thick $accent; background: $surface; }
    CreateProfileScreen #intro { margin-bottom: 1; }
    CreateProfileScreen #create-row { height: auto; }
    CreateProfileScreen #history { width: 1fr; }
    CreateProfileScreen #create-error { color: $error; }
    """

    def __init__(self, data_dir: Path, *, kdf_limits: KdfLimits | None = None) -> None:
        super().__init__()
        self._data_dir = data_dir
        self._kdf_limits = kdf_limits

    def compose(self) -> ComposeResult:
        intro = Text()
        intro.append("Welcome to p2pchat\n", style="bold")
        intro.append(f"A new profile will be made in {self._data_dir}.\n", style="dim")
        intro.append(
            "The passphrase encrypts it; there is no way to recover a forgotten one.",
            style="dim",
        )
        with VerticalScroll():
            yield Static(intro, id="intro")
            yield Label("Your name on the network")
            yield Input(value=_default_name(), id="name", max_length=MAX_NAME_BYTES)
            yield Label("Passphrase")
            yield Input(password=True, id="passphrase", max_length=MAX_PASSPHRASE_CHARS)
            yield Label("Passphrase again")
            yield Input(password=True, id="passphrase2", max_length=MAX_PASSPHRASE_CHARS)
            with Horizontal(id="create-row"):
                yield Checkbox("Keep an encrypted history", True, id="history")
                yield Button("Create profile", id="create", variant="primary")
            yield Static("", id="create-error")

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        following = {"name": "#passphrase", "passphrase": "#passphrase2"}.get(event.input.id or "")
        if following:
            self.query_one(following, Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._submit()

    def _submit(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        first = self.query_one("#passphrase", Input).value
        second = self.query_one("#passphrase2", Input).value
        problem = _problem(name, first, second)
        if problem:
            self._error(problem)
            return
        self._create(name, first, self.query_one("#history", Checkbox).value)

    @work(exclusive=True, group="create")
    async def _create(self, name: str, passphrase: str, keep_history: bool) -> None:
        self.query_one("#create", Button).disabled = True
        self._error("Creating the profile (deriving the key takes a moment)…")
        try:
            # Argon2id is slow on purpose: off the event loop.
            profile = await asyncio.to_thread(
                _create_profile, self._data_dir, passphrase, name, keep_history, self._kdf_limits
            )
        except (StoreError, OSError) as exc:
            self._error(getattr(exc, "user_message", None) or str(exc))
            self.query_one("#create", Button).disabled = False
            return
        self.post_message(ProfileOpened(profile))

    def _error(self, message: str) -> None:
        self.query_one("#create-error", Static).update(Text(message))


def _create_profile(
    data_dir: Path, passphrase: str, name: str, keep_history: bool, kdf_limits: KdfLimits | None
) -> Profile:
    """``create_profile``, imported here: SQLCipher and PyNaCl load off the first paint."""
    # in app.py's loader thread's order: one order, so no import deadlock
    from p2pchat.store.profile import create_profile  # isort: skip
    from p2pchat.store.keys import DEFAULT_KDF_LIMITS  # isort: skip
    from p2pchat.crypto.identity import Identity  # isort: skip

    return create_profile(
        data_dir, passphrase, name=name, identity_seed=Identity.generate().seed,
        keep_history=keep_history, kdf_limits=kdf_limits or DEFAULT_KDF_LIMITS,
    )  # fmt: skip


def _problem(name: str, first: str, second: str) -> str | None:
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES or not name.isprintable():
        return f"The name must be 1 to {MAX_NAME_BYTES} bytes of printable text."
    if not first:
        return "Choose a passphrase."
    if first != second:
        return "The two passphrases differ."
    return None


def _default_name() -> str:
    try:
        return getpass.getuser()[:MAX_NAME_BYTES]
    except (KeyError, OSError):
        return ""
