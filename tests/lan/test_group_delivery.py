"""Who has my group messages, and a member whose p2pchat is from before groups, on a
real (namespaced) LAN: three daemons driven through the CLI, real receipts.

alice (the admin) has bob and carol as contacts; carol's daemon plays a p2pchat from
before groups (tests/lan/old_p2pchat.py): her session is open but announces no groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lan.chat_nodes import ChatNode, befriend
from tests.lan.conftest import MakeLan

pytestmark = pytest.mark.lan


class OldNode(ChatNode):
    def daemon_command(self) -> list[str]:
        command = super().daemon_command()
        launch = "from tests.lan.old_p2pchat import main; main()"
        return [command[0], "-c", launch, *command[3:]]  # instead of `-m p2pchat`


@pytest.fixture
def three(make_lan: MakeLan, tmp_path: Path) -> Iterator[list[ChatNode]]:
    lan = make_lan(3)
    nodes = [
        ChatNode(lan.hosts[0], tmp_path / "alice", "alice"),
        ChatNode(lan.hosts[1], tmp_path / "bob", "bob"),
        OldNode(lan.hosts[2], tmp_path / "carol", "carol"),
    ]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


def test_receipts_of_copies_and_a_member_before_groups(three: list[ChatNode]) -> None:
    alice, bob, carol = three
    befriend(alice, bob)
    befriend(alice, carol)
    gid = alice.cli_json("group", "create", "family", "bob", "carol")["group_id"]
    bob.wait_for(lambda e: e.get("type") == "group_changed" and e["change"] == "joined")

    # carol's session is open, but she cannot take part: groups says why
    (family,) = alice.cli_json("groups")
    state = {m["name"]: (m["online"], m["needs_upgrade"]) for m in family["members"]}
    assert state == {"alice": (True, False), "bob": (True, False), "carol": (False, True)}
    text = alice.cli("groups", check=True).stdout
    (carol_line,) = [line for line in text.splitlines() if line.strip().startswith("carol")]
    assert carol_line.rstrip().endswith("needs a newer p2pchat")

    # bob's receipt for his copy names my group message, as history holds it
    sent = alice.cli_json("send", "family", "dinner at 7")
    receipt = alice.wait_for(
        lambda e: e.get("type") == "receipt" and e["message_id"] == sent["message_id"]
    )
    assert (receipt["conversation"], receipt["peer_id"]) == (f"group:{gid}", bob.peer_id)
    # the 1:1 path is as it was: its conversation, its message id
    direct = alice.cli_json("send", "bob", "just you")
    alice.wait_for(
        lambda e: e.get("type") == "receipt" and e["message_id"] == direct["message_id"]
        and e["peer_id"] == bob.peer_id
    )  # fmt: skip

    # kept in the profile: history shows it after a restart (carol has it not)
    alice.stop()
    (row,) = alice.cli_json("history", "family")
    assert (row["text"], row["delivered_to"]) == ("dinner at 7", [bob.peer_id])
    alice.start()
    (row,) = alice.cli_json("history", "family")
    assert row["delivered_to"] == [bob.peer_id]
    assert not [e for e in alice.events if e.get("type") == "group_message_refused"]
