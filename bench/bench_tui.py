"""TUI start to first screen, beside a bare Textual app measured in the same run.

Prints ONE JSON object. Each run starts in a fresh subprocess (cold imports, as a
user's start is): from process start until the first screen is mounted (the
unlock screen for an existing profile; Textual headless, so no terminal drawing
cost). The baseline is the same measurement for a bare Textual ``App`` with one
``Static``: what any Textual program pays. History unlock and search figures
for 1M messages are in bench_history.py.

    .venv/bin/python bench/bench_tui.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._figures import Goal, emit, figure  # noqa: E402

P2PCHAT_APP = r"""
import asyncio, sys, time
start = time.perf_counter()
from pathlib import Path
from p2pchat.node_lock import NodeLock
from p2pchat.tui.app import ChatApp
from p2pchat.tui.unlock_screen import UnlockScreen
async def main():
    data_dir = Path(sys.argv[1])
    app = ChatApp(data_dir, NodeLock(data_dir), lock_held=False)
    async with app.run_test() as pilot:
        while not isinstance(app.screen, UnlockScreen):
            await pilot.pause(0.001)
        print(time.perf_counter() - start)
asyncio.run(main())
"""

BARE_APP = r"""
import asyncio, time
start = time.perf_counter()
from textual.app import App, ComposeResult
from textual.widgets import Static
class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello", id="hello")
async def main():
    app = Bare()
    async with app.run_test() as pilot:
        while not app.query("#hello"):
            await pilot.pause(0.001)
        print(time.perf_counter() - start)
asyncio.run(main())
"""


def timed(code: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    return float(out.stdout.strip().splitlines()[-1]) * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "runs": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from p2pchat.crypto.identity import Identity
    from p2pchat.store import create_profile

    data_dir = Path(tempfile.mkdtemp(prefix="bench-tui-")) / "profile"
    create_profile(data_dir, "bench", name="bench", identity_seed=Identity.generate().seed).close()
    timed(P2PCHAT_APP, str(data_dir))  # warm the OS file cache once
    ours = [timed(P2PCHAT_APP, str(data_dir)) for _ in range(args.runs)]
    bare = [timed(BARE_APP) for _ in range(args.runs)]
    first, base = summary(ours), summary(bare)
    result = {
        "benchmark": "tui",
        "p2pchat_start_to_unlock_screen": first,
        "baseline_bare_textual_app": base,
        "ratio_p50": round(first["p50_ms"] / base["p50_ms"], 2),
        "method": "fresh process, imports included, headless run_test, until the first screen is mounted",
    }
    emit(
        result,
        [
            figure(
                "tui.start_to_first_screen",
                "TUI: process start → first screen (p50, headless)",
                first["p50_ms"],
                "ms",
                baseline="a bare Textual app, same run",
                baseline_value=base["p50_ms"],
                goal=Goal(max_ratio=1.3),
                spread=[first["min_ms"], first["p50_ms"], first["max_ms"]],
            )
        ],
    )


if __name__ == "__main__":
    main()
