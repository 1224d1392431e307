"""`p2pchat --help`, beside `python -c pass`, measured in the same run.

Prints ONE JSON object. Each run is a fresh process (cold imports, as a user's
command is), timed from spawn to exit; the two commands alternate so that a burst
of load on the machine hits both. ``p2pchat`` is run as its console script does
(``from p2pchat.cli import main``) with this tree first on ``sys.path``.

    .venv/bin/python bench/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._figures import Goal, emit, figure  # noqa: E402

HELP = [
    sys.executable,
    "-c",
    "import sys; from p2pchat.cli import main; sys.exit(main())",
    "--help",
]
BARE = [sys.executable, "-c", "pass"]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "runs": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    timed(HELP)  # warm the OS file cache once
    ours, bare = [], []
    for _ in range(args.runs):
        ours.append(timed(HELP))
        bare.append(timed(BARE))
    first, base = summary(ours), summary(bare)
    result = {
        "benchmark": "cli",
        "p2pchat_help": first,
        "baseline_python_pass": base,
        "ratio_p50": round(first["p50_ms"] / base["p50_ms"], 2),
        "method": "fresh process each run, spawn → exit, the two commands alternating",
    }
    emit(
        result,
        [
            figure(
                "cli.help",
                "`p2pchat --help`: spawn → exit (p50)",
                first["p50_ms"],
                "ms",
                baseline="`python -c pass`, same run",
                baseline_value=base["p50_ms"],
                goal=Goal(max_ratio=2.0),
                spread=[first["min_ms"], first["p50_ms"], first["max_ms"]],
            )
        ],
    )


if __name__ == "__main__":
    main()
