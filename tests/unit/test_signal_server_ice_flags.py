"""`p2pchat signal-server` STUN/TURN flags (signaling/cli.py): good values build the
IceProvider, every bad one is one line and exit code 2, before any socket opens."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from p2pchat.cli_args import OneLineParser
from signaling.cli import add_signal_server_arguments, ice_provider_from_args, main
from signaling.turn_credentials import TurnConfigError, mint

TURN = "turn:turn.example.org:3478?transport=udp"
STUN = "stun:turn.example.org:3478"
SECRET = "a-secret-of-24-characters"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "turn-secret"
    path.write_text(f"  {SECRET}  \nsecond line is ignored\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def parse(*argv: str) -> object:
    parser = OneLineParser(prog="p2pchat signal-server")
    add_signal_server_arguments(parser)
    return ice_provider_from_args(parser.parse_args(list(argv)))


def test_no_ice_flags_no_provider() -> None:
    assert parse() is None


def test_flags_build_the_provider(secret_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    provider = parse(
        "--turn-url", "turns:turn.example.org:5349?transport=tcp",
        "--turn-url", TURN,
        "--stun-url", STUN,
        "--turn-secret-file", str(secret_file),
        "--turn-ttl", "600",
        "--ice-policy", "relay",
    )  # fmt: skip
    assert provider is not None
    username, password = mint(SECRET.encode(), "r" * 22, 1_000, 600)
    assert provider.for_room("r" * 22, 1_000) == {  # type: ignore[attr-defined]
        "ice_servers": [
            {
                "urls": [TURN, "turns:turn.example.org:5349?transport=tcp"],
                "username": username,
                "credential": password,
            },
            {"urls": [STUN]},
        ],
        "policy": "relay",
        "expires_at": 1_600,
    }
    assert capsys.readouterr().err == ""  # 0600: no warning


def test_readable_secret_file_warns_in_one_line(
    secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chmod(secret_file, 0o644)
    assert parse("--turn-url", TURN, "--turn-secret-file", str(secret_file)) is not None
    err = capsys.readouterr().err
    assert "readable by others" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--turn-url", TURN], "needs --turn-secret-file"),
        (["--stun-url", STUN, "--turn-secret-file", "SECRET"], "needs a --turn-url"),
        (["--turn-ttl", "600"], "need a --turn-url or --stun-url"),
        (["--turn-url", TURN, "--turn-secret-file", "SECRET", "--turn-ttl", "299"], "300..3600"),
        (["--turn-url", TURN, "--turn-secret-file", "SECRET", "--turn-ttl", "3601"], "300..3600"),
        (["--turn-url", TURN, "--turn-secret-file", "SECRET", "--ice-policy", "x"], "all, relay"),
        (["--turn-url", "turn:[::1]", "--turn-secret-file", "SECRET"], "IPv6"),
        (["--turn-url", "turns:h", "--turn-secret-file", "SECRET"], "transport=tcp"),
        (["--stun-url", "stun:h", "--ice-policy", "relay"], "needs a --turn-url"),
        (["--turn-url", TURN, "--turn-secret-file", "SHORT"], "at least 16"),
        (["--turn-url", TURN, "--turn-secret-file", "MISSING"], "cannot read the TURN secret"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    argv: list[str],
    message: str,
    secret_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    short = tmp_path / "short"
    short.write_text("fifteen chars..\n", encoding="utf-8")
    os.chmod(short, 0o600)
    files = {"SECRET": str(secret_file), "SHORT": str(short), "MISSING": str(tmp_path / "nope")}
    argv = [files.get(arg, arg) for arg in argv]
    with pytest.raises(TurnConfigError, match=message):
        parse(*argv)
    code = main(["--insecure-http", "--host", "127.0.0.1", "--port", "0", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert message.split(".")[0] in err


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o640, True), (0o604, True)])
def test_a_readable_owner_token_file_warns_in_one_line(
    mode: int, warned: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As --turn-secret-file does. The port is taken, so the server stops right after
    its checks (with one line of its own) and nothing listens."""
    token = tmp_path / "owner-token"
    token.write_text("an-owner-token-of-32-characters!\n", encoding="utf-8")
    os.chmod(token, mode)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["--insecure-http", "--host", "127.0.0.1", "--port", port]
        assert main([*argv, "--owner-token-file", str(token)]) == 1
    err = capsys.readouterr().err
    assert ("readable by others" in err) is warned
    assert err.count("WARNING") == int(warned)
