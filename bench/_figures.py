"""The uniform part of every bench's JSON: ``figures`` and ``run``.

Each ``bench_*.py`` prints its own JSON object (its figures in its own shape, which
other tools read) and, beside them, a top-level ``figures`` list in one shape::

    {"name": "lan.rtt_p50", "label": "...", "value": 2.8, "unit": "ms",
     "baseline": "raw aiortc data channel, same namespaces", "baseline_value": 0.9,
     "ratio": 3.11, "goal": "≤ 2x baseline and < 1.5 ms", "goal_met": false,
     "spread": [2.6, 2.8, 4.3]}

a ``run`` object (load average at the start and end, seconds) and, for the benches
that draw one, ``charts``: the data of a chart (``cdf_chart`` / ``bar_chart`` specs,
see ``chart_cdf`` and ``chart_bars``). ``bench/report.py`` reads only these, so it
needs to know nothing of each bench's own layout.
"""

from __future__ import annotations

import datetime
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: The code that the figures depend on: a change here, uncommitted, makes a run "dirty".
CODE_PATHS = ("p2pchat", "signaling", "browser/src", "bench")


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (``/proc/loadavg``)."""
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


_STARTED = time.monotonic()
_LOAD_AT_START = loadavg()  # this module is imported when a bench starts


@dataclass(frozen=True)
class Goal:
    """A goal on a figure: bounds on its ratio to the baseline and on its value."""

    max_ratio: float | None = None
    min_ratio: float | None = None
    max_value: float | None = None
    min_value: float | None = None
    unit: str = ""

    def text(self) -> str:
        parts = []
        if self.max_ratio is not None:
            parts.append(f"≤ {self.max_ratio:g}x baseline")
        if self.min_ratio is not None:
            parts.append(f"≥ {self.min_ratio:g}x baseline")
        if self.max_value is not None:
            parts.append(f"< {self.max_value:g} {self.unit}".rstrip())
        if self.min_value is not None:
            parts.append(f"≥ {self.min_value:g} {self.unit}".rstrip())
        return " and ".join(parts)

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        """True or False; None when a figure it needs is missing."""
        checks: list[tuple[float | None, float | None, Callable[[float, float], bool]]] = [
            (self.max_ratio, ratio, lambda bound, x: x <= bound),
            (self.min_ratio, ratio, lambda bound, x: x >= bound),
            (self.max_value, value, lambda bound, x: x < bound),
            (self.min_value, value, lambda bound, x: x >= bound),
        ]
        results = []
        for bound, x, holds in checks:
            if bound is None:
                continue
            if x is None:
                return None
            results.append(holds(bound, x))
        return all(results) if results else None


def figure(
    name: str,
    label: str,
    value: float | None,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    goal: Goal | str | None = None,
    met: bool | None = None,
    spread: list[float] | None = None,
) -> dict[str, Any]:
    """One row of ``figures``. ``goal`` as text is shown as it is, judged by ``met``
    if given; ``spread`` is [min, median, max] over the runs, when there are several."""
    ratio = round(value / baseline_value, 3) if value is not None and baseline_value else None
    if isinstance(goal, Goal):
        goal_text: str | None = goal.text()
        met = goal.met(value, ratio)
    else:
        goal_text = goal
    return {
        "name": name,
        "label": label,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "goal": goal_text,
        "goal_met": met,
        "spread": spread,
    }


def spread(values: list[float]) -> list[float]:
    """[min, median, max]."""
    return [min(values), statistics.median(values), max(values)]


def cdf_points(samples: list[float], points: int = 100) -> list[float]:
    """The 0th, 1st, … 100th percentiles (nearest rank), rounded to the µs: enough
    to draw the distribution without shipping every sample."""
    ordered = sorted(samples)
    last = len(ordered) - 1
    return [round(ordered[round(last * i / points)], 3) for i in range(points + 1)]


def chart_cdf(
    name: str,
    title: str,
    unit: str,
    curves: list[tuple[str, list[float]]],
    markers: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A distribution chart: (label, ``cdf_points``) per curve, (label, x) per marker."""
    return {
        "name": name, "kind": "cdf", "title": title, "unit": unit,
        "curves": [{"label": label, "percentiles": points} for label, points in curves],
        "markers": [{"label": label, "value": value} for label, value in markers or []],
    }  # fmt: skip


def chart_bars(
    name: str,
    title: str,
    unit: str,
    bars: list[tuple[str, float, list[float] | None]],
    markers: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A bar chart: (label, value, ``spread`` or None) per bar, (label, x) per marker."""
    return {
        "name": name, "kind": "bars", "title": title, "unit": unit,
        "bars": [
            {"label": label, "value": value, "low": s and s[0], "high": s and s[-1]}
            for label, value, s in bars
        ],
        "markers": [{"label": label, "value": value} for label, value in markers or []],
    }  # fmt: skip


def emit(
    result: dict[str, Any],
    figures: list[dict[str, Any]],
    charts: list[dict[str, Any]] | None = None,
) -> None:
    """Print ``result`` with ``figures``, ``run`` (and ``charts``) as ONE JSON line."""
    result["figures"] = figures
    if charts:
        result["charts"] = charts
    result["run"] = {
        "loadavg_start": _LOAD_AT_START,
        "loadavg_end": loadavg(),
        "seconds": round(time.monotonic() - _STARTED, 1),
        "finished_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "commit": commit(),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def commit() -> str | None:
    """``git rev-parse HEAD`` of this tree, ``+dirty`` if the code differs from it."""
    try:
        head = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if changed else "")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()
