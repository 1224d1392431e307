"""Invites and guest ids through a real owner (issue 9, findings 6 and 7).

A real ``p2pchat daemon`` in host 1; guests are the Python guest of
tests/lan/guest_driver.py in host 2 (the real handshake and session, relay path), so
a test can choose a guest's id, which a real page keeps per link.

* A guest id names one guest through one invite: the same id arriving through
  another invite is refused, and revoking that other invite leaves nothing open.
* Invite ids never look like command-line options.

One LAN and one owner are shared by the module; each test makes its own invites and
guest ids and looks only at its own events.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class Owner:
    node: ChatNode
    guest_host: Host

    def invite(self, *args: str) -> dict[str, Any]:
        invite: dict[str, Any] = self.node.cli_json("invite", *args)
        return invite

    def open_invites(self) -> dict[str, dict[str, Any]]:
        return {i["invite_id"]: i for i in self.node.cli_json("invites")}

    def uses(self, invite_id: str) -> tuple[int, int]:
        """(uses left, guests in) of a listed invite."""
        view = self.open_invites()[invite_id]
        return view["uses_left"], view["guests"]

    def wait_event(self, type_: str, **fields: Any) -> Event:
        return self.node.wait_for(
            lambda e: e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items()),
            timeout=EVENT_S,
        )

    def events(self, type_: str, **fields: Any) -> list[Event]:
        return [
            e
            for e in list(self.node.events)
            if e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items())
        ]

    def guest(self, invite: dict[str, Any], guest_id: str, name: str) -> GuestProcess:
        return GuestProcess(self.guest_host, invite["url"], guest_id, name)


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Owner]:
    require_netns()
    tmp: Path = tmp_path_factory.mktemp("invites")
    with Lan(2) as lan:
        node = ChatNode(lan.hosts[0], tmp / "owner", "olivia")
        node.start()
        try:
            yield Owner(node, lan.hosts[1])
        finally:
            node.stop()


def guest_id(name: str) -> str:
    """A fixed 16-byte guest id per name (what a page draws at random, once per link)."""
    return b64url_encode(hashlib.blake2b(name.encode(), digest_size=16).digest())


def chat(owner: Owner, guest: GuestProcess, label: str, tag: str) -> None:
    """One message each way between the owner and this guest's session."""
    owner.node.cli("send", label, f"{tag}: to the guest", check=True)
    guest.wait_for("message", text=f"{tag}: to the guest")
    guest.send(f"{tag}: to the owner")
    owner.wait_event("message", direction="in", peer_id=label, text=f"{tag}: to the owner")


# -- finding 6: a guest id is bound to the invite it came in through --------------------


def test_a_guest_id_admitted_on_one_invite_cannot_join_through_another(owner: Owner) -> None:
    a, b = owner.invite("--uses", "1"), owner.invite("--uses", "1")
    gid = guest_id("gus")
    label = f"guest:{gid}"
    first = owner.guest(a, gid, "gus")
    first.wait_for("opened")
    joined = owner.wait_event("guest_joined", peer_id=label)
    assert joined["invite_id"] == a["invite_id"]

    # The same guest id through invite B: refused, and nothing of it is left behind.
    second = owner.guest(b, gid, "gus")
    ended = second.wait_for("opened", "closed")
    assert ended["event"] == "closed", second.reports
    assert ended["code"] == 4403, ended
    refused = owner.wait_event("guest_refused", invite_id=b["invite_id"])
    assert a["invite_id"] in refused["reason"], refused
    assert (refused["peer_id"], refused["name"]) == (label, "gus"), refused
    assert owner.uses(a["invite_id"]) == (0, 1)
    assert owner.uses(b["invite_id"]) == (1, 0)  # no use of B reserved for good

    result = owner.node.cli("revoke", b["invite_id"])
    assert result.returncode == 0, result.stderr
    assert "revoked" in result.stdout
    assert b["invite_id"] not in owner.open_invites()
    joins = owner.events("guest_joined", peer_id=label)
    assert [j["invite_id"] for j in joins] == [a["invite_id"]], joins
    assert not owner.events("guest_joined", invite_id=b["invite_id"])

    # The guest of A never noticed: still in, still talking.
    assert not first.events("closed"), first.reports
    chat(owner, first, label, "after B")

    # A reload on A (same tab, same id) comes back in without a second use.
    again = owner.guest(a, gid, "gus")
    again.wait_for("opened")
    first.wait_for("closed")  # the owner closed the old session: the guest reconnected
    owner.node.wait_for(
        lambda e: e.get("type") == "guest_joined" and e["peer_id"] == label and e is not joined,
        timeout=EVENT_S,
    )
    joins = owner.events("guest_joined", peer_id=label)
    assert [j["invite_id"] for j in joins] == [a["invite_id"]] * 2, joins
    assert owner.uses(a["invite_id"]) == (0, 1)
    chat(owner, again, label, "after the reload")
    for guest in (first, second, again):
        guest.leave()


