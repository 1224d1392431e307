"""A contact request: accept, reject, or decide later."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pchat.control.api import ContactView
from p2pchat.tui.text_format import one_line


class RequestScreen(ModalScreen[str | None]):
    """Dismissed with "accept", "reject" or None (later)."""

    DEFAULT_CSS = """
    RequestScreen { align: center middle; }
    RequestScreen > Vertical { width: 76; max-width: 100%; height: auto; padding: 1 2;
                               border: thick $warning; background: $surface; }
    RequestScreen Horizontal { height: auto; margin-top: 1; }
    RequestScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "answer('accept')", "Accept"),
        Binding("r", "answer('reject')", "Reject"),
        Binding("escape,l", "answer(None)", "Later"),
    ]

    def __init__(self, request: ContactView) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        view = self.request
        text = Text()
        text.append(one_line(view.name, 40), style="bold")
        text.append(" wants to be your contact.\n\n")
        text.append(f"Peer id:     {view.peer_id}\nFingerprint: {view.fingerprint}\n\n")
        text.append(
            "Accept only if you know who this is. After accepting, compare the "
            "safety number (v) with them to be sure nobody is in between.",
            style="dim",
        )
        with Vertical():
            yield Static(text)
            with Horizontal():
                yield Button("Accept (a)", id="accept", variant="success")
                yield Button("Reject (r)", id="reject", variant="error")
                yield Button("Later (Esc)", id="later")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_answer(None if event.button.id == "later" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
