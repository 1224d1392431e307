"""bench/report.py and its parts: the one table, the generated part of
docs/performance.md, the goals and the SVG charts (pure functions, no bench run)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench._figures import Goal, cdf_points, chart_bars, chart_cdf, figure
from bench.report import BEGIN, END, ReportError, load_results, render_chart, splice, table


def test_splice_replaces_only_the_generated_part() -> None:
    prose_before = "# Performance\n\nHand-written intro.\n\n"
    prose_after = "\n\n## How it is measured\n\nMore prose.\n"
    old = f"{prose_before}{BEGIN}\nold table\n{END}{prose_after}"
    new = splice(old, f"{BEGIN}\nnew table\n{END}")
    assert new == f"{prose_before}{BEGIN}\nnew table\n{END}{prose_after}"
    assert splice(new, f"{BEGIN}\nnew table\n{END}") == new  # idempotent


@pytest.mark.parametrize("document", ["no markers", f"{END}\n{BEGIN}", f"{BEGIN} only"])
def test_splice_refuses_a_document_without_both_markers(document: str) -> None:
    with pytest.raises(ReportError, match="markers"):
        splice(document, "x")


@pytest.mark.parametrize(
    ("goal", "value", "ratio", "met"),
    [
        (Goal(max_ratio=2.0, max_value=1.5), 1.4, 1.9, True),
        (Goal(max_ratio=2.0, max_value=1.5), 1.6, 1.9, False),  # the value misses
        (Goal(max_ratio=2.0, max_value=1.5), 1.4, 2.1, False),  # the ratio misses
        (Goal(min_ratio=0.8, min_value=2000), 2000, 0.8, True),  # bounds are inclusive
        (Goal(min_ratio=0.8, min_value=2000), 1999, 0.9, False),
        (Goal(max_ratio=1.3), 100, None, None),  # no baseline: not judged
    ],
)
def test_goal_judges_value_and_ratio(
    goal: Goal, value: float, ratio: float | None, met: bool | None
) -> None:
    assert goal.met(value, ratio) is met


def test_figure_computes_the_ratio_to_its_same_run_baseline() -> None:
    row = figure(
        "x.rtt", "RTT", 3.0, "ms", baseline="raw", baseline_value=1.5, goal=Goal(max_ratio=2)
    )
    assert (row["ratio"], row["goal_met"], row["goal"]) == (2.0, True, "≤ 2x baseline")
    assert figure("x.y", "y", 3.0, "ms", baseline_value=0)["ratio"] is None


def test_table_has_every_bench_and_every_figure(tmp_path: Path) -> None:
    rows = [figure("a.one", "first figure", 2.5, "ms", baseline="base", baseline_value=1.0)]
    run = {"loadavg_start": [1.0, 1, 1], "loadavg_end": [2.0, 1, 1], "seconds": 3}
    (tmp_path / "bench_a.json").write_text(json.dumps({"figures": rows, "run": run}))
    loaded = load_results(tmp_path, ["bench_a", "bench_b"])
    text = table(loaded)
    assert "| **bench_a** (3 s, load 1.0→2.0) |" in text
    assert "| first figure | 2.50 ms | 1 ms: base | 2.50 |" in text
    assert "**bench_b**: no result" in text


def test_a_result_without_figures_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bench_a.json").write_text(json.dumps({"benchmark": "old"}))
    with pytest.raises(ReportError, match="figures"):
        load_results(tmp_path, ["bench_a"])


def test_charts_are_well_formed_svg_and_the_same_for_the_same_data() -> None:
    samples = [0.5 + i / 1000 for i in range(1000)]
    specs = [
        chart_cdf("rtt", "RTT", "ms", [("a", cdf_points(samples)), ("b", cdf_points([0.05]))],
                  [("goal", 1.0)]),
        chart_bars("tput", "Throughput", "msg/s", [("a", 500, None), ("b", 6000, [5000, 9000])],
                   [("goal", 2000)]),
    ]  # fmt: skip
    for spec in specs:
        svg = render_chart(spec)
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert render_chart(json.loads(json.dumps(spec))) == svg


def test_cdf_points_are_the_percentiles() -> None:
    points = cdf_points([float(i) for i in range(1, 1002)])
    assert len(points) == 101
    assert (points[0], points[50], points[100]) == (1.0, 501.0, 1001.0)
