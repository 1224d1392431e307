"""A contact streams a never-ending SCTP message at a real daemon (issue 9, finding 3).

alice and bob are real daemons in two network namespaces; they befriend and open a
session the ordinary way. Then alice (tests/lan/sctp_flood_node.py) queues 20 MiB of
one message without an end, on the data channel's stream or on stream 9 where no
channel is open. bob must drop the session with a reason that says what alice did,
keep his memory bounded (RSS measured before and after; asserted only against a
generous bound), stay up, and afterwards carry a real conversation with alice again.
Figures go to bench/results/abuse_lan.json (and stdout) for docs/reliability.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.lan.abuse_tools import WatchedNode, record
from tests.lan.chat_nodes import Event, befriend
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON, Host
from tests.lan.test_abuse import converse

pytestmark = pytest.mark.lan

FLOOD_BYTES = 20 * 1024 * 1024
#: Generous bound on bob's RSS growth (the attack, a dropped and a new session, a chat).
MAX_RSS_GROWTH_KB = 40 * 1024
_LAUNCH = (
    f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
    "from tests.lan.sctp_flood_node import main; main()"
)


class FloodingNode(WatchedNode):
    """A daemon that floods its first session's SCTP once ``start_flood`` is called."""

    def __init__(self, host: Host, data_dir: Path, name: str, stream: str) -> None:
        self.result = data_dir.parent / f"{name}-flood.json"
        self.stream = stream
        super().__init__(host, data_dir, name)

    def daemon_command(self) -> list[str]:
        spec = f"{self.stream}:{FLOOD_BYTES}:{self.result}"
        return [PYTHON, "-c", _LAUNCH, spec, *super().daemon_command()[3:]]

    def start_flood(self) -> None:
        self.result.with_name(self.result.name + ".go").touch()

    def flood_report(self, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.result.exists():
            assert time.monotonic() < deadline, f"no flood report: {self.stderr_text()[-3000:]}"
            self.assert_alive()
            time.sleep(0.2)
        doc: dict[str, Any] = json.loads(self.result.read_text())
        return doc


@pytest.fixture(params=["channel", "9"], ids=["channel-stream", "stream-9"])
def duo(
    request: pytest.FixtureRequest, make_lan: MakeLan, tmp_path: Path
) -> Iterator[tuple[FloodingNode, WatchedNode]]:
    lan = make_lan(2)
    alice = FloodingNode(lan.hosts[0], tmp_path / "alice", "alice", request.param)
    bob = WatchedNode(lan.hosts[1], tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    yield alice, bob
    alice.stop()
    bob.stop()


def session_event(node: WatchedNode, peer_id: str, state: str, after: int) -> Event:
    """The first ``session`` event in ``state`` for ``peer_id`` among events ``after`` on."""
    seen = {id(e) for e in node.events[:after]}
    return node.wait_for(
        lambda e: id(e) not in seen and e.get("type") == "session"
        and e["peer_id"] == peer_id and e["state"] == state,
        timeout=120,
    )  # fmt: skip


def test_endless_sctp_message_from_a_contact_is_cut_off(
    duo: tuple[FloodingNode, WatchedNode],
) -> None:
    alice, bob = duo
    befriend(alice, bob)
    converse(alice, bob, "before")
    mark = len(bob.events)
    rss_before = bob.rss_kb()
    alice.start_flood()

    closed = session_event(bob, alice.peer_id, "closed", mark)
    report = alice.flood_report()
    print(json.dumps({"closed": closed, "flood": report}))
    reason = closed["reason"]
    if alice.stream == "channel":
        assert "oversized message" in reason, reason
    else:
        assert "stream 9, which has no data channel" in reason, reason
    # alice's association was ended by bob long before 20 MiB. bob's ABORT, when it
    # reaches her, carries the same reason; but an ABORT is one unacknowledged datagram
    # (RFC 9260 section 9.1), and under load it can be lost, after which alice's side
    # ends by the closed DTLS session instead: both are correct.
    assert report["association"] == "closed", report
    assert report["aborts"] in ([], [[[13, reason]]]), report
    assert report["queued_bytes"] < FLOOD_BYTES, report
    rss_after_attack = bob.rss_kb()

    # The contact reconnects and a real conversation works again.
    session_event(bob, alice.peer_id, "open", mark)
    seconds = converse(alice, bob, "after")
    bob.assert_alive()
    rss_after = bob.rss_kb()
    text = bob.stderr_text()
    assert "Traceback" not in text, text[-4000:]
    assert rss_after - rss_before < MAX_RSS_GROWTH_KB, (rss_before, rss_after)
    record(
        f"sctp_flood_{alice.stream}",
        {
            "reason": reason,
            "tried_bytes": FLOOD_BYTES,
            "queued_bytes_before_abort": report["queued_bytes"],
            "rss_before_kb": rss_before,
            "rss_after_attack_kb": rss_after_attack,
            "rss_after_kb": rss_after,
            "rss_growth_kb": rss_after - rss_before,
            "message_both_ways_after_s": seconds,
        },
    )
