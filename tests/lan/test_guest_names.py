"""Guests are people, not contacts (issue 10, section 5), through a real owner.

A real ``p2pchat daemon`` in host 1; guests are the Python guest of
tests/lan/guest_driver.py in host 2 (the real handshake and session, relay path).

* Several guests called Dana came and went, one is here now: ``send Dana`` goes to
  the one here now; once she has left too, the error lists them as guests, by label.
* ``p2pchat guests`` lists live and past guests with their label, invite and state.
* ``accept bob`` with no request from bob says so (not "there are no peers").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pchat.crypto.encoding import b64url_encode
from tests.conftest import require_netns
from tests.lan.chat_nodes import ChatNode, Event
from tests.lan.guest_driver import GuestProcess
from tests.lan.netns import Host, Lan

pytestmark = pytest.mark.lan

EVENT_S = 60.0  # catches hangs only


@pytest.fixture(scope="module")
def lan_owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatNode, Host]]:
    require_netns()
    tmp: Path = tmp_path_factory.mktemp("guest-names")
    with Lan(2) as lan:
        node = ChatNode(lan.hosts[0], tmp / "owner", "olivia")
        node.start()
        try:
            yield node, lan.hosts[1]
        finally:
            node.stop()


def guest_id(tag: str) -> str:
    """A fixed 16-byte guest id per tag (what a page draws at random, once per link)."""
    return b64url_encode(hashlib.blake2b(tag.encode(), digest_size=16).digest())


def wait_event(node: ChatNode, type_: str, **fields: Any) -> Event:
    return node.wait_for(
        lambda e: e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items()),
        timeout=EVENT_S,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_live_guest_wins_over_past_ones_of_the_same_name(
    lan_owner: tuple[ChatNode, Host],
) -> None:
    owner, guest_host = lan_owner
    invite = owner.cli_json("invite", "--uses", "3")
    ids = [guest_id(f"dana-{i}") for i in range(3)]
    for past in ids[:2]:  # two Danas came and left
        visit = GuestProcess(guest_host, invite["url"], past, "Dana")
        visit.wait_for("opened")
        wait_event(owner, "guest_joined", peer_id=f"guest:{past}")
        visit.leave()
        wait_event(owner, "guest_left", peer_id=f"guest:{past}")
    dana = GuestProcess(guest_host, invite["url"], ids[2], "Dana")
    dana.wait_for("opened")
    wait_event(owner, "guest_joined", peer_id=f"guest:{ids[2]}")

    sent = owner.cli("send", "Dana", "hello, Dana")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "sent", sent.stdout
    dana.wait_for("message", text="hello, Dana")
    out = wait_event(owner, "message", direction="out", text="hello, Dana")
    assert out["peer_id"] == f"guest:{ids[2]}"

    listed = {g["peer_id"]: g for g in owner.cli_json("guests")}
    mine = {f"guest:{i}": listed.get(f"guest:{i}") for i in ids}
    assert all(mine.values()), listed
    assert [mine[f"guest:{i}"]["state"] for i in ids] == ["past", "past", "live"], mine
    for view in mine.values():
        assert view["name"] == "Dana"
        assert view["invite_id"] == invite["invite_id"]
        assert isinstance(view["last_seen_ms"], int)
        assert view["last_seen_ms"] > 0
    table = owner.cli("guests", check=True).stdout
    for shown in (f"guest:{ids[2]}", "live", "past"):
        assert shown in table, table

    dana.leave()
    wait_event(owner, "guest_left", peer_id=f"guest:{ids[2]}")
    refused = owner.cli("send", "Dana", "anyone there?")
    assert refused.returncode != 0
    line = one_line(refused.stderr)
    assert '"Dana" matches 3 guests' in line, line
    assert all(f"guest:{i}" in line for i in ids), line
    assert "contact" not in line, line  # guests are not called contacts


def test_accept_with_no_request_says_there_is_none(lan_owner: tuple[ChatNode, Host]) -> None:
    owner, _ = lan_owner
    for command in ("accept", "reject"):
        result = owner.cli(command, "bob")
        assert result.returncode != 0
        line = one_line(result.stderr)
        assert 'there is no contact request from "bob"' in line, line
        assert "no peers" not in line, line
