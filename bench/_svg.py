"""Two small SVG charts for docs/performance.md: a distribution (CDF, log scale) and
horizontal bars with whiskers and goal lines.

Hand-written rather than matplotlib: two chart shapes need ~200 lines, while
matplotlib (not installed here) brings numpy, Pillow, fonttools and more, and its SVG
carries generated ids and metadata, so a re-run would churn the committed files. This
output depends only on the data: the same run gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 760
COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


@dataclass(frozen=True)
class Curve:
    """One distribution: its label and its 0th..100th percentiles."""

    label: str
    percentiles: list[float]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float | None = None  # whisker: the lowest of the runs
    high: float | None = None  # and the highest


@dataclass(frozen=True)
class Marker:
    """A vertical line across the plot (a goal or a limit)."""

    label: str
    value: float


def cdf_chart(title: str, unit: str, curves: list[Curve], markers: list[Marker]) -> str:
    """Cumulative distributions on a log x axis: the share of samples at or under x.
    Goal labels go above the plot and the legend below it, clear of the curves."""
    left, right = 64, WIDTH - 24
    top = 44 + 16 * len(markers)
    bottom = top + 250
    height = bottom + 52 + 20 * len(curves)
    values = [v for c in curves for v in c.percentiles if v > 0] + [m.value for m in markers]
    lo, hi = _round_125(min(values), down=True), _round_125(max(values), down=False)

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return left + (math.log10(v) - math.log10(lo)) / (math.log10(hi / lo)) * (right - left)

    def y(share: float) -> float:
        return bottom - share / 100 * (bottom - top)

    out = _header(title, height)
    for share in (0, 25, 50, 75, 99):
        dash = ' stroke-dasharray="4 3"' if share in (50, 99) else ""
        out.append(_line(left, y(share), right, y(share), "#ddd", dash))
        out.append(_text(left - 6, y(share) + 4, f"{share} %", anchor="end", size=11))
    out.append(_line(left, y(100), right, y(100), "#ddd"))
    for tick in _log_ticks(lo, hi):
        out.append(_line(x(tick), top, x(tick), bottom, "#eee"))
        out.append(_text(x(tick), bottom + 16, f"{tick:g}", anchor="middle", size=11))
    out.append(_text((left + right) / 2, bottom + 36, f"round trip ({unit}, log scale)", "middle"))
    out.append(_axes(left, top, right, bottom))
    for i, marker in enumerate(markers):
        at = x(marker.value)
        out.append(_line(at, top - 4, at, bottom, "#555", ' stroke-dasharray="6 4"'))
        out.append(_text(at, 44 + 16 * i, marker.label, anchor=_side(at, left, right), size=11))
    for i, curve in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(
            f"{x(v):.1f},{y(100 * k / (len(curve.percentiles) - 1)):.1f}"
            for k, v in enumerate(curve.percentiles)
        )
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        legend_y = bottom + 62 + 20 * i
        out.append(_line(left, legend_y - 4, left + 24, legend_y - 4, colour, ' stroke-width="3"'))
        out.append(_text(left + 32, legend_y, curve.label, size=12))
    return _footer(out)


def bar_chart(title: str, unit: str, bars: list[Bar], markers: list[Marker]) -> str:
    """Horizontal bars from 0, whiskers from ``low`` to ``high``, goal lines."""
    left, right, row = 250, WIDTH - 40, 40
    top = 44 + 16 * len(markers)  # a line above the plot for each goal's label
    bottom = top + row * len(bars) + 10
    height = bottom + 52
    peak = max([b.high or b.value for b in bars] + [m.value for m in markers] + [1e-9])
    step = _nice_step(peak / 5)
    hi = step * math.ceil(peak * 1.05 / step)

    def x(v: float) -> float:
        return left + v / hi * (right - left)

    out = _header(title, height)
    tick = 0.0
    while tick <= hi + step / 2:
        out.append(_line(x(tick), top, x(tick), bottom, "#eee"))
        out.append(_text(x(tick), bottom + 16, _number(tick), anchor="middle", size=11))
        tick += step
    out.append(_text((left + right) / 2, bottom + 36, unit, "middle"))
    for i, bar in enumerate(bars):
        colour = COLOURS[i % len(COLOURS)]
        middle = top + row * i + row / 2 + 5
        out.append(
            f'<rect x="{left}" y="{middle - 11:.1f}" width="{x(bar.value) - left:.1f}" height="22"'
            f' fill="{colour}" fill-opacity="0.85"/>'
        )
        out.append(_text(left - 8, middle + 4, bar.label, anchor="end", size=12))
        end = x(bar.value)
        if bar.low is not None and bar.high is not None:
            for a, b, c, d in (
                (x(bar.low), middle, x(bar.high), middle),
                (x(bar.low), middle - 7, x(bar.low), middle + 7),
                (x(bar.high), middle - 7, x(bar.high), middle + 7),
            ):
                out.append(_line(a, b, c, d, "#222", ' stroke-width="1.5"'))
            end = max(end, x(bar.high))
        out.append(_text(end + 6, middle + 4, _number(bar.value), size=12))
    out.append(_axes(left, top, right, bottom))
    for i, marker in enumerate(markers):
        at = x(marker.value)
        label_y = 44 + 16 * i
        out.append(_line(at, top - 4, at, bottom, "#555", ' stroke-dasharray="6 4"'))
        out.append(_text(at, label_y, marker.label, anchor=_side(at, left, right), size=11))
    return _footer(out)


# -- helpers ------------------------------------------------------------------------------


def _header(title: str, height: float) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" {FONT} font-size="13">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
        _text(WIDTH / 2, 22, title, anchor="middle", size=15, weight="bold"),
    ]


def _footer(out: list[str]) -> str:
    return "\n".join([*out, "</svg>"]) + "\n"


def _axes(left: float, top: float, right: float, bottom: float) -> str:
    return f'<path d="M{left},{top} V{bottom} H{right}" fill="none" stroke="#333"/>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, extra: str = "") -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"{extra}/>'
    )


def _text(
    x: float, y: float, text: str, anchor: str = "start", size: int = 13, weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"'
        f' font-weight="{weight}">{escape(text)}</text>'
    )


def _side(pos: float, left: float, right: float) -> str:
    """Anchor a label so that it stays inside the plot."""
    if pos > right - 120:
        return "end"
    if pos < left + 120:
        return "start"
    return "middle"


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    decade = 10 ** math.floor(math.log10(lo))
    while decade <= hi * 1.0001:
        for m in (1, 2, 5):
            if lo <= decade * m <= hi * 1.0001:
                ticks.append(float(f"{decade * m:.6g}"))
        decade *= 10
    return ticks


def _round_125(v: float, *, down: bool) -> float:
    """The nearest 1, 2 or 5 times a power of ten at or below (or above) ``v``."""
    power = 10 ** math.floor(math.log10(v))
    steps = [m * power for m in (1, 2, 5, 10)]
    if down:
        return float(f"{max(s for s in steps if s <= v * 1.0001):.6g}")
    return float(f"{min(s for s in steps if s >= v / 1.0001):.6g}")


def _nice_step(raw: float) -> float:
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def _number(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"
