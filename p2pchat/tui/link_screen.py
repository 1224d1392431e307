"""``l`` in Start chat: the invite link alone on the screen, to select with the mouse.

For terminals where the clipboard escape (OSC 52) does not get through (tmux by
default, some terminals): nothing else on the screen, no border, no indent, so
a selection holds the link and only the link.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static


class LinkScreen(Screen[None]):
    DEFAULT_CSS = """
    LinkScreen #link { width: 100%; height: auto; }
    LinkScreen #link-hint { width: 100%; height: auto; margin-top: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,l,enter,space", "back", "Back"),
    ]

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def compose(self) -> ComposeResult:
        yield Static(Text(self.url, style="bold", overflow="fold"), id="link")
        yield Static("", id="link-hint")

    def on_mount(self) -> None:
        self._hint()

    def on_resize(self, _event: Resize) -> None:
        self._hint()

    def _hint(self) -> None:
        width = self.app.size.width
        hint = Text(
            "The invite link alone. Select it with the mouse (in most terminals hold "
            "Shift while you drag; in tmux, its copy mode) and paste it where your "
            "guest will see it."
        )
        if len(self.url) > width:
            lines = -(-len(self.url) // width)
            hint.append(
                f"\n\nIt is {len(self.url)} characters, wider than this window ({width}): "
                f"it runs over {lines} lines, so a copy may hold a line break. A browser's "
                "address bar drops it; elsewhere, widen the window first or join the lines."
            )
        hint.append(
            "\n\nAlways works: `p2pchat invite` in a plain terminal prints a new link "
            "and its QR code.\n\nEsc: back."
        )
        self.query_one("#link-hint", Static).update(hint)

    def action_back(self) -> None:
        self.dismiss(None)
