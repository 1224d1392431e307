"""How fast LanDiscovery finds a peer, over real multicast between network namespaces.

Prints ONE JSON object:

* ``already_running_ms``: a node starts (browser and advert) while the peer has been
  registered for a while; time from its start to its ``PeerFound``.
* ``newly_started_ms``: a node has been running; a peer starts; time from the peer's
  start to the node's ``PeerFound`` (dominated by the peer's probing).
* ``registration_ms``: the peer's start to its advert being on the LAN.

Each is the median (and min/max) over ``--runs`` runs. Times come from the drivers'
CLOCK_MONOTONIC stamps (shared by all namespaces), so process start-up is not counted.

Baseline (RFC 6762): the first browse query waits 20-120 ms (section 5.2); probing
waits 0-250 ms, sends 3 probes 250 ms apart and waits 250 ms more (section 8.1), so
0.75-1.0 s, median 0.875 s, is the floor for a newly started peer. zeroconf's own
probing (500 ms apart) takes ~1.15-1.25 s.

Needs root (ip netns). Usage: ``python bench/bench_discovery.py [--runs 7]``.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._figures import Goal, emit, figure  # noqa: E402
from tests.lan.netns import PYTHON, Host, Lan  # noqa: E402

DRIVER = str(REPO / "tests" / "lan" / "discovery_driver.py")
TIMEOUT = 30.0


class Driver:
    def __init__(self, host: Host, name: str, seed: str, port: int) -> None:
        self.proc = host.popen(
            [PYTHON, DRIVER, "--name", name, "--seed", seed, "--port", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait(self, kind: str, **match: Any) -> dict[str, Any]:
        for event in self.seen:
            if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            self.seen.append(event)
            if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        self.proc.stdin.flush()
        self.proc.wait(TIMEOUT)


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "median": round(statistics.median(ms), 1),
        "min": round(min(ms), 1),
        "max": round(max(ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    already: list[float] = []
    newly: list[float] = []
    registration: list[float] = []
    with Lan(2) as lan:
        h1, h2 = lan.hosts
        # (a) the peer runs; a node starts and finds it.
        peer = Driver(h1, "peer", "01", 4001)
        instance = peer.wait("advertised")["instance"]
        time.sleep(1.0)  # past its announcements: it is "already running"
        for i in range(args.runs):
            node = Driver(h2, "node", f"{0x10 + i:02x}", 4002)
            start = node.wait("starting")["t"]
            found = node.wait("found", instance=instance)["t"]
            already.append(found - start)
            node.stop()
        peer.stop()

        # (b) the node runs; a peer starts and is found.
        node = Driver(h2, "node", "02", 4002)
        node.wait("advertised")
        for i in range(args.runs):
            peer = Driver(h1, "peer", f"{0x40 + i:02x}", 4001)
            start = peer.wait("starting")["t"]
            name = peer.wait("advertised")["instance"]
            registration.append(peer.wait("advertised")["t"] - start)
            found = node.wait("found", instance=name)["t"]
            newly.append(found - start)
            peer.stop()
            node.wait("lost", instance=name)
        node.stop()

    result = {
        "bench": "discovery",
        "runs": args.runs,
        "already_running_ms": summary(already),
        "newly_started_ms": summary(newly),
        "registration_ms": summary(registration),
        "baseline": {
            "already_running_ms": "20-120 (RFC 6762 5.2 first-query delay)",
            "newly_started_ms": "750-1000, median 875 (RFC 6762 8.1 probing floor)",
            "zeroconf_default_probing_ms": "~1150-1250",
        },
    }
    emit(result, figures(result))


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    def row(key: str, label: str, baseline: str, value: float, goal: Goal) -> dict[str, Any]:
        s = result[key]
        return figure(
            f"discovery.{key.removesuffix('_ms')}", label, s["median"], "ms",
            baseline=baseline, baseline_value=value, goal=goal,
            spread=[s["min"], s["median"], s["max"]],
        )  # fmt: skip

    floor = "RFC 6762 probing floor, median (8.1: 750-1000 ms)"
    return [
        row("already_running_ms", "mDNS: node starts, peer already there → PeerFound",
            "RFC 6762 first-query delay, upper end (5.2: 20-120 ms)", 120,
            Goal(max_value=300, unit="ms")),
        row("newly_started_ms", "mDNS: peer starts → node's PeerFound", floor, 875,
            Goal(max_value=1800, unit="ms")),
        row("registration_ms", "mDNS: peer's start → its advert on the LAN", floor, 875,
            Goal(max_value=1800, unit="ms")),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
