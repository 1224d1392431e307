"""bench/bench_files.py at CI size (``--quick``): it runs, and every transfer arrived whole.

Correctness only, never timing: the figures come from a full run of the bench. Each
kind of transfer (plain TCP, raw aiortc, p2pchat's DataChannelLink, the daemons'
``send-file``) must have moved every byte; the daemons' part must be measured
whenever this tree has ``send-file``, with its chat part (message RTT idle and during
a transfer on the direct and the data-channel path: each path the one it names).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_netns

pytestmark = pytest.mark.lan

REPO = Path(__file__).resolve().parent.parent.parent
BASELINES = ("tcp", "raw_aiortc", "p2pchat_transport")


def test_quick_files_bench_moves_every_byte() -> None:
    require_netns()
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_files.py"), "--quick"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout[-3000:]  # ONE JSON object, as every bench
    result = json.loads(lines[0])
    seed = result["seed"]
    for key in ("benchmark", "seed", "sizes", "transfers", "figures", "run", "p2pchat_measured"):
        assert key in result, f"no {key!r} (seed {seed})"
    assert result["benchmark"] == "files"
    has_send_file = importlib.util.find_spec("p2pchat.commands.file_cmds") is not None
    assert result["p2pchat_measured"] == has_send_file, result["p2pchat_note"]
    assert set(result["transfers"]) == set(result["sizes"])
    for label, transfer in result["transfers"].items():
        kinds = BASELINES + (("p2pchat",) if has_send_file else ())
        for kind in kinds:
            measured = transfer[kind]
            assert measured["measured"], (label, kind, seed)
            assert measured["runs"], (label, kind, seed)
            assert measured["all_bytes_ok"], (label, kind, seed, measured["runs"])
            assert all(run["bytes_ok"] for run in measured["runs"]), (label, kind, seed)
            assert measured["mb_per_s"] > 0
        assert "ratios" in transfer
    names = [f["name"] for f in result["figures"]]
    assert len(names) == len(set(names))  # report.py keys rows by name
    if has_send_file:
        check_chat_part(result["chat"], names, seed)


def check_chat_part(chat: dict[str, Any], names: list[str], seed: int) -> None:
    """The chat RTT idle and during a transfer on each path: measured, the file whole,
    each path the one it names. How many messages count during a transfer (sent before
    it ended) depends on the machine's speed: any number from 0 is correct."""
    assert chat["idle"]["rounds"] == chat["messages_at_most"], seed
    for case in ("direct", "datachannel"):
        during = chat[case]
        assert during["bytes_ok"], (case, seed, during)
        assert during["path_used"] == case, (case, seed, during)
        assert during["path_ok"], (case, seed)
        assert 0 <= during["counted"] <= chat["messages_at_most"], (case, seed)
        assert during["rtt"]["rounds"] == during["counted"], (case, seed)
        for q in ("p50", "p99"):
            assert f"files.chat.{case}_{q}" in names, (case, q)
