"""Every bench's figures in ONE table, the charts, and docs/performance.md's generated part.

Reads the JSON each ``bench/bench_*.py`` left in ``bench/results/<name>.json`` (only
the uniform parts: ``figures``, ``run`` and ``charts``, see ``bench/_figures.py``),
prints one Markdown table of every figure with its same-run baseline, ratio and goal,
and with ``--write-docs`` writes each chart to ``docs/perf/<name>.svg`` and replaces
the part of ``docs/performance.md`` between the two markers (the prose around them is
left as it is). ``bench/run_all.sh`` runs every bench, then this.

    .venv/bin/python bench/report.py [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._svg import Bar, Curve, Marker, bar_chart, cdf_chart  # noqa: E402

BEGIN = "<!-- BEGIN bench/report.py: generated, do not edit by hand -->"
END = "<!-- END bench/report.py -->"
MET = {True: "✅", False: "❌", None: ""}


class ReportError(Exception):
    """A problem with the inputs, said in one line."""


def load_results(results: Path, scripts: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each bench's JSON by script name, ``None`` for a bench with no result."""
    loaded: dict[str, dict[str, Any] | None] = {}
    for name in scripts:
        path = results / f"{name}.json"
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            loaded[name] = None
            continue
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}: not JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("figures"), list):
            raise ReportError(f"{path}: no 'figures' list (a result from an older bench?)")
        loaded[name] = doc
    return loaded


def table(loaded: dict[str, dict[str, Any] | None]) -> str:
    """One Markdown table: a bold row per bench, then its figures."""
    lines = [
        "| figure | value (runs: min-max) | baseline, measured in the same run | ratio | goal | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, doc in loaded.items():
        if doc is None:
            lines.append(f"| **{name}**: no result (failed or not run) | | | | | |")
            continue
        run = doc.get("run", {})
        lines.append(f"| **{name}** ({run.get('seconds', '?')} s, load {_load(run)}) | | | | | |")
        for row in doc["figures"]:
            lines.append(_row(row))
    return "\n".join(lines)


def generated_section(
    loaded: dict[str, dict[str, Any] | None], chart_files: list[tuple[str, str]]
) -> str:
    """The Markdown between the markers: the run, the charts, the table."""
    runs = [doc["run"] for doc in loaded.values() if doc is not None and "run" in doc]
    missing = [name for name, doc in loaded.items() if doc is None]
    commits = sorted({str(run.get("commit")) for run in runs})
    dates = sorted(run.get("finished_utc", "?") for run in runs)
    loads = [x for run in runs for x in (run["loadavg_start"][0], run["loadavg_end"][0])]
    seconds = sum(run.get("seconds", 0) for run in runs)
    out = [
        BEGIN,
        "",
        f"**Latest run**: {dates[0] if dates else '?'} to {dates[-1] if dates else '?'} UTC,"
        f" commit {', '.join(f'`{c}`' for c in commits) or '?'}"
        f" (Python {platform.python_version()}, {os.cpu_count()} CPUs);"
        f" {len(runs)} benches, {seconds / 60:.1f} min of bench time;"
        f" 1-minute load average during the run {min(loads, default=0):.1f}-"
        f"{max(loads, default=0):.1f} (each bench's start → end in its row)."
        + (f" **No result** from: {', '.join(missing)}." if missing else ""),
        "",
    ]
    for title, file in chart_files:
        out += [f"![{title}]({file})", ""]
    out += [table(loaded), "", END]
    return "\n".join(out)


def splice(document: str, section: str) -> str:
    """``document`` with the text between the markers (inclusive) replaced."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ReportError(f"the markers are missing from the document: {BEGIN} … {END}")
    return document[:start] + section + document[end + len(END) :]


def render_chart(spec: dict[str, Any]) -> str:
    markers = [Marker(m["label"], m["value"]) for m in spec.get("markers", [])]
    if spec["kind"] == "cdf":
        curves = [Curve(c["label"], c["percentiles"]) for c in spec["curves"]]
        return cdf_chart(spec["title"], spec["unit"], curves, markers)
    if spec["kind"] == "bars":
        bars = [Bar(b["label"], b["value"], b.get("low"), b.get("high")) for b in spec["bars"]]
        return bar_chart(spec["title"], spec["unit"], bars, markers)
    raise ReportError(f"chart {spec.get('name')}: unknown kind {spec.get('kind')!r}")


def write_docs(loaded: dict[str, dict[str, Any] | None], doc_path: Path, chart_dir: Path) -> None:
    chart_files = []
    for doc in loaded.values():
        for spec in (doc or {}).get("charts", []):
            svg = chart_dir / f"{spec['name']}.svg"
            svg.parent.mkdir(parents=True, exist_ok=True)
            svg.write_text(render_chart(spec))
            chart_files.append((spec["title"], os.path.relpath(svg, doc_path.parent)))
    section = generated_section(loaded, chart_files)
    doc_path.write_text(splice(doc_path.read_text(), section))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--write-docs", action="store_true", help="charts + performance.md")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument("--charts", type=Path, default=REPO / "docs" / "perf")
    args = parser.parse_args(argv)
    scripts = sorted(p.stem for p in (REPO / "bench").glob("bench_*.py"))
    try:
        loaded = load_results(args.results, scripts)
        print(table(loaded))
        if args.write_docs:
            write_docs(loaded, args.doc, args.charts)
            print(f"report: wrote {args.doc} and the charts in {args.charts}", file=sys.stderr)
    except (ReportError, OSError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    return 0


# -- formatting ---------------------------------------------------------------------------


def _row(row: dict[str, Any]) -> str:
    unit = row.get("unit", "")
    value = _value(row.get("value"), unit)
    spread = row.get("spread")
    if spread:
        value += f" ({_number(spread[0])}-{_number(spread[-1])})"
    baseline = ""
    if row.get("baseline_value") is not None:
        baseline = f"{_value(row['baseline_value'], unit)}: {row.get('baseline') or ''}"
    elif row.get("baseline"):
        baseline = row["baseline"]
    ratio = f"{row['ratio']:.2f}" if row.get("ratio") is not None else ""
    cells = [row.get("label", row["name"]), value, baseline, ratio, row.get("goal") or "",
             MET[row.get("goal_met")]]  # fmt: skip
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _value(v: Any, unit: str) -> str:
    if v is None:
        return "n/a"
    return f"{_number(v)} {unit}".strip()


def _number(v: Any) -> str:
    if not isinstance(v, int | float):
        return str(v)
    size = abs(v)
    if size >= 1000:
        return f"{v:,.0f}"
    if size >= 100 or v == int(v):
        return f"{v:.0f}"
    if size >= 10:
        return f"{v:.1f}"
    if size >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _load(run: dict[str, Any]) -> str:
    try:
        return f"{run['loadavg_start'][0]:.1f}→{run['loadavg_end'][0]:.1f}"
    except (KeyError, IndexError, TypeError):
        return "?"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    raise SystemExit(main())
