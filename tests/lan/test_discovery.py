"""LanDiscovery over real multicast between network namespaces.

Each peer is tests/lan/discovery_driver.py running inside its host's namespace (a
zeroconf instance binds to the namespace it is created in); it prints one JSON line
per event. Timeouts are generous: timing goals live in bench/bench_discovery.py.
"""

from __future__ import annotations

import json
import queue
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pchat.crypto.identity import Identity
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON, Host

pytestmark = pytest.mark.lan

DRIVER = str(Path(__file__).with_name("discovery_driver.py"))
TIMEOUT = 30.0

Event = dict[str, Any]


class Peer:
    """A discovery_driver process and the events it printed."""

    def __init__(self, host: Host, name: str, seed: str, port: int, *extra: str) -> None:
        self.host = host
        argv = [PYTHON, DRIVER, "--name", name, "--seed", seed, "--port", str(port), "--debug"]
        argv += extra
        self.proc = host.popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.events: list[Event] = []
        self._new: queue.Queue[Event | None] = queue.Queue()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        identity = Identity(bytes.fromhex(seed) * (32 // len(bytes.fromhex(seed))))
        self.peer_id = identity.peer_id
        self.public_key = identity.public_key.hex()
        self.port = port

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(json.loads(line))
        self._new.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def wait_for(self, what: str, predicate: Callable[[Event], bool] = lambda e: True) -> Event:
        """The first event (already seen or new) of kind ``what`` matching ``predicate``."""
        for event in self.events:
            if event["event"] == what and predicate(event):
                return event
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._new.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                raise AssertionError(f"driver exited: {b''.join(self._stderr).decode()}")
            self.events.append(event)
            if event["event"] == what and predicate(event):
                return event
        stderr = b"".join(self._stderr).decode(errors="replace")[-20000:]
        raise AssertionError(f"no {what!r} event in {TIMEOUT}s; saw {self.events}\n{stderr}")

    def last_advertised(self) -> str:
        return str([e for e in self.events if e["event"] == "advertised"][-1]["instance"])

    @property
    def instance(self) -> str:
        return str(self.wait_for("advertised")["instance"])

    def found(self, other: Peer) -> Event:
        instance = other.instance
        return self.wait_for("found", lambda e: e["instance"] == instance)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.send("stop")
        self.wait_for("stopped")
        self.proc.wait(TIMEOUT)


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        if peer.proc.poll() is None:
            peer.proc.kill()
            peer.proc.wait()


def start(peers: list[Peer], host: Host, name: str, seed: str, port: int, *extra: str) -> Peer:
    peer = Peer(host, name, seed, port, *extra)
    peers.append(peer)
    return peer


def test_two_hosts_discover_each_other(make_lan: MakeLan, peers: list[Peer]) -> None:
    h1, h2 = make_lan(2).hosts
    alice = start(peers, h1, "alice", "01", 4001)
    bob = start(peers, h2, "Bob the 🐸", "02", 4002)
    assert alice.instance == f"alice ({alice.peer_id[:4]})"
    for me, other, host in ((alice, bob, h2), (bob, alice, h1)):
        seen = me.found(other)
        assert seen["peer_id"] == other.peer_id
        assert seen["public_key"] == other.public_key
        assert seen["port"] == other.port
        assert seen["name"] == ("Bob the 🐸" if other is bob else "alice")
        assert seen["addresses"][0] == host.ip
        assert host.ipv6_link_local is not None
        v6 = [a for a in seen["addresses"] if a.startswith(host.ipv6_link_local + "%")]
        assert len(v6) == 1, seen["addresses"]
    for me in (alice, bob):  # nobody reports itself
        assert not [
            e for e in me.events if e.get("instance") == me.instance and e["event"] == "found"
        ]


def test_three_hosts(make_lan: MakeLan, peers: list[Peer]) -> None:
    hosts = make_lan(3).hosts
    nodes = [start(peers, h, f"n{i}", f"0{i + 1}", 4000 + i) for i, h in enumerate(hosts)]
    for me in nodes:
        for other in nodes:
            if other is not me:
                assert me.found(other)["peer_id"] == other.peer_id


@pytest.mark.parametrize("together", [True, False], ids=["together", "one-after-other"])
def test_name_conflict_gives_distinct_names(
    make_lan: MakeLan, peers: list[Peer], together: bool
) -> None:
    # Same display name and same key (one profile started on two machines): the
    # instance names collide, so one of them must rename.
    h1, h2 = make_lan(2).hosts
    first = start(peers, h1, "carol", "03", 4001)
    if not together:
        first.wait_for("advertised")
    second = start(peers, h2, "carol", "03", 4002)
    # Both settle on distinct names and see each other under them.
    second_seen_by_first = first.wait_for("found", lambda e: e["port"] == 4002)
    first_seen_by_second = second.wait_for("found", lambda e: e["port"] == 4001)
    assert second_seen_by_first["instance"] != first_seen_by_second["instance"]
    names = {first_seen_by_second["instance"], second_seen_by_first["instance"]}
    assert names == {"carol (" + first.peer_id[:4] + ")", "carol (" + first.peer_id[:4] + ") (2)"}
    # ... and those are the names they advertise.
    first.wait_for("advertised", lambda e: e["instance"] == first_seen_by_second["instance"])
    second.wait_for("advertised", lambda e: e["instance"] == second_seen_by_first["instance"])
    assert first.last_advertised() == first_seen_by_second["instance"]
    assert second.last_advertised() == second_seen_by_first["instance"]


def test_peer_lost_after_goodbye(make_lan: MakeLan, peers: list[Peer]) -> None:
    h1, h2 = make_lan(2).hosts
    alice = start(peers, h1, "alice", "01", 4001)
    bob = start(peers, h2, "bob", "02", 4002)
    bob.found(alice)
    alice.stop()
    lost = bob.wait_for("lost")
    assert lost["instance"] == alice.instance
    assert lost["peer_id"] == alice.peer_id


def test_peer_lost_after_link_cut_and_found_again(make_lan: MakeLan, peers: list[Peer]) -> None:
    # mDNS caches would keep a silent peer for 75 min; LanDiscovery re-queries known
    # peers (every --liveness seconds here) and loses those that stop answering.
    h1, h2 = make_lan(2).hosts
    alice = start(peers, h1, "alice", "01", 4001)
    bob = start(peers, h2, "bob", "02", 4002, "--liveness", "1")
    bob.found(alice)
    h1.link_down()
    lost = bob.wait_for("lost")
    assert lost["peer_id"] == alice.peer_id
    h1.link_up()
    found = [e for e in bob.events if e["event"] == "found"]
    again = bob.wait_for("found", lambda e: e not in found)
    assert again["peer_id"] == alice.peer_id


def test_refresh_after_link_cut(make_lan: MakeLan, peers: list[Peer]) -> None:
    h1, h2 = make_lan(2).hosts
    alice = start(peers, h1, "alice", "01", 4001)
    bob = start(peers, h2, "bob", "02", 4002)
    bob.found(alice)
    bob.send("refresh")  # alice answers: nothing changes
    bob.wait_for("refreshed")
    assert not [e for e in bob.events if e["event"] == "lost"]
    h1.link_down()
    bob.send("refresh")
    assert bob.wait_for("lost")["peer_id"] == alice.peer_id
    h1.link_up()
    bob.send("refresh")
    assert bob.wait_for("found", lambda e: e["t"] > bob.wait_for("lost")["t"])


def test_two_nodes_on_one_address_keep_every_peer_across_refreshes(
    make_lan: MakeLan, peers: list[Peer]
) -> None:
    """Two profiles on one machine share its address and port 5353; a unicast mDNS
    answer reaches only one of their sockets, so refreshes must ask for multicast
    answers, or one node loses its peers at the next refresh (issue 10, part 6)."""
    h1, h2 = make_lan(2).hosts
    alice = start(peers, h1, "alice", "01", 4001)
    carol = start(peers, h1, "carol", "03", 4003)  # same namespace, same address
    bob = start(peers, h2, "bob", "02", 4002)
    everyone = [alice, carol, bob]
    for peer in everyone:
        for other in everyone:
            if other is not peer:
                peer.found(other)
    for _ in range(3):
        for peer in everyone:
            peer.send("refresh")
        for peer in everyone:
            peer.wait_for("refreshed")
            peer.events = [e for e in peer.events if e["event"] != "refreshed"]
    for peer in everyone:
        lost = [e for e in peer.events if e["event"] == "lost"]
        assert not lost, (peer.instance, lost)


def test_interface_restriction(make_lan: MakeLan, peers: list[Peer]) -> None:
    h1, h2 = make_lan(2).hosts
    # A second interface on host 1 that no other host can reach: a veth pair whose
    # other end (side1) is left unused.
    for command in (
        "link add side0 type veth peer name side1",
        "addr add 10.99.0.1/24 dev side0",
        "link set side1 up",
        "link set side0 up",
    ):
        h1.run(["ip", *command.split()], check=True)
    on_eth0 = start(peers, h1, "eth0-only", "01", 4001, "--interface", "eth0")
    on_side = start(peers, h1, "side-only", "03", 4003, "--interface", "side0")
    bob = start(peers, h2, "bob", "02", 4002)
    seen = bob.found(on_eth0)
    assert "10.99.0.1" not in seen["addresses"]
    assert seen["addresses"][0] == h1.ip
    on_side.wait_for("advertised")
    bob.send("refresh")  # every peer bob can reach answers this
    bob.wait_for("refreshed")
    assert not [e for e in bob.events if e.get("instance") == on_side.instance]
    assert not [e for e in on_side.events if e["event"] == "found"]


BAD_ADVERT = textwrap.dedent(
    """
    import sys
    from zeroconf import ServiceInfo, Zeroconf

    ip = sys.argv[1]
    zc = Zeroconf(interfaces=[ip])
    for label, txt in [
        ("no key", {"v": "1", "id": "abcd-efgh-ijkl-mnop", "name": "x"}),
        ("wrong id", {"v": "1", "id": "abcd-efgh-ijkl-mnop", "pk": "A" * 43, "name": "x"}),
        ("binary", b"\\x05v=1\\xff\\x03\\x00id"),
    ]:
        zc.register_service(ServiceInfo(
            "_p2pchat._tcp.local.", f"{label}._p2pchat._tcp.local.", port=1,
            properties=txt, server="bad.local.", parsed_addresses=[ip],
        ))
    print("registered", flush=True)
    sys.stdin.read()
    zc.close()
    """
)


def test_malformed_adverts_are_dropped_and_peers_capped(
    make_lan: MakeLan, peers: list[Peer]
) -> None:
    h1, h2, h3 = make_lan(3).hosts
    bad = h1.python(BAD_ADVERT, h1.ip, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bad.stdout is not None
    assert bad.stdout.readline() == b"registered\n"
    alice = start(peers, h2, "alice", "01", 4001)
    alice.wait_for("advertised")
    bob = start(peers, h3, "bob", "02", 4002)
    bob.found(alice)
    bob.send("refresh")  # by now every advert on the LAN has answered
    bob.wait_for("refreshed")
    bob.send("stats")
    stats = bob.wait_for("stats")
    assert stats["malformed"] == 3, stats
    assert stats["peers"] == [alice.instance]
    bob.stop()
    # With room for one peer: one good peer is kept; adverts beyond the cap are ignored
    # and counted (or dropped as malformed if they were decoded before it was reached).
    capped = start(peers, h3, "bob", "02", 4002, "--max-peers", "1")
    capped.wait_for("found")
    capped.send("refresh")
    capped.wait_for("refreshed")
    capped.send("stats")
    stats = capped.wait_for("stats")
    assert len(stats["peers"]) == 1, stats
    assert stats["malformed"] + stats["over_capacity"] >= 3, stats
    assert bad.stdin is not None
    bad.stdin.close()
    bad.wait(TIMEOUT)


def test_unknown_interface_is_an_error(make_lan: MakeLan, peers: list[Peer]) -> None:
    (h1,) = make_lan(1).hosts
    peer = start(peers, h1, "x", "01", 4001, "--interface", "nosuch0")
    assert peer.proc.wait(TIMEOUT) != 0
    peer._stderr_reader.join(TIMEOUT)
    assert b"no network interface named 'nosuch0'" in b"".join(peer._stderr)
