"""A known contact's name or id, advertised with another key: a blocking warning.

The node never connects to that key; this screen makes sure the user saw it.
There is at most one per contact: later attempts update the open one (count,
latest key and address) instead of stacking dialogs. It covers everything and closes only with an explicit acknowledgement
(Shift+A, or a click on its button): Esc, q, Tab, Enter and clicks elsewhere
do nothing.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pchat.node.events import KeyChangeWarning
from p2pchat.tui.text_format import one_line


class KeyWarningScreen(ModalScreen[KeyChangeWarning]):
    DEFAULT_CSS = """
    KeyWarningScreen { align: center middle; background: $error 30%; }
    KeyWarningScreen > VerticalScroll { width: 92; max-width: 100%; height: auto;
                                        max-height: 100%; padding: 0 2;
                                        border: heavy $error; background: $surface; }
    KeyWarningScreen #ack { margin-top: 1; }
    """
    # Priority: these win over everything below; nothing else closes the screen.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("A", "acknowledge", "Acknowledge (Shift+A)", priority=True),
        Binding("escape", "ignore", show=False, priority=True),
    ]

    def __init__(self, warning: KeyChangeWarning) -> None:
        super().__init__()
        self.warning = warning

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._body(), id="warning-text")
            ack = Button("I understand (Shift+A)", id="ack", variant="error")
            ack.can_focus = False  # Tab then Enter must not acknowledge by accident
            yield ack

    def update_warning(self, warning: KeyChangeWarning) -> None:
        """Another attempt for the same contact: shown here, never as a second dialog."""
        self.warning = warning
        if self.is_mounted:
            self.query_one("#warning-text", Static).update(self._body())

    def _body(self) -> Text:
        w = self.warning
        name = one_line(w.name, 40)
        text = Text()
        text.append("⚠  KEY CHANGE WARNING\n\n", style="bold red")
        text.append("Someone on the network claims to be your contact ")
        text.append(name, style="bold")
        text.append(f" ({w.peer_id}), but with a different key.\n\n")
        text.append("Pinned key (the one you accepted):\n", style="bold")
        text.append(f"  {w.pinned_fingerprint}\n")
        text.append("Key advertised now:\n", style="bold")
        text.append(f"  {w.advertised_fingerprint}\n", style="red")
        text.append(f"  (peer id {w.advertised_peer_id})\n\n")
        if w.count > 1:
            how = "contact request" if w.source == "contact_request" else "network advert"
            where = f" from {one_line(w.address, 46)}" if w.address else ""
            text.append(f"Seen {w.count} times; the latest as a {how}{where}.\n\n", style="bold")
        text.append(
            "p2pchat will NOT connect to it and keeps talking only to the pinned key. "
            "It may be someone pretending to be them, or they may have made a new "
            "profile. Ask them in person (or by phone) before you trust anything new.\n\n"
        )
        text.append("Press Shift+A to acknowledge.", style="bold")
        return text

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ack":
            self.action_acknowledge()

    def action_acknowledge(self) -> None:
        self.dismiss(self.warning)

    def action_ignore(self) -> None:
        self.app.bell()
