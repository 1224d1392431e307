"""The entry: one node per profile (the daemon's error), wrong passphrase, no terminal."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from p2pchat.commands.daemon import run_daemon
from p2pchat.errors import UserError
from p2pchat.node_lock import NodeLock
from p2pchat.store import KdfLimits, WrongPassphrase, create_profile
from p2pchat.tui.app import ChatApp
from p2pchat.tui.launch import NO_TERMINAL, run_tui

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "right one"


@pytest.fixture
def profile_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "profile"
    with create_profile(
        data_dir, PASSPHRASE, name="alice", identity_seed=bytes(32), kdf_limits=FAST
    ):
        pass
    return data_dir


def args_for(data_dir: Path) -> argparse.Namespace:
    return argparse.Namespace(data_dir=str(data_dir), passphrase_file=None)


def test_second_instance_gets_the_daemons_error(profile_dir: Path) -> None:
    lock = NodeLock(profile_dir)  # another p2pchat (TUI or daemon) holds the profile
    lock.acquire()
    try:
        with pytest.raises(UserError) as from_tui:
            run_tui(args_for(profile_dir))
        daemon_args = argparse.Namespace(
            **vars(args_for(profile_dir)), verbose=False, interface=None, port=0, json=False
        )
        with pytest.raises(UserError) as from_daemon:
            run_daemon(daemon_args)
    finally:
        lock.release()
    assert str(from_tui.value) == str(from_daemon.value)
    assert "already running" in str(from_tui.value)


def test_without_a_terminal_it_says_so(profile_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "p2pchat", "--data-dir", str(profile_dir)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == f"p2pchat: {NO_TERMINAL}"
    lock = NodeLock(profile_dir)  # and the lock was let go
    lock.acquire()
    lock.release()


async def test_wrong_passphrase_from_the_environment_ends_the_app(profile_dir: Path) -> None:
    lock = NodeLock(profile_dir)
    lock.acquire()
    try:
        app = ChatApp(profile_dir, lock, lock_held=True, passphrase="wrong", kdf_limits=FAST)
        async with app.run_test() as pilot:
            await pilot.pause(0.5)
        assert isinstance(app.error, WrongPassphrase)
        assert app.return_code == 1
        assert app.host is None  # the node never started
    finally:
        lock.release()
