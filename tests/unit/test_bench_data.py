"""bench/_bench_data.py: the store benches' data and query words do not depend on
Python's hash seed (a set's iteration order does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json
from bench._bench_data import generate, queries
bodies = [m.body for m in next(generate(50, chunk=50, step_ms=1000))]
print(json.dumps({"queries": queries(), "bodies": bodies}))
"""


def probe(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout


def test_query_words_and_messages_do_not_depend_on_the_hash_seed() -> None:
    assert probe("0") == probe("1") == probe("12345")
