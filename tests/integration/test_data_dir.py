"""The data directory is not trusted blindly (issue 9, finding 8), through the real CLI.

Another user who can write into the data dir could plant ``node.lock`` as a link to
any file we can write and have the daemon write its PID there. So: the lock file is
never followed or shared, a data dir that is another user's or writable by others is
refused with one line that says how to fix it, and the dirs we make are 0700.

Every command runs as a subprocess. Commands that would start a node get a wrong
passphrase: whatever the lock does, no node ever starts on this machine's network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_root

PASSPHRASE = "correct horse battery staple"


def p2pchat(
    data_dir: Path, *args: str, passphrase: str = PASSPHRASE
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, P2PCHAT_PASSPHRASE=passphrase)
    env.pop("P2PCHAT_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "p2pchat", "--data-dir", str(data_dir), *args],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask, whatever the runner's
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    data_dir = tmp_path / "profile"
    result = p2pchat(data_dir, "init", "--name", "me")
    assert result.returncode == 0, result.stderr
    return data_dir


# The lock comes first in both; past it, each stops at the next hurdle (no terminal
# for the TUI, the wrong passphrase for the daemon).
NODE_COMMANDS = {"daemon": (["daemon"], "wrong passphrase"), "tui": ([], "needs a terminal")}


@pytest.mark.parametrize("command", sorted(NODE_COMMANDS))
@pytest.mark.parametrize("plant", ["symlink", "dangling-symlink", "hardlink"])
def test_a_planted_node_lock_is_refused_and_its_target_untouched(
    profile: Path, tmp_path: Path, command: str, plant: str
) -> None:
    victim = tmp_path / "victim.txt"
    lock = profile / "node.lock"
    if plant == "dangling-symlink":
        lock.symlink_to(victim)
    else:
        victim.write_text("precious\n")
        if plant == "symlink":
            lock.symlink_to(victim)
        else:
            os.link(victim, lock)

    argv, past_the_lock = NODE_COMMANDS[command]
    line = one_line_error(p2pchat(profile, *argv, passphrase="wrong"))

    assert "node.lock" in line, line
    assert ("not a plain file" if plant == "hardlink" else "symbolic link") in line, line
    if plant == "dangling-symlink":
        assert not victim.exists()
    else:
        assert victim.read_text() == "precious\n"
    # Once the planted file is gone, the lock works again (and makes a plain file).
    lock.unlink()
    assert past_the_lock in one_line_error(p2pchat(profile, *argv, passphrase="wrong"))
    assert lock.is_file()
    assert not lock.is_symlink()
    assert victim.exists() != (plant == "dangling-symlink")


COMMANDS = {
    "init": ["init", "--name", "me"],
    "id": ["id"],
    "history": ["history"],
    "status": ["status"],
    "daemon": ["daemon"],
    "tui": [],
}


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777], ids=oct)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_data_dir_others_can_write_is_refused_in_one_line(
    profile: Path, tmp_path: Path, command: str, mode: int
) -> None:
    data_dir = profile
    if command == "init":  # init refuses an existing profile anyway: an empty dir
        data_dir = tmp_path / "empty"
        data_dir.mkdir()
    data_dir.chmod(mode)
    before = sorted(p.name for p in data_dir.iterdir())

    result = p2pchat(data_dir, *COMMANDS[command], passphrase="wrong")

    line = one_line_error(result)
    assert "writable by other users" in line, line
    assert f"chmod 700 {data_dir}" in line, line
    assert sorted(p.name for p in data_dir.iterdir()) == before  # nothing written


def test_another_users_data_dir_is_refused(profile: Path) -> None:
    require_root()  # only root can give a directory away
    os.chown(profile, 65534, 65534)
    line = one_line_error(p2pchat(profile, "id"))
    assert "belongs to another user" in line, line


def test_a_missing_nested_data_dir_is_made_0700(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b" / "profile"
    result = p2pchat(data_dir, "init", "--name", "me")
    assert result.returncode == 0, result.stderr
    for made in (tmp_path / "a", tmp_path / "a" / "b", data_dir):
        assert made.stat().st_mode & 0o777 == 0o700, (made, oct(made.stat().st_mode))
    assert p2pchat(data_dir, "id").returncode == 0  # and it is accepted afterwards
