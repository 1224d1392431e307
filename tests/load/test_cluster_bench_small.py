"""bench/bench_cluster.py at CI size (``--quick``): it runs and prints one JSON object of
the documented shape, every idle socket stayed open and every round trip came back.

Correctness only, never timing: the figures come from a full run of the bench.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
IDLE_KEYS = {
    "sockets", "rooms", "alive_after_1s", "rss_before_kib", "rss_after_kib",
    "kib_per_socket", "sockets_per_gib",
}  # fmt: skip
RTT_KEYS = {"round_trips", "frame_bytes", "p50", "p99", "max"}


def test_quick_cluster_bench_prints_one_object_of_the_documented_shape() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_cluster.py"), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout[-3000:]  # ONE JSON object, as every bench
    result = json.loads(lines[0])
    assert result["benchmark"] == "cluster"
    for key in ("idle_sockets", "relay_rtt_ms", "figures", "run"):
        assert key in result, key
    idle = result["idle_sockets"]
    assert set(idle) == {"signaling", "plain_aiohttp"}
    for kind, row in idle.items():
        assert set(row) == IDLE_KEYS, kind
        assert row["sockets"] == row["alive_after_1s"] == 200, (kind, row)
    assert idle["signaling"]["rooms"] == 25  # 8 guests a room, the default cap
    rtt = result["relay_rtt_ms"]
    assert set(rtt) == {"same_instance", "plain_echo"}
    for name, column in rtt.items():
        assert set(column) == RTT_KEYS, name
        assert column["round_trips"] == 200, name
        assert 0 < column["p50"] <= column["p99"] <= column["max"], (name, column)
    names = {row["name"] for row in result["figures"]}
    assert {
        "cluster.idle_kib_per_socket", "cluster.idle_sockets_per_gib",
        "cluster.relay_rtt_same_instance_p50", "cluster.relay_rtt_same_instance_p99",
    } <= names  # fmt: skip
    assert set(result["run"]) >= {"loadavg_start", "loadavg_end", "commit"}
