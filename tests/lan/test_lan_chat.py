"""Real nodes on a real (namespaced) LAN: discovery, contacts, messages, faults.

Every node is a ``p2pchat daemon`` process in its own network namespace, driven
through the CLI and watched through ``p2pchat watch --json``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lan.chat_nodes import ChatNode, befriend, cli_env
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON

pytestmark = pytest.mark.lan


def texts(events: list[dict[str, object]]) -> list[object]:
    return [e["text"] for e in events]


@pytest.fixture
def pair(make_lan: MakeLan, tmp_path: Path) -> Iterator[tuple[ChatNode, ChatNode]]:
    lan = make_lan(2)
    alice = ChatNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = ChatNode(lan.hosts[1], tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    yield alice, bob
    alice.stop()
    bob.stop()


def test_discover_befriend_and_chat_both_ways(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, bob = pair
    befriend(alice, bob)
    peers = alice.cli_json("peers")
    assert [p["peer_id"] for p in peers] == [bob.peer_id]
    assert peers[0]["contact"] == "accepted"
    assert bob.cli_json("contacts")[0]["peer_id"] == alice.peer_id

    alice.cli("send", "bob", "hello bob", check=True)
    bob.cli("send", alice.peer_id[:9], "hi alice", check=True)
    assert texts(bob.wait_messages(1)) == ["hello bob"]
    assert texts(alice.wait_messages(1)) == ["hi alice"]
    alice.wait_for(lambda e: e.get("type") == "receipt")
    history = alice.cli_json("history", "bob")
    assert [m["text"] for m in history] == ["hello bob", "hi alice"]


def test_unknown_peer_is_a_clear_error(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, _ = pair
    result = alice.cli("send", "nobody", "hello")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_link_cut_during_200_messages(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, bob = pair
    befriend(alice, bob)
    alice.host.link_down()
    sent = [f"cli {i}" for i in range(3)]
    for body in sent:
        alice.cli("send", "bob", body, check=True)
    sent += send_many(alice, "bob", [f"m{i:03d}" for i in range(100)])
    time.sleep(8)  # long enough for the session to notice the cut and close
    sent += send_many(alice, "bob", [f"n{i:03d}" for i in range(97)])
    alice.host.link_up()
    got = texts(bob.wait_messages(len(sent), timeout=180))
    assert got == sent  # all 200, each once, in order


def test_outbox_survives_sigkill(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, bob = pair
    befriend(alice, bob)
    bob.kill()
    alice.wait_for(lambda e: e.get("type") == "session" and e["state"] == "closed", timeout=60)
    sent = send_many(alice, "bob", [f"queued {i}" for i in range(20)])
    alice.kill()
    alice.start()
    bob.start()
    # Delivery may beat bob's `watch` to the start line: read his profile instead.
    assert texts(bob.wait_history("alice", len(sent))) == sent


def test_packet_loss_25_percent(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, bob = pair
    befriend(alice, bob)
    alice.host.drop_udp(25)
    bob.host.drop_udp(25)
    sent_a = send_many(alice, "bob", [f"a{i}" for i in range(50)])
    sent_b = send_many(bob, "alice", [f"b{i}" for i in range(50)])
    assert texts(bob.wait_messages(50, timeout=180)) == sent_a
    assert texts(alice.wait_messages(50, timeout=180)) == sent_b


def test_spoofed_contact_gets_a_key_warning(make_lan: MakeLan, tmp_path: Path) -> None:
    lan = make_lan(3)
    alice = ChatNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = ChatNode(lan.hosts[1], tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    befriend(alice, bob)
    bob.stop()
    # Mallory advertises bob's name and peer id with her own key.
    mallory = lan.hosts[2].python(SPOOF_SCRIPT, bob.peer_id, "bob")
    try:
        warning = alice.wait_for(lambda e: e.get("type") == "key_warning", timeout=60)
        assert warning["peer_id"] == bob.peer_id
        assert warning["pinned_fingerprint"] != warning["advertised_fingerprint"]
        peers = alice.cli_json("peers")
        assert all(p.get("session") != "open" for p in peers)
        assert not any(
            e.get("type") == "session" and e["state"] == "open"
            for e in alice.events[alice.events.index(warning) :]
        )
    finally:
        mallory.kill()
        alice.stop()


def send_many(node: ChatNode, peer: str, bodies: list[str]) -> list[str]:
    """Send through the control socket, as `p2pchat send` does, without a process each."""
    from p2pchat.control.client import ControlClient

    client = ControlClient(node.data_dir)
    for body in bodies:
        client.call("send", peer=peer, text=body)
    return bodies


SPOOF_SCRIPT = r"""
import asyncio, sys
from nacl.signing import SigningKey
from p2pchat.discovery.mdns import LanDiscovery
from p2pchat.discovery.txt import PeerAdvert

