"""``f`` in Start chat: the invite's QR code alone on the screen, as big as it fits.

For a terminal where the code does not fit beside the dialog's text, and for a
phone camera that wants a bigger code: full blocks (two columns per module) when
the terminal is large enough, half blocks otherwise.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static

from p2pchat.tui.qr_text import fit_qr, smallest_qr_size

HINT = "Scan with the guest's phone camera  ·  Esc: back"


class QrScreen(Screen[None]):
    DEFAULT_CSS = """
    QrScreen { align: center middle; }
    QrScreen #qr-code { width: auto; height: auto; }
    QrScreen #qr-hint { dock: bottom; width: 100%; height: 1; text-align: center;
                        color: $text-muted; }
    /* No notices over the code: a phone could not read it. They show again on the
       dialog beneath (those that have not timed out). */
    QrScreen Toast { visibility: hidden; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f,enter,space", "back", "Back"),
    ]

    def __init__(self, payload: str) -> None:
        super().__init__()
        self.payload = payload
        self.fits = False

    def compose(self) -> ComposeResult:
        yield Static("", id="qr-code")
        yield Static(HINT, id="qr-hint")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self, _event: Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        width, height = self.app.size
        drawing = fit_qr(self.payload, width, height - 1, scales=(2, 1))
        code = self.query_one("#qr-code", Static)
        self.fits = drawing is not None
        if drawing is not None:
            code.update(drawing.text)
            return
        columns, rows = smallest_qr_size(self.payload)
        code.update(
            Text(
                f"The QR code needs {columns}x{rows + 1} characters; this terminal is "
                f"{width}x{height}. Make the window bigger, or press w in the Start chat "
                "dialog to save the code as a PNG file.",
                style="bold yellow",
            )
        )

    def action_back(self) -> None:
        self.dismiss(None)
