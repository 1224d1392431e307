"""The real TUI on a real LAN: ChatApp and its node under Textual's Pilot in one
network namespace, a ``p2pchat daemon`` peer in another (tests/lan/netns.py).

Nothing touches the machine's own interfaces: each node uses only its
namespace's eth0. The Pilot side is tests/tui/tui_driver.py, in a subprocess
inside host 1; it reports each step as a JSON line.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.lan.chat_nodes import PASSPHRASE, ChatNode, befriend, cli_env
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON, Host

pytestmark = [pytest.mark.lan, pytest.mark.timeout(400)]

CHAT_STEPS = [
    "wrong_passphrase_refused", "unlocked", "control_socket", "peer_found",
    "contact_accepted", "sent_delivered", "invite_shown", "unread_notified",
    "invite_revoked", "unread_cleared", "safety_verified", "search",
    "key_warning_blocks", "key_warning_acknowledged", "stopped",
]  # fmt: skip


class Driver:
    def __init__(self, host: Host, args: dict[str, Any], env: dict[str, str] | None = None) -> None:
        env = {**cli_env(), **(env or {})}
        env.pop("P2PCHAT_PASSPHRASE")  # the TUI must ask for it
        self.proc = host.popen(
            [PYTHON, "-m", "tests.tui.tui_driver", json.dumps(args)],
            cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.steps: list[str] = []
        self.lines: list[dict[str, Any]] = []

    def read_until(self, predicate: Any) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            self.lines.append(line)
            if "step" in line:
                self.steps.append(line["step"])
            if "error" in line:
                raise AssertionError(f"after {self.steps}: {line['error']}")
            if predicate(line):
                return line
        self.proc.wait(30)
        stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
        raise AssertionError(
            f"driver ended after {self.steps} (exit {self.proc.returncode}): {stderr[-3000:]}"
        )

    def answer(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()


def test_tui_chat_flow(make_lan: MakeLan, tmp_path: Path) -> None:
    lan = make_lan(3)
    tui_host, bob_host, impostor_host = lan.hosts
    alice = ChatNode(tui_host, tmp_path / "alice", "alice")  # profile only: the TUI runs it
    bob = ChatNode(bob_host, tmp_path / "bob", "bob")
    bob.start()
    driver = Driver(tui_host, {
        "scenario": "chat", "data_dir": str(alice.data_dir), "passphrase": PASSPHRASE,
        "interface": tui_host.ifname, "peer_data_dir": str(bob.data_dir),
        "peer_name": "bob", "peer_id": bob.peer_id, "me": "alice",
    })  # fmt: skip
    driver.read_until(lambda line: line.get("wait") == "impostor")
    impostor = ChatNode(impostor_host, tmp_path / "impostor", "bob")  # bob's name, another key
    impostor.start()
    driver.answer()
    driver.read_until(lambda line: line.get("step") == "stopped")
    assert driver.proc.wait(30) == 0
    assert driver.steps == CHAT_STEPS

    # What the TUI sent reached bob's node and history; what bob sent is in alice's.
    bob_history = bob.cli_json("history", "alice")
    assert [m["text"] for m in bob_history if m["direction"] == "in"] == ["hello from the TUI"]
    alice_history = alice.cli_json("history", "bob")
    assert {m["text"] for m in alice_history} >= {"hello from the TUI", "are you there?"}
    # The impostor never became anything to alice.
    contacts = alice_contacts(alice)
    assert [c for c in contacts if c["name"] == "bob"] == [
        c for c in contacts if c["peer_id"] == bob.peer_id
    ]


def test_tui_first_run_creates_the_profile(make_lan: MakeLan, tmp_path: Path) -> None:
    (host,) = make_lan(1).hosts
    data_dir = tmp_path / "new"
    driver = Driver(host, {
        "scenario": "first_run", "data_dir": str(data_dir), "passphrase": PASSPHRASE,
        "interface": host.ifname, "me": "newbie",
    })  # fmt: skip
    driver.read_until(lambda line: line.get("step") == "stopped")
    assert driver.proc.wait(30) == 0
    assert driver.steps == ["mismatch_refused", "created", "profile_opens", "stopped"]
    assert (data_dir / "profile.db").stat().st_mode & 0o077 == 0


def test_tui_counts_messages_that_arrive_while_it_starts(make_lan: MakeLan, tmp_path: Path) -> None:
    """Issue 10: bob sent 2 while alice was away → the TUI showed "bob 1" (or nothing
    when they came before its main screen listened). The driver holds the main screen
    back until bob has both receipts, so the second case happens every run."""
    lan = make_lan(2)
    tui_host, bob_host = lan.hosts
    alice = ChatNode(tui_host, tmp_path / "alice", "alice")
    bob = ChatNode(bob_host, tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    befriend(alice, bob)
    alice.stop()
    for text in ("while you were away", "second one"):
        bob.cli("send", "alice", text, check=True)
    driver = Driver(tui_host, {
        "scenario": "outbox_at_start", "data_dir": str(alice.data_dir),
        "passphrase": PASSPHRASE, "interface": tui_host.ifname,
        "peer_data_dir": str(bob.data_dir), "peer_name": "bob", "peer_id": bob.peer_id,
        "me": "alice",
    })  # fmt: skip
    driver.read_until(lambda line: line.get("step") == "stopped")
    assert driver.proc.wait(30) == 0
    assert driver.steps == [
        "delivered_before_the_screen_listened", "unread_counted", "read", "stopped"
    ]  # fmt: skip


def test_tui_group(make_lan: MakeLan, tmp_path: Path) -> None:
    """Issue 12: a group made, used, changed and left from the TUI, with two daemons."""
    tui_host, bob_host, carol_host = make_lan(3).hosts
    alice = ChatNode(tui_host, tmp_path / "alice", "alice")
    bob = ChatNode(bob_host, tmp_path / "bob", "bob")
    carol = ChatNode(carol_host, tmp_path / "carol", "carol")
    for node in (alice, bob, carol):
        node.start()
    befriend(alice, bob)
    befriend(alice, carol)  # carol and bob are no contacts of each other
    alice.stop()
    driver = Driver(tui_host, {
        "scenario": "group", "data_dir": str(alice.data_dir), "passphrase": PASSPHRASE,
        "interface": tui_host.ifname, "peer_data_dir": str(bob.data_dir), "peer_name": "bob",
        "peer_id": bob.peer_id, "other_data_dir": str(carol.data_dir),
        "other_id": carol.peer_id, "me": "alice",
    })  # fmt: skip
    driver.read_until(lambda line: line.get("step") == "stopped")
    assert driver.proc.wait(30) == 0
    assert driver.steps == [
        "sessions_open", "group_created", "group_invite_made", "sent_to_members", "received_with_names",
        "member_removed", "member_left", "left", "stopped",
    ]  # fmt: skip
    # bob got carol's message although they are not contacts: through the group.
    assert "hi from carol" in {m["text"] for m in bob.cli_json("history", "family")}


def test_tui_files(make_lan: MakeLan, tmp_path: Path) -> None:
    """Issue 13: a small file sent from the TUI arrives whole on bob's daemon; one bob
    sends is saved in alice's downloads folder and shown done."""
    tui_host, bob_host = make_lan(2).hosts
    alice = ChatNode(tui_host, tmp_path / "alice", "alice")
    bob = ChatNode(bob_host, tmp_path / "bob", "bob")
    bob.daemon_args = ["--downloads", str(tmp_path / "bob-downloads")]
    alice.start()
    bob.start()
    befriend(alice, bob)
    alice.stop()
    seed = 13
    rng = random.Random(seed)
    sent, back = tmp_path / "to-bob.bin", tmp_path / "to-alice.bin"
    sent.write_bytes(rng.randbytes(300_000))  # a few blocks, with a short last one
    back.write_bytes(rng.randbytes(70_000))
    driver = Driver(tui_host, {
        "scenario": "files", "data_dir": str(alice.data_dir), "passphrase": PASSPHRASE,
        "interface": tui_host.ifname, "peer_data_dir": str(bob.data_dir), "peer_name": "bob",
        "peer_id": bob.peer_id, "me": "alice", "send_path": str(sent),
        "receive_path": str(back),
    }, env={"XDG_DOWNLOAD_DIR": str(tmp_path / "alice-downloads")})  # fmt: skip
    driver.read_until(lambda line: line.get("step") == "stopped")
    assert driver.proc.wait(30) == 0, f"seed {seed}"
    assert driver.steps == ["session_open", "sent_done", "peer_has_it", "received_done",
                            "stopped"]  # fmt: skip
    assert (tmp_path / "bob-downloads" / sent.name).read_bytes() == sent.read_bytes()
    assert (tmp_path / "alice-downloads" / back.name).read_bytes() == back.read_bytes()


def alice_contacts(alice: ChatNode) -> list[dict[str, Any]]:
    """Alice's contacts, read from her profile (her node is not running now)."""
    from p2pchat.crypto.identity import peer_id
    from p2pchat.store import open_profile

    with open_profile(alice.data_dir, PASSPHRASE) as profile:
        return [
            {"name": c.display_name, "peer_id": peer_id(c.public_key), "state": c.trust.value}
            for c in profile.contacts()
        ]
