"""``invite --password`` / ``--password-file``: what is refused, and how it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pchat import link_password
from p2pchat.cli import build_parser
from p2pchat.errors import UserError


def test_the_two_options_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["invite", "--password", "--password-file", "f"])
    assert "not allowed with" in capsys.readouterr().err


def test_a_file_gives_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("  open sesame \nsecond line\n", encoding="utf-8")
    assert link_password.read_link_password(str(path)) == "  open sesame "


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "too short: use 4 characters or more"),
        ("abc", "too short: use 4 characters or more"),
        (" ab \n", "too short: use 4 characters or more"),
        ("\n\n", "too short: use 4 characters or more"),
        ("é" * 129, "too long: at most 128 bytes"),
    ],
)
def test_short_or_long_passwords_are_refused(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "pw"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=why):
        link_password.read_link_password(str(path))


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        link_password.read_link_password(str(tmp_path / "nope"))


def test_the_prompt_asks_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["hunter22", "hunter22"])
    monkeypatch.setattr(link_password.getpass, "getpass", lambda _q: next(answers))
    assert link_password.read_link_password(None) == "hunter22"
    answers = iter(["hunter22", "hunter23"])
    with pytest.raises(UserError, match="differ"):
        link_password.read_link_password(None)


def test_no_terminal_points_at_the_file_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(UserError, match="--password-file"):
        link_password.read_link_password(None)
