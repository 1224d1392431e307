"""The safety number of a contact: compare it with theirs, then mark them verified.

Both sides see the same 60 digits (and QR code). If they match, nobody is in
between; if not, someone is, and the contact must not be marked verified.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pchat.control.api import SafetyView
from p2pchat.tui.qr_text import qr_text
from p2pchat.tui.text_format import one_line

GROUPS_PER_LINE = 4


class SafetyScreen(ModalScreen[bool]):
    """Dismissed with True if the user marked the contact verified."""

    DEFAULT_CSS = """
    SafetyScreen { align: center middle; }
    SafetyScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
                                    padding: 0 2;
                                    border: thick $accent; background: $surface; }
    SafetyScreen #qr { width: auto; margin: 1 0; }
    SafetyScreen Horizontal { height: auto; }
    SafetyScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "mark", "Mark verified"),
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, view: SafetyView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        view = self.view
        groups = view.safety_number.split()
        lines = [
            "   ".join(groups[i : i + GROUPS_PER_LINE])
            for i in range(0, len(groups), GROUPS_PER_LINE)
        ]
        text = Text()
        text.append("Safety number with ")
        text.append(one_line(view.name, 40), style="bold")
        text.append(f" ({view.peer_id})\n\n")
        text.append("\n".join(lines) + "\n", style="bold")
        text.append(
            "\nCompare these digits with the ones on their screen (in person or on a call), "
            "or scan their QR code. Same digits: nobody is in between.\n"
        )
        state = ("✓ verified", "green") if view.verified else ("not verified yet", "yellow")
        text.append(f"\nStatus: {state[0]}", style=state[1])
        with VerticalScroll():
            yield Static(text)
            yield Static(qr_text(view.qr_payload), id="qr")
            with Horizontal():
                if not view.verified:
                    yield Button("They match: mark verified (m)", id="mark", variant="success")
                yield Button("Close (Esc)", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "mark":
            self.action_mark()
        else:
            self.action_close()

    def action_mark(self) -> None:
        self.dismiss(not self.view.verified)

    def action_close(self) -> None:
        self.dismiss(False)
