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
from textual.pilot import Pilot
from textual.widgets import Input

SNAPSHOT_DIR = Path(__file__).parent / "snapshots"
UPDATE_ENV = "P2PCHAT_UPDATE_SNAPSHOTS"


SETTLE_ATTEMPTS = 20  # a busy machine may need a few more frames before the screen is final
SETTLE_PAUSE_S = 0.25


async def assert_snapshot(
    pilot: Pilot[object], app: App[object], name: str, actual_dir: Path
) -> None:
    """The screen equals the stored SVG, once rendering has settled.

    The same screenshot is retried a few times: under load, workers and refreshes can
    land after the test's own pause. A screen that never matches still fails.
    """
    expected = SNAPSHOT_DIR / f"{name}.svg"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT_DIR.mkdir(exist_ok=True)
        await pilot.pause(SETTLE_PAUSE_S)
        expected.write_text(_screenshot(app), encoding="utf-8")
        return
    if not expected.exists():
        raise AssertionError(f"no snapshot {expected}: run with {UPDATE_ENV}=1 to make it")
    wanted = expected.read_text(encoding="utf-8")
    for _ in range(SETTLE_ATTEMPTS):
        svg = _screenshot(app)
        if svg == wanted:
            return
        await pilot.pause(SETTLE_PAUSE_S)
    actual = actual_dir / f"{name}.actual.svg"
    actual.write_text(svg, encoding="utf-8")
    raise AssertionError(f"{name} differs from {expected}; this run drew {actual}")


def _screenshot(app: App[object]) -> str:
    for field in app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would differ shot to shot
    return app.export_screenshot(title="p2pchat")
