"""A QR code as terminal text: two module rows per line, drawn with half blocks.

Dark modules on a light background (what phone cameras expect), whatever the
terminal's own colours; a quiet zone of two modules all round.
"""

from __future__ import annotations

from rich.text import Text

QUIET_ZONE = 2
_STYLE = "black on white"
_GLYPHS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def qr_text(payload: str) -> Text:
    import segno  # imported here: only the screens that draw a QR pay for it

    rows = [
        [bool(module) for module in row]
        for row in segno.make(payload, error="m").matrix_iter(scale=1, border=QUIET_ZONE)
    ]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    lines = [
        "".join(_GLYPHS[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[::2], rows[1::2], strict=True)
    ]
    return Text("\n".join(lines), style=_STYLE, no_wrap=True, overflow="crop")
