"""sanitize_file_name: what a peer's offered name becomes on our disk."""

from __future__ import annotations

import pytest

from p2pchat.protocol.file_names import sanitize_file_name

LONG_EXT = "a" * 300 + ".jpeg"
CASES = [
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd", "etc_passwd"),
    ("..\\..\\windows\\win.ini", "windows_win.ini"),
    ("/abs/path.txt", "abs_path.txt"),
    ("a/./b", "a_b"),
    ("CON", "_CON"),
    ("con.txt", "_con.txt"),
    ("Con .tar.gz", "_Con .tar.gz"),
    ("LPT9", "_LPT9"),
    ("com1.log", "_com1.log"),
    ("COM10", "COM10"),
    ("console.txt", "console.txt"),
    ("a" * 300, "a" * 200),
    ("bad\x00na\x1fme\x7f\x85.txt", "badname.txt"),
    ("\u202etxt.exe", "txt.exe"),
    ("x\u2066y\u2069z", "xyz"),
    (".hidden", "hidden"),
    ("..hidden.txt", "hidden.txt"),
    ("...", "file"),
    ("", "file"),
    ("///", "file"),
    ("\\/\\", "file"),
    ("trailing. . ", "trailing"),
    ("what?:*.txt", "what___.txt"),
    ("Ünïcode ✓.png", "Ünïcode ✓.png"),
    (LONG_EXT, "a" * 195 + ".jpeg"),
    ("b" * 300 + ".this-extension-is-too-long", ("b" * 300 + ".this-extension-is-too-long")[:200]),
    ("é" * 150, "é" * 100),
    ("x" + "é" * 150, "x" + "é" * 99),  # 201 bytes: cut before the split character
    ("€" * 100 + ".txt", "€" * 65 + ".txt"),
]


@pytest.mark.parametrize(("name", "want"), CASES)
def test_sanitize(name: str, want: str) -> None:
    got = sanitize_file_name(name)
    assert got == want
    assert len(got.encode("utf-8")) <= 200
    assert sanitize_file_name(got) == got  # already safe names stay as they are
