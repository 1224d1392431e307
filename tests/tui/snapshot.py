"""SVG snapshots of TUI screens (Textual's own screenshot export), compared as text.

pytest-textual-snapshot would do this, but it pins syrupy 4.8, which needs
pytest < 9; this is the same idea in a few lines. ``P2PCHAT_UPDATE_SNAPSHOTS=1``
rewrites the files (review the change, e.g. open the SVGs in a browser); a
mismatch writes ``<name>.actual.svg`` into the test's tmp dir to compare.
The same SVGs illustrate docs/user-guide.md: after an update, copy the changed
ones to docs/screenshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import App
from textual.widgets import Input

SNAPSHOT_DIR = Path(__file__).parent / "snapshots"
UPDATE_ENV = "P2PCHAT_UPDATE_SNAPSHOTS"


def assert_snapshot(app: App[object], name: str, actual_dir: Path) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would differ shot to shot
    svg = app.export_screenshot(title="p2pchat")
    expected = SNAPSHOT_DIR / f"{name}.svg"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT_DIR.mkdir(exist_ok=True)
        expected.write_text(svg, encoding="utf-8")
        return
    if not expected.exists():
        raise AssertionError(f"no snapshot {expected}: run with {UPDATE_ENV}=1 to make it")
    if expected.read_text(encoding="utf-8") != svg:
        actual = actual_dir / f"{name}.actual.svg"
        actual.write_text(svg, encoding="utf-8")
        raise AssertionError(f"{name} differs from {expected}; this run drew {actual}")
