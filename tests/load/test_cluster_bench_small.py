"""bench/bench_cluster.py at CI size (``--quick``): it runs and prints one JSON object of
the documented shape, every idle socket stayed open and every round trip came back.

Correctness only, never timing: the figures come from a full run of the bench.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_command

REPO = Path(__file__).resolve().parent.parent.parent
IDLE_KEYS = {
    "sockets", "rooms", "alive_after_1s", "rss_before_kib", "rss_after_kib",
    "kib_per_socket", "sockets_per_gib",
}  # fmt: skip
RTT_KEYS = {"round_trips", "frame_bytes", "p50", "p99", "max"}
CLUSTER_KEYS = {
    "instances", "sockets", "sockets_per_instance", "rooms", "alive_after_1s",
    "rss_before_kib", "rss_after_kib", "kib_per_socket", "sockets_per_gib",
}  # fmt: skip
PROCESSES = {"instance_1", "instance_2", "instance_3", "redis"}


def test_quick_cluster_bench_prints_one_object_of_the_documented_shape() -> None:
    require_command("redis-server")  # the 3-instance parts run a real one
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_cluster.py"), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout[-3000:]  # ONE JSON object, as every bench
    result = json.loads(lines[0])
    assert result["benchmark"] == "cluster"
    for key in (
        "idle_sockets", "idle_sockets_per_gib", "relay_rtt_ms", "reconnect_after_kill_ms",
        "first_message_ms", "figures", "run",
    ):  # fmt: skip
        assert key in result, key
    idle = result["idle_sockets"]
    assert set(idle) == {"signaling", "plain_aiohttp"}
    for kind, row in idle.items():
        assert set(row) == IDLE_KEYS, kind
        assert row["sockets"] == row["alive_after_1s"] == 200, (kind, row)
    assert idle["signaling"]["rooms"] == 25  # 8 guests a room, the default cap
    per_gib = result["idle_sockets_per_gib"]
    assert set(per_gib) == {"one_instance", "three_instances_and_redis", "plain_aiohttp", "cluster"}
    cluster = per_gib["cluster"]
    assert set(cluster) == CLUSTER_KEYS
    assert cluster["instances"] == 3
    assert cluster["sockets"] == cluster["alive_after_1s"] == sum(cluster["sockets_per_instance"])
    assert cluster["sockets"] == 300  # 3 x 100 with --quick
    assert set(cluster["rss_before_kib"]) == set(cluster["rss_after_kib"]) == PROCESSES
    assert per_gib["three_instances_and_redis"] == cluster["sockets_per_gib"]
    rtt = result["relay_rtt_ms"]
    assert set(rtt) == {"same_instance", "cluster_same_instance", "cross_instance", "plain_echo"}
    for name, column in rtt.items():
        assert set(column) == RTT_KEYS, name
        assert column["round_trips"] == 200, name
        assert 0 < column["p50"] <= column["p99"] <= column["max"], (name, column)
    reconnect = result["reconnect_after_kill_ms"]
    assert reconnect["runs"] == len(reconnect["samples"]) == 2
    assert reconnect["min_ms"] <= reconnect["median_ms"] <= reconnect["max_ms"]
    for sample in reconnect["samples"]:
        assert 0 < sample["kill_to_noticed_ms"] <= sample["kill_to_delivered_ms"], sample
    assert set(result["first_message_ms"]) == {"skipped"}  # --quick never starts Chromium
    names = {row["name"] for row in result["figures"]}
    assert {
        "cluster.idle_kib_per_socket", "cluster.idle_sockets_per_gib",
        "cluster.idle_sockets_per_gib_3_instances",
        "cluster.relay_rtt_same_instance_p50", "cluster.relay_rtt_same_instance_p99",
        "cluster.relay_rtt_cross_instance_p50", "cluster.relay_rtt_cross_instance_p99",
        "cluster.relay_rtt_cross_vs_same_p99", "cluster.reconnect_after_kill",
        "cluster.first_message_turn",
    } <= names  # fmt: skip
    assert set(result["run"]) >= {"loadavg_start", "loadavg_end", "commit"}
