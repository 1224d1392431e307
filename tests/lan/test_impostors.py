"""Impostors (issue 9, findings 1 and 2): hosts that claim a contact's name with other
keys, by mDNS advert and by contact request, as fast as they can; and one mDNS
instance that keeps changing its key.

The node must refuse every one of them, fold them into one warning per contact (a
count, the latest key and address), keep its LAN view at one entry per instance,
tell a stranger nothing about which names are its contacts, and carry on: alive,
bounded memory, a real conversation afterwards, a new ``watch`` that works.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lan.abuse_tools import REPO_ROOT, WatchedNode, record
from tests.lan.chat_nodes import PYTHON, befriend, cli_env
from tests.lan.conftest import MakeLan
from tests.lan.netns import Host
from tests.lan.test_abuse import converse, held_up

pytestmark = pytest.mark.lan

_LAUNCH = "import sys; from tests.lan.impostor_tools import main; main(sys.argv[1:])"
#: What the node promises (p2pchat/node/key_warnings.py): a warning's updates at most this often.
UPDATE_INTERVAL_S = 5.0


@pytest.fixture
def trio(make_lan: MakeLan, tmp_path: Path) -> Iterator[tuple[WatchedNode, WatchedNode, Host]]:
    lan = make_lan(3)
    alice = WatchedNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = WatchedNode(lan.hosts[1], tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    befriend(alice, bob)
    yield alice, bob, lan.hosts[2]
    alice.stop()
    bob.stop()


def impostor(host: Host, *args: object, timeout: float = 120.0) -> dict[str, Any]:
    proc = host.python(
        _LAUNCH, *map(str, args), cwd=str(REPO_ROOT),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()[-3000:]
    doc: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    return doc


def new_watcher_sees(node: WatchedNode, peer_id: str) -> bool:
    """A ``watch --json`` started now gets the present state (alice on the LAN) at once,
    not an error: its snapshot fits its queue."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "p2pchat", "--data-dir", str(node.data_dir), "watch", "--json"],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    give_up = threading.Timer(30, proc.terminate)
    give_up.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            event = json.loads(raw)
            if event.get("type") == "peer_found" and event["peer_id"] == peer_id:
                return True
        return False
    finally:
        give_up.cancel()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        assert b"error" not in err, err.decode()


def key_warnings(node: WatchedNode, about: str) -> list[dict[str, Any]]:
    with node._cond:
        return [e for e in node.events if e.get("type") == "key_warning" and e["peer_id"] == about]


def wait_until_quiet(node: WatchedNode, about: str, quiet_s: float) -> list[dict[str, Any]]:
    """Key warnings about ``about`` once no new one came for ``quiet_s`` (after the
    attack, the node reports what it folded in within one update interval)."""
    seen, since = -1, time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = len(key_warnings(node, about))
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            break
        time.sleep(0.5)
    return key_warnings(node, about)


def test_a_flood_of_impostors_folds_into_one_warning(
    trio: tuple[WatchedNode, WatchedNode, Host],
) -> None:
    alice, bob, mallory = trio
    status = bob.cli_json("status")
    rss_before = bob.rss_kb()
    # Four addresses on mallory's one interface, as four hosts behind one switch port.
    sources = [mallory.ip] + [f"{mallory.ip.rsplit('.', 1)[0]}.{100 + i}" for i in range(1, 4)]
    for extra in sources[1:]:
        mallory.run(["ip", "addr", "add", f"{extra}/24", "dev", mallory.ifname], check=True)

    start = time.monotonic()
    adverts = impostor(mallory, "adverts", mallory.ip, "alice", 300, status["port"])
    url = f"http://{bob.host.ip}:{status['port']}/v1/envelope"
    requests = impostor(
        mallory, "requests", url, bob.public_key_b64(), "alice", 160, ",".join(sources)
    )
    attack_s = time.monotonic() - start
    warnings = wait_until_quiet(bob, alice.peer_id, quiet_s=UPDATE_INTERVAL_S + 3)

    # Refused, all of them: alice's pinned key is the only "alice", no request is pending.
    contacts = bob.cli_json("contacts")
    assert [(c["name"], c["peer_id"]) for c in contacts] == [("alice", alice.peer_id)]
    assert bob.cli_json("requests") == []
    # A request under a contact's name gets the answer any request gets: no 403 that
    # would tell mallory "alice" is one of bob's contacts.
    assert set(requests["statuses"]) <= {"202", "429"}, requests
    assert requests["statuses"].get("202", 0) > 0, requests
    assert not [r for r in requests["reasons"] if "contacts" in r], requests["reasons"]
    # One warning, updated: the first at once, then at most one update per interval.
    assert warnings, "no key warning at all"
    counts = [w["count"] for w in warnings]
    assert counts == sorted(counts), counts
    assert counts[0] == 1, counts
    attempts = counts[-1]
    reached = requests["statuses"].get("202", 0)
    assert attempts >= max(reached, 2), (attempts, reached)  # requests that got in, and adverts
    elapsed = time.monotonic() - start
    assert len(warnings) <= 2 + elapsed / UPDATE_INTERVAL_S, (len(warnings), elapsed)
    assert {w["source"] for w in warnings} <= {"advert", "contact_request"}
    assert warnings[-1]["address"] in sources, warnings[-1]
    assert all(w["pinned_fingerprint"] == warnings[0]["pinned_fingerprint"] for w in warnings)

    # bob carries on: peers list bounded, a watcher that starts now works, chat works.
    peers = bob.cli_json("peers")
    assert len(peers) <= 256, len(peers)
    assert [p for p in peers if p["name"] == "alice"] == [
        p for p in peers if p["peer_id"] == alice.peer_id
    ]
    assert new_watcher_sees(bob, alice.peer_id)
    figures: dict[str, Any] = {
        "adverts": adverts, "requests": requests, "attack_s": round(attack_s, 2),
        "warning_events": len(warnings), "attempts_counted": attempts,
    }  # fmt: skip
    figures["message_both_ways_s"] = converse(alice, bob, "after impostors")
    figures.update(held_up(bob, rss_before))
    record("impostors", figures)


def test_an_advert_that_keeps_changing_its_key_holds_one_place(
    trio: tuple[WatchedNode, WatchedNode, Host],
) -> None:
    alice, bob, mallory = trio
    status = bob.cli_json("status")
    rss_before = bob.rss_kb()
    keys = 3000
    adverts = impostor(mallory, "adverts", mallory.ip, "carol", keys, status["port"], "carol")
    # Let discovery take in what arrived, then look: mallory's one instance holds at
    # most one place, whichever key it advertised last.
    most = 0
    for _ in range(10):
        time.sleep(1)
        peers = bob.cli_json("peers")
        carols = [p for p in peers if p["name"] == "carol"]
        most = max(most, len(carols))
        assert len(carols) <= 1, len(carols)
    assert alice.peer_id in [p["peer_id"] for p in peers]
    assert new_watcher_sees(bob, alice.peer_id)
    figures: dict[str, Any] = {"adverts": adverts, "carol_entries_most": most}
    figures["message_both_ways_s"] = converse(alice, bob, "after key cycling")
    figures.update(held_up(bob, rss_before))
    record("key_cycling_advert", figures)
