"""Faults on a real (namespaced) LAN: link flaps, packet loss, SIGKILL, disk full,
signaling resets. Issue 6 part 2.

The promise under test: nothing sent is lost, nothing is shown twice, order per
sender holds, the profile passes ``PRAGMA cipher_integrity_check`` after every
crash, and the node reconnects by itself.

Delivery is checked on the receiver's profile (``history --json`` and the raw
arrival order), never on ``watch``, which misses events across restarts.
No timing assertions: timeouts only catch hangs. Figures are printed and written
to ``bench/results/faults-*.json``.

Default run: each test ≲ 90 s. Long run::

    P2PCHAT_FAULTS=full .venv/bin/python -m pytest -m lan tests/lan/test_faults.py -s

``P2PCHAT_FAULTS_SEED=N`` replays the random choices of a run (the seed is printed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pchat.control.client import ControlClient
from tests.lan.chat_nodes import ChatNode, befriend
from tests.lan.conftest import MakeLan
from tests.lan.fault_tools import (
    LinkFlapper,
    arrival_order,
    assert_profile_intact,
    compare,
    full_profile,
    integrity_check,
    outbox_size,
    profile_key,
    seeded_rng,
    wait_all_delivered,
    wait_received,
    write_results,
)

FULL = full_profile()
DELIVERY_TIMEOUT = 120.0  # only catches a hang (recovery takes seconds)

pytestmark = [pytest.mark.lan, pytest.mark.timeout(1800 if FULL else 600)]


@pytest.fixture
def pair(make_lan: MakeLan, tmp_path: Path) -> Iterator[tuple[ChatNode, ChatNode]]:
    lan = make_lan(2)
    alice = ChatNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = ChatNode(lan.hosts[1], tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    befriend(alice, bob)
    yield alice, bob
    for node in (alice, bob):
        node.host.link_up()
        node.stop()


class PacedSender(threading.Thread):
    """Sends ``bodies`` to ``peer`` over ``duration`` seconds through the control socket.

    A send that the node refuses (it must not, here) is recorded as an error.
    """

    def __init__(self, node: ChatNode, peer: str, bodies: list[str], duration: float) -> None:
        super().__init__(daemon=True, name=f"send-{node.name}")
        self.node, self.peer, self.bodies, self.duration = node, peer, bodies, duration
        self.sent: list[str] = []
        self.states: dict[str, int] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        client = ControlClient(self.node.data_dir)
        start = time.monotonic()
        for i, body in enumerate(self.bodies):
            due = start + self.duration * i / len(self.bodies)
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                state = client.call("send", peer=self.peer, text=body)["status"]
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(f"{body}: {exc}")
                continue
            self.sent.append(body)
            self.states[state] = self.states.get(state, 0) + 1


def check_conversation(
    sender: ChatNode, receiver: ChatNode, sent: list[str], *, timeout: float = DELIVERY_TIMEOUT
) -> dict[str, object]:
    """Receiver holds each sent text once, in order (as shown and as stored);
    the sender sees every one delivered and its outbox is empty."""
    got = wait_received(receiver, sender.name, len(sent), timeout=timeout)
    shown = compare(sent, got)
    assert shown.ok, f"{sender.name}→{receiver.name} (history): {shown}"
    stored = compare(sent, arrival_order(receiver.data_dir, profile_key(receiver.data_dir)))
    assert stored.ok, f"{sender.name}→{receiver.name} (arrival order): {stored}"
    out = wait_all_delivered(sender, receiver.name, timeout=timeout)
    pending = [m["text"] for m in out if m["delivery"] != "delivered"]
    assert not pending, f"{sender.name}: not marked delivered: {pending[:10]} ({len(pending)})"
    assert outbox_size(sender.data_dir, profile_key(sender.data_dir)) == 0
    return shown.figures()


# -- link flaps ------------------------------------------------------------------------


def test_link_flaps_during_a_conversation(pair: tuple[ChatNode, ChatNode]) -> None:
    """The cable of one node is pulled every ~3 s (for 1–2 s) while both talk."""
    alice, bob = pair
    rng, seed = seeded_rng("link_flaps")
    # 500 each way (1,000 in all); the long profile 2,500 each way over 150 s.
    per_side, duration = (2500, 150.0) if FULL else (500, 30.0)
    a_bodies = [f"a{i:05d}" for i in range(per_side)]
    b_bodies = [f"b{i:05d}" for i in range(per_side)]
    senders = [
        PacedSender(alice, "bob", a_bodies, duration),
        PacedSender(bob, "alice", b_bodies, duration),
    ]
    # Mostly 1–2 s cuts (the session rides them out); every 4th lasts ~10 s.
    flapper = LinkFlapper(alice.host, rng, long_every=4).start()
    events_before = len(alice.events)
    start = time.monotonic()
    for s in senders:
        s.start()
    for s in senders:
        s.join(timeout=duration + 120)
        assert not s.is_alive(), f"{s.name} hung"
    flapper.stop()
    stable_at = time.monotonic()
    assert [s.errors for s in senders] == [[], []]

    a_to_b = check_conversation(alice, bob, senders[0].sent)
    b_to_a = check_conversation(bob, alice, senders[1].sent)
    recovered = time.monotonic() - stable_at
    drops = sum(
        1 for e in alice.events[events_before:]
        if e.get("type") == "session" and e["state"] == "closed"
    )  # fmt: skip
    write_results(
        "link_flaps",
        {
            "seed": seed,
            "messages_sent": len(senders[0].sent) + len(senders[1].sent),
            "send_states": {s.node.name: s.states for s in senders},
            "flaps": flapper.flaps,
            "long_flaps": flapper.long_flaps,
            "sessions_dropped_and_reopened": drops,
            "link_down_seconds": round(flapper.down_seconds, 1),
            "conversation_seconds": round(stable_at - start, 1),
            "seconds_to_recover_after_last_flap": round(recovered, 1),
            "alice_to_bob": a_to_b,
            "bob_to_alice": b_to_a,
            "messages_lost": a_to_b["lost"] + b_to_a["lost"],  # type: ignore[operator]
            "duplicates": a_to_b["duplicates"] + b_to_a["duplicates"],  # type: ignore[operator]
        },
    )
    assert flapper.flaps > 0
    if flapper.long_flaps:
        assert drops > 0, "a ~10 s cut should have closed the session"