async def main():
    key = bytes(SigningKey.generate().verify_key)
    advert = PeerAdvert(version=1, peer_id=sys.argv[1], public_key=key, name=sys.argv[2])
    disc = LanDiscovery(advert, 4242, lambda e: None, peer_id_of=None)
    await disc.async_start()
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_three_nodes_chat_in_a_triangle(make_lan: MakeLan, tmp_path: Path) -> None:
    lan = make_lan(3)
    nodes = [
        ChatNode(host, tmp_path / name, name)
        for host, name in zip(lan.hosts, ("alice", "bob", "carol"), strict=True)
    ]
    for node in nodes:
        node.start()
    try:
        alice, bob, carol = nodes
        befriend(alice, bob)
        befriend(bob, carol)
        befriend(carol, alice)
        alice.cli("send", "bob", "a→b", check=True)
        bob.cli("send", "carol", "b→c", check=True)
        carol.cli("send", "alice", "c→a", check=True)
        assert texts(bob.wait_messages(1)) == ["a→b"]
        assert texts(carol.wait_messages(1)) == ["b→c"]
        assert texts(alice.wait_messages(1)) == ["c→a"]
        # Both sides compute the same safety number.
        ab = alice.cli_json("verify", "bob")["safety_number"]
        assert ab == bob.cli_json("verify", "alice")["safety_number"]
        assert len(ab.replace(" ", "")) == 60
        alice.cli("verify", "bob", "--mark-verified", check=True)
        assert [c["verified"] for c in alice.cli_json("contacts") if c["name"] == "bob"] == [True]
    finally:
        for node in nodes:
            node.stop()


def test_second_node_for_a_profile_is_refused(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, _ = pair
    result = alice.host.run(
        [PYTHON, "-m", "p2pchat", "--data-dir", str(alice.data_dir), "daemon"], env=cli_env()
    )
    assert result.returncode == 1
    assert "already running" in result.stderr
    assert "Traceback" not in result.stderr


def test_junk_on_the_signaling_port_gets_4xx(pair: tuple[ChatNode, ChatNode]) -> None:
    alice, bob = pair
    port = bob.cli_json("status")["port"]
    url = f"http://{bob.host.ip}:{port}/v1/envelope"
    probe = alice.host.python(JUNK_SCRIPT, url, stdout=subprocess.PIPE)
    out, _ = probe.communicate(timeout=120)
    statuses = json.loads(out)
    assert statuses["random"] == 400
    assert statuses["empty"] == 400
    assert statuses["oversized"] == 413
    assert statuses["wrong_path"] == 404
    assert statuses["get"] == 405
    assert 429 in statuses["flood"]
    assert all(400 <= s < 500 for s in statuses["flood"])
    # The node carries on: a real conversation still works.
    befriend(alice, bob)
    alice.cli("send", "bob", "still here", check=True)
    assert texts(bob.wait_messages(1)) == ["still here"]


JUNK_SCRIPT = r"""
import json, os, sys, urllib.request, urllib.error
url = sys.argv[1]
def post(data, target=url, method="POST"):
    req = urllib.request.Request(target, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
out = {
    "random": post(os.urandom(300)),
    "empty": post(b""),
    "oversized": post(os.urandom(70 * 1024)),
    "wrong_path": post(b"x", url.replace("/v1/envelope", "/nope")),
    "get": post(None, method="GET"),
    "flood": [post(os.urandom(100)) for _ in range(80)],
}
print(json.dumps(out))
"""
