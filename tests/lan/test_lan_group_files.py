"""Files to a group on a real (namespaced) LAN: three daemons, driven through the CLI.

alice (the admin) has bob and carol as contacts; bob and carol are not each other's.
``send-file GROUP`` gives each LAN member its own transfer; carol, stopped at the
send, gets hers when she comes back. Both files hash equal to the source and are
filed under the group on the receiving side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lan.chat_nodes import ChatNode, befriend
from tests.lan.conftest import MakeLan
from tests.lan.test_lan_files import MiB, is_file_event, sha256_of, transfer, write_random
from tests.lan.test_lan_files import seed as seed  # the fixture

pytestmark = pytest.mark.lan


@pytest.fixture
def three(make_lan: MakeLan, tmp_path: Path) -> Iterator[list[ChatNode]]:
    lan = make_lan(3)
    nodes = [
        ChatNode(host, tmp_path / name, name)
        for host, name in zip(lan.hosts, ("alice", "bob", "carol"), strict=True)
    ]
    for node in nodes[1:]:
        node.daemon_args = ["--downloads", str(tmp_path / f"{node.name}-downloads")]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


def test_a_file_to_a_group_reaches_each_member_and_an_offline_one_when_back(
    three: list[ChatNode], tmp_path: Path, seed: int
) -> None:
    alice, bob, carol = three
    befriend(alice, bob)
    befriend(alice, carol)
    created = alice.cli_json("group", "create", "team", "bob", "carol")
    group = created["conversation"]
    for node in (bob, carol):
        node.wait_for(lambda e: e.get("type") == "group_changed" and e["change"] == "joined")
    carol.stop()

    source = tmp_path / "team photo.jpg"
    digest = write_random(source, 5 * MiB + 7, seed)
    sent = alice.cli_json("send-file", "team", str(source), "--no-wait")
    by_peer = {view["peer_name"]: view for view in sent}
    assert sorted(by_peer) == ["bob", "carol"]
    assert {(v["group"], v["conversation"]) for v in sent} == {("team", group)}
    assert by_peer["bob"]["transfer_id"] != by_peer["carol"]["transfer_id"]

    # bob (online) gets his copy: same bytes, filed under the group, sender alice
    bob_tid = by_peer["bob"]["transfer_id"]
    done = bob.wait_for(is_file_event("file_done", bob_tid), timeout=180)
    assert done["conversation"] == group
    assert Path(done["path"]) == tmp_path / "bob-downloads" / "team photo.jpg"
    assert sha256_of(Path(done["path"])) == digest, f"seed {seed}"
    held = transfer(bob, bob_tid)
    assert (held["group"], held["peer_name"], held["state"]) == ("team", "alice", "done")
    rows = [r for r in bob.cli_json("history", "team") if r["kind"] == "file"]
    assert [(r["text"], r["sender"], r["message_id"]) for r in rows] == [
        ("team photo.jpg", "alice", bob_tid)
    ]

    # carol's copy waits for her
    carol_tid = by_peer["carol"]["transfer_id"]
    time.sleep(1)
    assert transfer(alice, carol_tid)["state"] == "queued", f"seed {seed}"
    carol.start()
    alice.wait_for(is_file_event("file_done", carol_tid), timeout=180)
    saved = tmp_path / "carol-downloads" / "team photo.jpg"
    assert sha256_of(saved) == digest, f"seed {seed}"
    held = transfer(carol, carol_tid)
    assert (held["group"], held["conversation"], held["state"]) == ("team", group, "done")

    # alice: one history row for the file in the group, nothing in the 1:1 conversations
    mine = [r for r in alice.cli_json("history", "team") if r["kind"] == "file"]
    assert [(r["text"], r["direction"]) for r in mine] == [("team photo.jpg", "out")]
    for peer in ("bob", "carol"):
        assert [r for r in alice.cli_json("history", peer) if r["kind"] == "file"] == []
