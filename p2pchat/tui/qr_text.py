"""A QR code as terminal text, drawn with block characters, sized to the room there is.

Dark modules on a light background (what phone cameras expect), whatever the
terminal's own colours; a quiet zone of two modules all round. A terminal cell
is about twice as tall as it is wide, so a square module is one column by half
a row (half blocks, scale 1) or two columns by one row (full blocks, scale 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

QUIET_ZONE = 2
_STYLE = "black on white"
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
# Error correction, strongest first: M survives some glare on a screen; L makes the
# code smaller (a version or two), which is what lets it fit 80x24 beside its text.
_ERROR_LEVELS = ("m", "l")


@dataclass(frozen=True)
class QrDrawing:
    text: Text
    width: int  # terminal columns
    height: int  # terminal rows


def qr_text(payload: str) -> Text:
    """The usual drawing: half blocks, error level M (a safety number, the invite)."""
    return _draw(_modules(payload, "m"), scale=1).text


def fit_qr(
    payload: str, max_width: int, max_height: int, *, scales: tuple[int, ...] = (1,)
) -> QrDrawing | None:
    """The first drawing that fits, trying each scale (biggest first) at error level M,
    then L; None if even the smallest does not fit."""
    for scale in scales:
        for level in _ERROR_LEVELS:
            drawing = _draw(_modules(payload, level), scale=scale)
            if drawing.width <= max_width and drawing.height <= max_height:
                return drawing
    return None


def smallest_qr_size(payload: str) -> tuple[int, int]:
    """(columns, rows) the smallest drawing needs: to say how much room is missing."""
    modules = len(_modules(payload, _ERROR_LEVELS[-1]))
    return modules, (modules + 1) // 2


def _modules(payload: str, level: str) -> list[list[bool]]:
    import segno  # imported here: only the screens that draw a QR pay for it

    code = segno.make(payload, error=level)
    return [
        [bool(module) for module in row] for row in code.matrix_iter(scale=1, border=QUIET_ZONE)
    ]


def _draw(rows: list[list[bool]], *, scale: int) -> QrDrawing:
    if scale == 2:
        lines = ["".join("██" if dark else "  " for dark in row) for row in rows]
    else:
        if len(rows) % 2:
            rows = [*rows, [False] * len(rows[0])]
        lines = [
            "".join(_HALF[top, bottom] for top, bottom in zip(upper, lower, strict=True))
            for upper, lower in zip(rows[::2], rows[1::2], strict=True)
        ]
    text = Text("\n".join(lines), style=_STYLE, no_wrap=True, overflow="crop")
    return QrDrawing(text, len(lines[0]), len(lines))
