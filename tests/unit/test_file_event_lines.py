"""`p2pchat watch` (no --json) says what a file event means in one readable line."""

from __future__ import annotations

from p2pchat.commands.node_cmds import describe_event

TID = "3fa9" + "0" * 28


def line(**event: object) -> str:
    text = describe_event({"transfer_id": TID, "peer_id": "abcd-efgh", **event})
    return text.split("  ", 1)[1]  # after the time


def test_file_event_lines() -> None:
    assert line(type="file_offered", peer_name="bob", name="a.jpg", size=5, reason="too big") == (
        "bob (abcd-efgh) offers a.jpg (5 bytes): too big [id 3fa90000]"
    )
    assert line(type="file_progress", direction="out", name="a.jpg", state="sending",
                bytes_done=2, size=5) == "a.jpg to abcd-efgh: sending, 2 of 5 bytes"  # fmt: skip
    assert line(type="file_done", direction="in", name="a.jpg", path="/dl/a.jpg") == (
        "a.jpg from abcd-efgh: done, saved as /dl/a.jpg"
    )
    assert line(type="file_failed", direction="in", name="a.jpg", reason="hash") == (
        "a.jpg from abcd-efgh: failed: hash"
    )
    assert line(type="file_cancelled", direction="out", name="a.jpg", by="me", reason="") == (
        "a.jpg to abcd-efgh: cancelled by you"
    )


def test_names_from_the_network_are_made_terminal_safe() -> None:
    shown = line(type="file_done", direction="in", name="a\x1b[2Jb", path="/dl/x")
    assert "\x1b" not in shown
