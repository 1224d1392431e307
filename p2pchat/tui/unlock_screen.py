"""Later runs: the passphrase unlocks the profile (``P2PCHAT_PASSPHRASE`` skips this)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from p2pchat.passphrase import MAX_PASSPHRASE_CHARS
from p2pchat.store.errors import StoreError, WrongPassphrase
from p2pchat.tui.profile_opened import ProfileOpened

if TYPE_CHECKING:
    from p2pchat.store import KdfLimits, Profile


def open_profile_in_thread(
    data_dir: Path, passphrase: str, kdf_limits: KdfLimits | None
) -> Profile:
    """``open_profile``, imported here: SQLCipher and PyNaCl load off the first paint."""
    # profile before keys, as app.py's loader thread: one order, so no import deadlock
    from p2pchat.store.profile import open_profile  # isort: skip
    from p2pchat.store.keys import DEFAULT_KDF_LIMITS  # isort: skip

    return open_profile(data_dir, passphrase, kdf_limits=kdf_limits or DEFAULT_KDF_LIMITS)


class UnlockScreen(Screen[None]):
    """Sends ProfileOpened with the open profile."""

    DEFAULT_CSS = """
    UnlockScreen { align: center middle; }
    UnlockScreen > Vertical { width: 72; height: auto; padding: 1 2;
                              border: thick $accent; background: $surface; }
    UnlockScreen #unlock-status { margin-top: 1; }
    """

    def __init__(self, data_dir: Path, *, kdf_limits: KdfLimits | None = None) -> None:
        super().__init__()
        self._data_dir = data_dir
        self._kdf_limits = kdf_limits

    def compose(self) -> ComposeResult:
        intro = Text()
        intro.append("Unlock p2pchat\n", style="bold")
        intro.append(f"Profile: {self._data_dir}", style="dim")
        with Vertical():
            yield Static(intro)
            yield Input(
                password=True, placeholder="passphrase, then Enter", id="unlock-passphrase",
                max_length=MAX_PASSPHRASE_CHARS,
            )  # fmt: skip
            yield Static("", id="unlock-status")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value:
            self._unlock(event.value)

    @work(exclusive=True, group="unlock")
    async def _unlock(self, passphrase: str) -> None:
        field = self.query_one(Input)
        field.disabled = True
        self._status(Text("Unlocking…", style="dim"))
        try:
            profile = await asyncio.to_thread(
                open_profile_in_thread, self._data_dir, passphrase, self._kdf_limits
            )
        except WrongPassphrase:
            self._status(Text("Wrong passphrase: try again.", style="bold red"))
            field.disabled = False
            field.value = ""
            field.focus()
            return
        except StoreError as exc:
            self._status(Text(exc.user_message, style="bold red"))
            field.disabled = False
            return
        self.post_message(ProfileOpened(profile))

    def _status(self, text: Text) -> None:
        self.query_one("#unlock-status", Static).update(text)
