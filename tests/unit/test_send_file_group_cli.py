"""send-file to a group, the CLI's side: one line per member, the guests left out said
once, and the per-member end lines name the member."""

from __future__ import annotations

from typing import Any

import pytest

from p2pchat.commands.file_cmds import _Display, _send_all


class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    def call(self, method: str, **args: str) -> Any:
        self.calls.append((method, args))
        views = [
            {"transfer_id": f"{i:032x}", "name": "a.jpg", "peer_name": peer, "group": "team"}
            for i, peer in enumerate(("bob", "carol"))
        ]
        return {"files": views, "not_sent_to": ["Dana\x1b[2J"]}


def test_a_group_send_lists_each_member_and_names_the_guests_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = _Client()
    views, failed = _send_all(client, "team", ["/tmp/a.jpg", "/tmp/b.jpg"])  # type: ignore[arg-type]
    assert not failed
    assert [m for m, _ in client.calls] == ["send_files", "send_files"]
    assert [v["peer_name"] for v in views] == ["bob", "carol", "bob", "carol"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("not sent to guests: Dana")
    assert "\x1b" not in err[0]  # a guest's name is the network's: made terminal-safe


def test_end_lines_name_the_member_of_a_group_file(capsys: pytest.CaptureFixture[str]) -> None:
    sent = {"t1": {"name": "a.jpg", "peer_name": "bob", "group": "team"},
            "t2": {"name": "b.txt", "peer_name": "alice"}}  # fmt: skip
    display = _Display(sent, quiet=False)
    display.ended("t1", {"type": "file_done", "size": 10})
    display.ended("t2", {"type": "file_done", "size": 10})
    assert capsys.readouterr().out.splitlines() == ["sent a.jpg (10 B) to bob", "sent b.txt (10 B)"]