def test_revoking_an_invite_closes_the_guests_waiting_at_it(owner: Owner) -> None:
    c = owner.invite("--uses", "2", "--approve")
    gid = guest_id("wanda")
    label = f"guest:{gid}"
    waiting = owner.guest(c, gid, "wanda")
    owner.wait_event("guest_waiting", peer_id=label, invite_id=c["invite_id"])

    result = owner.node.cli("revoke", c["invite_id"])
    assert result.returncode == 0, result.stderr

    ended = waiting.wait_for("opened", "closed")
    assert (ended["event"], ended["code"]) == ("closed", 4403), waiting.reports
    assert "revoked" in ended["reason"], ended
    late = owner.node.cli("admit", label)
    assert late.returncode != 0
    assert "no waiting guest" in late.stderr, late.stderr
    assert not owner.events("guest_joined", invite_id=c["invite_id"])
    waiting.leave()


# -- issue 10, section 1: the owner sees failed attempts ------------------------------------


def test_a_guest_whose_connection_never_opens_shows_in_watch(owner: Owner) -> None:
    """Answered, then gone before the session opened: ``guest_refused`` names the guest
    (label and name) and the reason, and the use it held is free again."""
    invite = owner.invite("--uses", "1")
    gid = guest_id("quitter")
    label = f"guest:{gid}"
    quitter = GuestProcess(owner.guest_host, invite["url"], gid, "quitter", "quit-after-answer")
    quitter.wait_for("closed")
    failed = owner.wait_event("guest_refused", invite_id=invite["invite_id"])
    assert (failed["peer_id"], failed["name"]) == (label, "quitter"), failed
    assert "never opened" in failed["reason"], failed
    assert "the guest left" in failed["reason"], failed
    assert not owner.events("guest_joined", invite_id=invite["invite_id"])
    assert owner.uses(invite["invite_id"]) == (1, 0)
    quitter.leave()


# -- finding 7: invite ids never look like options ----------------------------------------

INVITE_ID = re.compile(r"[a-z2-7]{8}")


# -- the probe before the Join form (issue 11: one socket for the probe and the Join) ------


def test_a_probe_kept_open_spends_nothing_and_its_socket_carries_the_join(owner: Owner) -> None:
    """A page probes on the socket it will join on (``"probe": "keep"``): the owner
    says ``usable`` and keeps the socket. A page left at its Join form holding that
    socket spends no use of a one-use link; the next guest probes and joins on one
    socket. A second probe on a socket, or an old page's ``"probe": "1"``, is answered
    with a close 4100 as before."""
    invite = owner.invite("--uses", "1")
    idle = GuestProcess(
        owner.guest_host, invite["url"], guest_id("kept-idle"), "idle", "probe-keep-stay"
    )
    idle.wait_for("usable")
    assert owner.uses(invite["invite_id"]) == (1, 0)
    idle.leave()
    idle.wait_for("closed")
    assert owner.uses(invite["invite_id"]) == (1, 0)
    assert not owner.events("guest_joined", invite_id=invite["invite_id"])

    for mode, gid in (("probe", "old-page"), ("probe-twice", "twice")):
        asker = GuestProcess(owner.guest_host, invite["url"], guest_id(gid), gid, mode)
        assert asker.wait_for("closed")["code"] == 4100
        assert len(asker.events("usable")) == (1 if mode == "probe-twice" else 0)
        asker.leave()
    assert owner.uses(invite["invite_id"]) == (1, 0)

    joiner = GuestProcess(
        owner.guest_host, invite["url"], guest_id("kept-joiner"), "joiner", "probe-keep"
    )
    joiner.wait_for("usable")
    joiner.wait_for("opened")
    label = owner.wait_event("guest_joined", invite_id=invite["invite_id"])["peer_id"]
    chat(owner, joiner, label, "kept")
    assert owner.uses(invite["invite_id"]) == (0, 1)
    joiner.leave()


def test_invite_ids_never_look_like_options(owner: Owner) -> None:
    ids = [owner.invite("--expires", "5m")["invite_id"] for _ in range(12)]
    assert all(INVITE_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    for k, invite_id in enumerate(ids):
        # As printed, after `--`, and in capitals: each names its invite.
        typed = [[invite_id], ["--", invite_id], [invite_id.upper()]][k % 3]
        result = owner.node.cli("revoke", *typed)
        assert result.returncode == 0, (typed, result.stderr)
        assert f"Invite {invite_id} revoked" in result.stdout, result.stdout
    assert not set(ids) & set(owner.open_invites())
