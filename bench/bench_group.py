"""Group messages on a LAN of network namespaces: send → every online member, beside 1:1.

For each group size in ``--sizes`` (members, the sender included), that many real
p2pchat daemons, one per namespace. The sender (the group's admin) befriends every
other member and creates the group with all of them; then, ``--rounds`` times,
alternately:

* ``group``: ``send GROUP TEXT`` over the control socket (a new connection per call,
  as the CLI does) → the message event on the watch stream of EVERY other member;
  the round's figure is the slowest member's (the issue's "to all online members").
  The fan-out is one copy per member over the 1:1 sessions (docs/protocol.md,
  "Groups"), so it grows with the size.
* ``one_to_one`` (the baseline, same run, same namespaces, same daemons): ``send
  PEER TEXT`` to one member → the message event on that member's watch stream.

One message in flight. Prints ONE JSON object; goal (issue 12): the group's p99 to
all online members ≤ 3x the 1:1 p99 of the same run. Needs root (ip netns).
``python bench/bench_group.py [--sizes 3,5,10 --rounds 100 --size 100]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._figures import Goal, emit, figure  # noqa: E402
from bench.bench_lan import TIMEOUT, BenchNode, rtt_stats  # noqa: E402
from p2pchat.control.client import ControlClient  # noqa: E402
from tests.lan.chat_nodes import befriend  # noqa: E402
from tests.lan.netns import Lan  # noqa: E402

GROUP = "bench"
P99_GOAL = Goal(max_ratio=3.0)
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def joined(group_id: str) -> Any:
    return lambda e: (
        e.get("type") == "group_changed" and e["group_id"] == group_id and e["change"] == "joined"
    )


def measure(nodes: list[BenchNode], rounds: int, size: int, warmup: int) -> dict[str, Any]:
    sender, members = nodes[0], nodes[1:]
    client = ControlClient(sender.data_dir)
    text = "x" * size
    to_all: list[float] = []
    to_each: list[float] = []
    one: list[float] = []
    for i in range(warmup + rounds):
        t0 = time.monotonic()
        mid = client.call("send", peer=GROUP, text=text)["message_id"]
        arrivals = [m.wait_id(m.arrivals, mid) - t0 for m in members]
        t1 = time.monotonic()
        peer = members[i % len(members)]
        mid = client.call("send", peer=peer.peer_id, text=text)["message_id"]
        single = peer.wait_id(peer.arrivals, mid) - t1
        if i >= warmup:
            to_all.append(max(arrivals))
            to_each.extend(arrivals)
            one.append(single)
    return {
        "members": len(nodes),
        "group_to_all": rtt_stats(to_all),
        "group_to_each": rtt_stats(to_each),
        "one_to_one": rtt_stats(one),
    }


def run_size(count: int, rounds: int, size: int, warmup: int) -> dict[str, Any]:
    with Lan(count) as lan, tempfile.TemporaryDirectory() as tmp:
        nodes = [
            BenchNode(host, Path(tmp) / name, name)
            for host, name in zip(lan.hosts, NAMES, strict=False)
        ]
        for node in nodes:
            node.start()
        try:
            sender = nodes[0]
            for other in nodes[1:]:
                befriend(sender, other)
            made = sender.cli_json("group", "create", GROUP, *(n.peer_id for n in nodes[1:]))
            for other in nodes[1:]:
                other.wait_for(joined(made["group_id"]), timeout=TIMEOUT)
            result = measure(nodes, rounds, size, warmup)
            result["lan_setup_s"] = round(lan.setup_seconds, 2)
            return result
        finally:
            for node in nodes:
                node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--sizes", default="3,5,10", help="members per group, comma-separated")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--size", type=int, default=100, help="message characters")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not all(2 <= s <= len(NAMES) for s in sizes):
        parser.error(f"each size must be within 2..{len(NAMES)}")
    result: dict[str, Any] = {
        "benchmark": "group",
        "cpus": os.cpu_count(),
        "method": (
            "send to the group over a new control connection → message event on every other"
            " member's watch stream (slowest member); baseline: send to one member → its"
            " event, alternating in the same run; one message in flight"
        ),
        "goal": "group p99 to all online members " + P99_GOAL.text() + " (1:1 p99, same run)",
        "groups": [run_size(count, args.rounds, args.size, args.warmup) for count in sizes],
    }
    emit(result, figures(result["groups"]))


def figures(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for g in groups:
        n, to_all, one = g["members"], g["group_to_all"], g["one_to_one"]
        base = "1:1 send → event, same daemons, same run"
        rows += [
            figure(f"group.{n}.p50", f"group of {n}: send → all {n - 1} others (p50)",
                   to_all["p50_ms"], "ms", baseline=base, baseline_value=one["p50_ms"]),
            figure(f"group.{n}.p99", f"group of {n}: send → all {n - 1} others (p99)",
                   to_all["p99_ms"], "ms", baseline=base, baseline_value=one["p99_ms"],
                   goal=P99_GOAL),
        ]  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
