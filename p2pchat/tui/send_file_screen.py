"""``f``: the path of a file to send to the open contact.

``~`` is expanded; a path that is not a readable file is refused here, on one
line, so that the user can fix it (the node checks again when it sends).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from p2pchat.tui.text_format import one_line

#: Linux's PATH_MAX: no real path is longer.
MAX_PATH_CHARS = 4096


def check_path(typed: str) -> Path | str:
    """The file to send, or why not (one line)."""
    text = typed.strip()
    if not text:
        return "type the path of a file"
    if "\x00" in text:
        return "a path cannot hold a NUL character"
    path = Path(os.path.expanduser(text))
    shown = one_line(text, 60)
    try:
        if not path.exists():
            return f"no such file: {shown}"
        if path.is_dir():
            return f"{shown} is a folder: pick a file in it"
        if not path.is_file():
            return f"{shown} is not a regular file"
    except OSError as exc:
        return f"cannot read {shown}: {exc.strerror or exc}"
    if not os.access(path, os.R_OK):
        return f"cannot read {shown}: permission denied"
    return path.resolve()


class SendFileScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    SendFileScreen { align: center middle; }
    SendFileScreen > Vertical { width: 76; max-width: 100%; height: auto; max-height: 100%;
                                padding: 0 1; border: thick $accent; background: $surface; }
    SendFileScreen #send-file-error { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, to_name: str) -> None:
        super().__init__()
        self._to_name = to_name

    def compose(self) -> ComposeResult:
        with Vertical():
            title = Text("Send a file to ", style="bold")
            title.append(one_line(self._to_name, 30))
            yield Static(title)
            yield Input(placeholder="Path, e.g. ~/Documents/report.pdf", id="send-file-path",
                        max_length=MAX_PATH_CHARS)  # fmt: skip
            yield Static("", id="send-file-error")
            yield Static(Text("Enter sends, Esc cancels.", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#send-file-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        checked = check_path(event.value)
        if isinstance(checked, str):
            self.query_one("#send-file-error", Static).update(Text(checked))
            return
        self.dismiss(str(checked))

    def action_cancel(self) -> None:
        self.dismiss(None)
