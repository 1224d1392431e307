"""Files between real nodes on a real (namespaced) LAN, through the CLI.

``send-file`` on one daemon, the file in the other's ``--downloads`` dir with the same
sha256; an offline contact gets it when back; hostile names land sanitized; a
SIGKILLed sender resumes from the verified blocks; a full disk refuses (the 200 MiB
link-cut and receiver-SIGKILL proof: test_lan_files_faults.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pchat.protocol.file_names import sanitize_file_name
from tests.lan.chat_nodes import ChatNode, befriend
from tests.lan.conftest import MakeLan

pytestmark = pytest.mark.lan

MiB = 1024 * 1024


def is_file_event(kind: str, tid: str) -> Any:
    return lambda e: e.get("type") == kind and e.get("transfer_id") == tid


def write_random(path: Path, size: int, seed: int) -> str:
    """A file of ``size`` seeded random bytes; its sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = rng.randbytes(min(left, MiB))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def transfer(node: ChatNode, tid: str) -> dict[str, Any]:
    (found,) = [f for f in node.cli_json("files") if f["transfer_id"] == tid]
    return found


def offered(node: ChatNode, tid: str) -> None:
    """Wait until ``send-file`` has read the file and queued its offer (it answers first)."""
    deadline = time.monotonic() + 120
    while transfer(node, tid)["state"] == "hashing" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert transfer(node, tid)["state"] != "hashing"


@pytest.fixture
def seed() -> int:
    value = random.randrange(2**32)
    print(f"random seed: {value}")
    return value


@pytest.fixture
def pair(make_lan: MakeLan, tmp_path: Path) -> Iterator[tuple[ChatNode, ChatNode]]:
    lan = make_lan(2)
    alice = ChatNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = ChatNode(lan.hosts[1], tmp_path / "bob", "bob")
    bob.daemon_args = ["--downloads", str(tmp_path / "bob-downloads")]
    alice.start()
    bob.start()
    yield alice, bob
    alice.stop()
    bob.stop()


