"""Files over the direct TCP path between real daemons on a real (namespaced) LAN.

Two native nodes carry a file's chunks over TCP (transport/direct_files.py), the data
channel as the fallback: with TCP to the receiver blocked the file still arrives, and
a direct stream killed mid-transfer resumes on the data channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lan.chat_nodes import ChatNode, befriend
from tests.lan.netns import Host
from tests.lan.test_lan_files import (
    MiB,
    is_file_event,
    pair,  # noqa: F401 (the fixture)
    seed,  # noqa: F401 (the fixture)
    sha256_of,
    transfer,
    write_random,
)

pytestmark = pytest.mark.lan

FAULTS = "p2pchat_direct_faults"


def nft(host: Host, rule: str) -> None:
    """One input rule in this host (its own table, replaced each time)."""
    script = (
        f"table inet {FAULTS}\n"
        f"delete table inet {FAULTS}\n"
        f"table inet {FAULTS} {{\n"
        "  chain input {\n"
        "    type filter hook input priority -20; policy accept;\n"
        f"    {rule}\n"
        "  }\n"
        "}\n"
    )
    result = host.run(["nft", "-f", "-"], input=script)
    assert result.returncode == 0, result.stderr


def send(alice: ChatNode, source: Path) -> dict[str, Any]:
    result = alice.cli("send-file", "bob", str(source), "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    (sent,) = json.loads(result.stdout)
    assert sent["state"] == "done"
    return dict(sent)


def test_a_50mb_file_goes_over_the_direct_path(
    pair: tuple[ChatNode, ChatNode],  # noqa: F811
    tmp_path: Path,
    seed: int,  # noqa: F811
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    size = 50 * MiB
    source = tmp_path / "big.bin"
    digest = write_random(source, size, seed)
    sent = send(alice, source)
    assert sent["path_used"] == "direct"
    assert size <= sent["bytes_sent_total"] <= size + MiB  # no resend without a fault
    done = bob.wait_for(is_file_event("file_done", sent["transfer_id"]))
    assert done["path_used"] == "direct"
    assert sha256_of(Path(done["path"])) == digest, f"seed {seed}"


def test_with_tcp_to_the_receiver_blocked_the_data_channel_carries_it(
    pair: tuple[ChatNode, ChatNode],  # noqa: F811
    tmp_path: Path,
    seed: int,  # noqa: F811
) -> None:
    alice, bob = pair
    befriend(alice, bob)  # the session is up: no new TCP connection is needed for it
    nft(bob.host, "tcp flags & (syn | ack) == syn counter drop")  # no new TCP to bob
    size = 20 * MiB
    source = tmp_path / "blocked.bin"
    digest = write_random(source, size, seed)
    sent = send(alice, source)
    assert sent["path_used"] == "datachannel"
    done = bob.wait_for(is_file_event("file_done", sent["transfer_id"]))
    assert done["path_used"] == "datachannel"
    assert sha256_of(Path(done["path"])) == digest, f"seed {seed}"


def test_a_direct_stream_killed_mid_transfer_resumes_and_completes(
    pair: tuple[ChatNode, ChatNode],  # noqa: F811
    tmp_path: Path,
    seed: int,  # noqa: F811
) -> None:
    alice, bob = pair
    befriend(alice, bob)
    # TCP into bob at most ~8 MB/s: the file is still on its way at 10 MB.
    nft(bob.host, "meta l4proto tcp limit rate over 8 mbytes/second counter drop")
    size = 50 * MiB
    source = tmp_path / "killed.bin"
    digest = write_random(source, size, seed)
    (view,) = alice.cli_json("send-file", "bob", str(source), "--no-wait")
    tid = view["transfer_id"]
    reached = bob.wait_for(
        lambda e: e.get("type") in ("file_progress", "file_done") and e.get("transfer_id") == tid
        and e.get("direction") == "in" and e.get("bytes_done", e.get("size", 0)) > 10 * MiB,
        timeout=120,
    )  # fmt: skip
    killed = reached["type"] == "file_progress"
    if killed:  # every established TCP socket in bob: the direct stream
        result = bob.host.run(["ss", "-K", "-t", "state", "established"])
        assert result.returncode == 0, result.stderr
        print("direct stream killed at", reached["bytes_done"])
    done = alice.wait_for(is_file_event("file_done", tid), timeout=300)
    got = bob.wait_for(is_file_event("file_done", tid), timeout=60)
    assert sha256_of(Path(got["path"])) == digest, f"seed {seed}"
    sent_total = transfer(alice, tid)["bytes_sent_total"]
    assert done["bytes_sent_total"] == sent_total
    assert size <= sent_total <= size + 3 * MiB
    if killed:
        assert done["path_used"] == "mixed"  # the rest came over the data channel
        assert got["path_used"] == "mixed"
