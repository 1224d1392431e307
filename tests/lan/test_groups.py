"""Groups on a real (namespaced) LAN: four daemons, driven through the CLI.

Contacts: alice (the admin) with bob, carol and dave; bob with dave. Carol is a
contact of nobody but alice, so her sessions with bob and dave exist only because
the group's signed list pins their keys (trust ``member``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lan.chat_nodes import ChatNode, Event, befriend
from tests.lan.conftest import MakeLan

pytestmark = pytest.mark.lan


@pytest.fixture
def four(make_lan: MakeLan, tmp_path: Path) -> Iterator[list[ChatNode]]:
    lan = make_lan(4)
    nodes = [
        ChatNode(host, tmp_path / name, name)
        for host, name in zip(lan.hosts, ("alice", "bob", "carol", "dave"), strict=True)
    ]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


def group_messages(node: ChatNode, group_id: str) -> list[Event]:
    return [e for e in node.messages_in() if e.get("group_id") == group_id]


def wait_group_messages(node: ChatNode, group_id: str, count: int) -> list[Event]:
    node.wait_for(lambda _e: len(group_messages(node, group_id)) >= count, timeout=120)
    return group_messages(node, group_id)


def by_sender(rows: list[Event], key: str = "sender") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(str(row[key]), []).append(str(row["text"]))
    return out


def wait_change(node: ChatNode, change: str, member: str | None = None) -> Event:
    return node.wait_for(
        lambda e: e.get("type") == "group_changed" and e["change"] == change
        and (member is None or e["member_name"] == member)
    )  # fmt: skip


def test_a_group_of_four(four: list[ChatNode]) -> None:
    alice, bob, carol, dave = four
    for other in (bob, carol, dave):
        befriend(alice, other)
    befriend(bob, dave)

    # -- create, then add: every member joins from alice's signed list -----------------
    created = alice.cli_json("group", "create", "family", "bob", "carol")
    gid = created["group_id"]
    for node in (bob, carol):
        wait_change(node, "joined")
    added = alice.cli_json("group", "add", "family", "dave")
    assert [m["name"] for m in added["members"]] == ["alice", "bob", "carol", "dave"]
    wait_change(dave, "joined")
    for node in (bob, carol):
        wait_change(node, "member_added", "dave")
    # carol is no one's contact but alice's, and never shows as one
    assert [c["name"] for c in carol.cli_json("contacts")] == ["alice"]

    # -- each member sends; every other member gets each message once, in order --------
    sent: dict[str, list[str]] = {}
    for node in four:
        sent[node.name] = [f"{node.name} {i}" for i in range(3)]
        for text in sent[node.name]:
            node.cli("send", "family", text, check=True)
    for node in four:
        rows = wait_group_messages(node, gid, 9)
        assert len(rows) == 9, rows
        got = by_sender(rows)
        assert got == {k: v for k, v in sent.items() if k != node.name}
        assert {r["group_name"] for r in rows} == {"family"}
        assert all(r["sender_id"] == r["peer_id"] for r in rows)
    history = carol.cli_json("history", "family")
    assert len(history) == 12
    assert by_sender([h for h in history if h["direction"] == "in"]) == {
        k: v for k, v in sent.items() if k != "carol"
    }

    # -- dave stopped during 50 messages, then started: all 50, once, in order -----------
    dave.stop()
    offline = {"alice": [f"a{i:02d}" for i in range(25)], "carol": [f"c{i:02d}" for i in range(25)]}
    for a_text, c_text in zip(offline["alice"], offline["carol"], strict=True):
        alice.cli("send", "family", a_text, check=True)
        carol.cli("send", "family", c_text, check=True)
    dave.start()
    rows = dave.wait_history("family", 9 + 50)
    new = [r for r in rows if r["text"][0] in "ac" and r["text"][1:].isdigit()]
    assert len(new) == 50
    assert by_sender(new) == offline

    # -- a member who is not a contact can still become one (`add` as always) -------------
    bob.cli("add", carol.peer_id, check=True)
    carol.wait_for(lambda e: e.get("type") == "contact_request" and e["peer_id"] == bob.peer_id)
    carol.cli("accept", "bob", check=True)
    bob.wait_for(lambda e: e.get("type") == "contact_accepted" and e["peer_id"] == carol.peer_id)
    assert "carol" in {c["name"] for c in bob.cli_json("contacts")}
    bob.cli("send", "carol", "now a contact", check=True)
    carol.wait_for(lambda e: e.get("type") == "message" and e["text"] == "now a contact")

    # -- dave removed: nothing after it reaches him; his sends are refused ----------------
    dave.host.link_down()
    dave.cli("send", "family", "from dave, already removed", check=True)
    alice.cli("group", "remove", "family", "dave", check=True)
    for node in (bob, carol):
        wait_change(node, "member_removed", "dave")
    for node in (alice, bob, carol):
        node.cli("send", "family", f"{node.name} after removal", check=True)
    for node in (alice, bob, carol):
        rows = wait_group_messages(node, gid, 9 + (50 if node is bob else 25) + 2)
        assert {f"{n} after removal" for n in ("alice", "bob", "carol") if n != node.name} <= {
            r["text"] for r in rows
        }
    dave.host.link_up()
    wait_change(dave, "you_were_removed")
    for node in (alice, bob):  # dave's contacts: his queued copy reaches them, refused
        refused = node.wait_for(
            lambda e: e.get("type") == "group_message_refused" and e["from_peer_id"] == dave.peer_id
        )
        assert refused["code"] == "group-not-member"
    for node in (alice, bob, carol):
        assert "from dave, already removed" not in {r["text"] for r in group_messages(node, gid)}
    dave_texts = {r["text"] for r in dave.cli_json("history", "family")}
    assert not {t for t in dave_texts if t.endswith("after removal")}
    result = dave.cli("send", "family", "still here?")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    # nothing else was refused anywhere: the normal echoes of delivery are quiet
    for node in four:
        others = [
            e for e in node.events
            if e.get("type") == "group_message_refused" and e["from_peer_id"] != dave.peer_id
        ]  # fmt: skip
        assert others == [], (node.name, others)


class ForgerNode(ChatNode):
    """A member whose daemon forges, alters and replays group frames when told to."""

    def daemon_command(self) -> list[str]:
        command = super().daemon_command()
        launch = "from tests.lan.group_forger import main; main()"
        return [command[0], "-c", launch, *command[3:]]  # instead of `-m p2pchat`


@pytest.fixture
def four_with_forger(make_lan: MakeLan, tmp_path: Path) -> Iterator[list[ChatNode]]:
    lan = make_lan(4)
    nodes = [
        ChatNode(lan.hosts[0], tmp_path / "alice", "alice"),
        ChatNode(lan.hosts[1], tmp_path / "bob", "bob"),
        ChatNode(lan.hosts[2], tmp_path / "carol", "carol"),
        ForgerNode(lan.hosts[3], tmp_path / "mallory", "mallory"),
    ]
    yield nodes
    for node in nodes:
        node.stop()


def test_forged_altered_and_replayed_messages_and_a_changed_key(
    four_with_forger: list[ChatNode], tmp_path: Path
) -> None:
    alice, bob, carol, mallory = four_with_forger
    carol_key = json.loads(carol.cli("id", "--json", check=True).stdout)["public_key"]
    for node in (alice, bob, carol):
        node.start()
    raw_key = base64.urlsafe_b64decode(carol_key + "=" * (-len(carol_key) % 4))
    mallory.start(env={"FORGE_AS": raw_key.hex()})
    for other in (bob, carol, mallory):
        befriend(alice, other)
    gid = alice.cli_json("group", "create", "club", "bob", "carol", "mallory")["group_id"]
    for node in (bob, carol, mallory):
        wait_change(node, "joined")
    mallory.cli("send", "club", "hello, genuinely", check=True)
    for node in (alice, bob, carol):
        wait_group_messages(node, gid, 1)
    mallory.cli("send", "club", "FORGE", check=True)
    for node in (alice, bob, carol):
        rows = wait_group_messages(node, gid, 2)
        assert [r["text"] for r in rows] == ["hello, genuinely", "FORGE"]  # once each
        node.wait_for(lambda e, n=node: len(refusals(n, mallory)) >= 3)
        assert sorted(e["code"] for e in refusals(node, mallory)) == [
            "group-bad-signature", "group-bad-signature", "group-replay",
        ]  # fmt: skip
    assert all(r["text"] != "I am someone else" for r in group_messages(bob, gid))

    # carol's key changes (a new profile under her name): bob, who knows her only as a
    # member of the club, gets the same warning as for a contact
    carol.stop()
    impostor = ChatNode(carol.host, tmp_path / "carol2", "carol")
    impostor.start()
    try:
        warning = bob.wait_for(lambda e: e.get("type") == "key_warning")
        assert warning["name"] == "carol"
        assert warning["peer_id"] == carol.peer_id
    finally:
        impostor.stop()


def refusals(node: ChatNode, sender: ChatNode) -> list[Event]:
    return [
        e for e in node.events
        if e.get("type") == "group_message_refused" and e["from_peer_id"] == sender.peer_id
    ]  # fmt: skip