def test_20mb_file_arrives_with_equal_hash(
    pair: tuple[ChatNode, ChatNode], tmp_path: Path, seed: int
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    source = tmp_path / "holiday video.mp4"
    digest = write_random(source, 20 * MiB, seed)
    # Waits for the end (no terminal: plain progress lines), then prints the final view.
    result = alice.cli("send-file", "bob", str(source), "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    (sent,) = json.loads(result.stdout)
    assert sent["state"] == "done"
    assert sent["bytes_done"] == 20 * MiB
    assert 20 * MiB <= sent["bytes_sent_total"] <= 21 * MiB  # no resend without a cut
    done = bob.wait_for(is_file_event("file_done", sent["transfer_id"]))
    saved = Path(done["path"])
    assert saved == tmp_path / "bob-downloads" / "holiday video.mp4"
    assert sha256_of(saved) == digest, f"seed {seed}"
    assert transfer(bob, sent["transfer_id"])["state"] == "done"
    # Nothing left behind but the file.
    assert os.listdir(tmp_path / "bob-downloads" / ".p2pchat-partial") == []
    # Its history row: search finds it by name on both sides.
    for node in (alice, bob):
        hits = node.cli_json("history", "--search", "holiday")["hits"]
        assert [(h["text"], h["message_id"]) for h in hits] == [
            ("holiday video.mp4", sent["transfer_id"])
        ]


def test_file_to_an_offline_contact_starts_when_it_returns(
    pair: tuple[ChatNode, ChatNode], tmp_path: Path, seed: int
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    bob.stop()
    source = tmp_path / "notes.txt"
    digest = write_random(source, 3 * MiB + 5, seed)
    (queued,) = alice.cli_json("send-file", "bob", str(source), "--no-wait")
    assert queued["state"] in ("hashing", "queued")  # it answers before the file is read
    # A second one, cancelled while bob is away: its offer never leaves.
    unwanted = tmp_path / "unwanted.txt"
    unwanted.write_bytes(b"never mind")
    (second,) = alice.cli_json("send-file", "bob", str(unwanted), "--no-wait")
    assert alice.cli_json("files", "cancel", second["transfer_id"][:6])["state"] == "cancelled"
    time.sleep(2)
    assert transfer(alice, queued["transfer_id"])["state"] == "queued"
    bob.start()
    done = alice.wait_for(is_file_event("file_done", queued["transfer_id"]), timeout=180)
    assert done["direction"] == "out"
    saved = tmp_path / "bob-downloads" / "notes.txt"
    assert sha256_of(saved) == digest, f"seed {seed}"
    # Offers go out in order: the first arrived, so the cancelled one would have too.
    assert [f["name"] for f in bob.cli_json("files")] == ["notes.txt"]
    assert transfer(alice, second["transfer_id"])["state"] == "cancelled"


HOSTILE_NAMES = [
    "..\\..\\etc\\passwd",
    "CON",
    "con.txt",
    "LPT9.log",
    "a\x07b\x1b[31mred.txt",
    ".bashrc",
    "\u202etxt.exe",
    "trailing. . ",
    "é" * 125 + ".txt",  # 254 bytes of UTF-8: on the wire as is, over 200 when saved
]


def test_hostile_names_land_sanitized_inside_downloads(
    pair: tuple[ChatNode, ChatNode], tmp_path: Path
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    outbox = tmp_path / "outgoing"
    outbox.mkdir()
    downloads = tmp_path / "bob-downloads"
    sent = []
    for i, name in enumerate(HOSTILE_NAMES):
        path = outbox / name
        path.write_bytes(f"file {i}".encode())
        (view,) = alice.cli_json("send-file", "bob", str(path), "--no-wait")
        sent.append((name, view["transfer_id"], f"file {i}".encode()))
    assert len(sent) == len(HOSTILE_NAMES)
    for name, tid, content in sent:
        done = bob.wait_for(is_file_event("file_done", tid), timeout=120)
        saved = Path(done["path"])
        assert saved.parent == downloads, name
        assert saved.read_bytes() == content
        assert saved.name == sanitize_file_name(name), name  # all different once sanitized
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice", "bob", "bob-downloads",
                                                          "outgoing"]  # fmt: skip


def test_resume_after_sender_sigkill(
    pair: tuple[ChatNode, ChatNode], tmp_path: Path, seed: int
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    size = 20 * MiB
    source = tmp_path / "video.mkv"
    digest = write_random(source, size, seed)
    (view,) = alice.cli_json("send-file", "bob", str(source), "--no-wait")
    tid = view["transfer_id"]
    first = bob.wait_for(
        lambda e: e.get("transfer_id") == tid and e.get("type") in ("file_progress", "file_done")
    )
    if first["type"] == "file_progress":
        alice.kill()
        alice.start()
        print("sender killed at", first["bytes_done"])
    done = bob.wait_for(is_file_event("file_done", tid), timeout=300)
    assert sha256_of(Path(done["path"])) == digest, f"seed {seed}"
    # Alice's DONE may still be on its way (and her watch restarted: poll her profile).
    deadline = time.monotonic() + 120
    while transfer(alice, tid)["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert transfer(alice, tid)["state"] == "done"


def test_a_file_changed_after_its_offer_is_refused_and_leaves_nothing(
    pair: tuple[ChatNode, ChatNode], tmp_path: Path, seed: int
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    bob.stop()
    source = tmp_path / "report.pdf"
    write_random(source, 2 * MiB, seed)
    (view,) = alice.cli_json("send-file", "bob", str(source), "--no-wait")
    tid = view["transfer_id"]
    offered(alice, tid)  # changed after its offer, not while it was read
    write_random(source, 2 * MiB, seed + 1)  # same size, other bytes (a later mtime)
    bob.start()  # its watch may attach after the end: alice's has been there all along
    failed = alice.wait_for(is_file_event("file_failed", tid), timeout=180)
    # Never sent under the offer's key and nonces: refused before any block goes.
    assert failed["reason"] == "the file changed since it was offered"
    assert transfer(alice, tid)["state"] == "failed"
    deadline = time.monotonic() + 60  # bob ends it when alice's CANCEL comes
    while transfer(bob, tid)["state"] != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert transfer(bob, tid)["state"] == "cancelled"
    assert "the file changed since it was offered" in transfer(bob, tid)["error"]
    downloads = tmp_path / "bob-downloads"
    assert [p.name for p in downloads.iterdir()] == [".p2pchat-partial"]
    assert list((downloads / ".p2pchat-partial").iterdir()) == []


class BeforeFilesNode(ChatNode):
    def daemon_command(self) -> list[str]:
        command = super().daemon_command()
        launch = "from tests.lan.old_p2pchat import main_before_files; main_before_files()"
        return [command[0], "-c", launch, *command[3:]]  # instead of `-m p2pchat`


def test_a_peer_before_files_gets_no_offer_and_chat_goes_on(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    lan = make_lan(2)
    alice = ChatNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = BeforeFilesNode(lan.hosts[1], tmp_path / "bob", "bob")
    alice.start()
    bob.start()
    try:
        befriend(alice, bob)
        source = tmp_path / "a.txt"
        source.write_bytes(b"for later")
        (view,) = alice.cli_json("send-file", "bob", str(source), "--no-wait")
        offered(alice, view["transfer_id"])  # its offer is queued before the message
        alice.cli("send", "bob", "after the file", check=True)
        # The outbox goes in order: the message came, so the offer was passed over.
        assert [m["text"] for m in bob.wait_messages(1)] == ["after the file"]
        assert transfer(alice, view["transfer_id"])["state"] == "queued"
        assert bob.cli_json("files") == []
    finally:
        alice.stop()
        bob.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_refuses_and_the_sender_keeps_it_queued(
    make_lan: MakeLan, tmp_path: Path, small_disk: Path, seed: int
) -> None:
    lan = make_lan(2)
    alice = ChatNode(lan.hosts[0], tmp_path / "alice", "alice")
    bob = ChatNode(lan.hosts[1], tmp_path / "bob", "bob")
    bob.daemon_args = ["--downloads", str(small_disk)]
    alice.start()
    bob.start()
    try:
        befriend(alice, bob)
        source = tmp_path / "photo.jpg"
        digest = write_random(source, 2 * MiB, seed)
        (view,) = alice.cli_json("send-file", "bob", str(source), "--no-wait")
        tid = view["transfer_id"]
        offered = bob.wait_for(is_file_event("file_offered", tid), timeout=120)
        assert "not enough space" in offered["reason"]
        result = bob.cli("files", "accept", tid[:8])
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "not enough space" in result.stderr
        assert transfer(bob, tid)["state"] == "offered"  # nothing lost: accept it later
        assert transfer(alice, tid)["state"] == "queued"
        assert list(small_disk.iterdir()) in ([], [small_disk / ".p2pchat-partial"])
        # Accepted into a directory with room: it comes, and lands there.
        elsewhere = tmp_path / "elsewhere"
        accepted = bob.cli_json("files", "accept", tid, "--to", str(elsewhere))
        assert accepted["state"] == "accepted"
        done = alice.wait_for(is_file_event("file_done", tid), timeout=120)
        assert sha256_of(elsewhere / "photo.jpg") == digest, f"seed {seed}"
        assert done["path"] == str(source)
        # Another, declined by bob: alice hears it, and it ends on both sides.
        second = tmp_path / "second.jpg"
        second.write_bytes(b"no room for this either")
        (view,) = alice.cli_json("send-file", "bob", str(second), "--no-wait")
        bob.wait_for(is_file_event("file_offered", view["transfer_id"]), timeout=120)
        bob.cli("files", "cancel", view["transfer_id"], check=True)
        cancelled = alice.wait_for(is_file_event("file_cancelled", view["transfer_id"]))
        assert cancelled["by"] == "peer"
        assert transfer(alice, view["transfer_id"])["state"] == "declined"
        assert transfer(bob, view["transfer_id"])["state"] == "declined"
    finally:
        alice.stop()
        bob.stop()
