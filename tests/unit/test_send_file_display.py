"""send-file's plain progress lines (no terminal): reading the file to hash it has its
own lines, and the send's own tenths still show after it."""

from __future__ import annotations

import pytest

from p2pchat.commands.file_cmds import _Display

TID = "ab" * 16


def test_hashing_progress_does_not_use_up_the_sends_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    display = _Display({TID: {"name": "big.iso"}}, quiet=False)
    size = 10 * 1024 * 1024
    for state, done in (("hashing", size // 2), ("hashing", size), ("sending", size // 2)):
        event = {"state": state, "bytes_done": done, "size": size, "rate": 0}
        display.progress(TID, event)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "big.iso (reading)", "big.iso (reading)", "big.iso",
    ]  # fmt: skip
    assert "(50%)" in lines[-1]
