"""Every command, given bad input, answers with one line and no traceback.

Runs the real ``p2pchat`` program (a subprocess) for every subcommand the argparse
parser knows, so a new command is covered (and must get rows of its own, see
``test_every_command_has_rows_of_its_own``). Each run:

* exits non-zero,
* prints no ``Traceback`` on stdout or stderr,
* prints at most two lines (a prompt and the error, at most),
* and, where the row says so, says what is wrong (a fragment of the message).

Everything runs in a fresh, empty network namespace (``unshare --net``): a command
that should have failed but starts a node or a server reaches nobody. A read-only
data dir is a read-only bind mount in a private mount namespace (root ignores mode
bits). Prompts (Ctrl-D at the passphrase) and the TUI run under a real pseudo-terminal.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from p2pchat.cli import build_parser
from tests.conftest import require_command, require_root

PASSPHRASE = "correct horse"
TIMEOUT = 60
MOUNT_FAILED = 97  # the row's mount itself failed: it proved nothing
TUI = "(no command)"
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")
ONE_MB = b"a" * (1 << 20)


@dataclass(frozen=True)
class Case:
    command: str  # the subcommand, or TUI
    argv: tuple[str, ...]
    expect: str = ""  # a fragment the output must contain
    stdin: bytes = b""
    read_only: bool = False  # {ro} is mounted read-only for this run
    full_disk: bool = False  # {full} is a 64 KiB file system for this run
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        shown = " ".join(a if len(a) < 30 else a[:26] + "…" for a in self.argv)
        mounts = (" (ro)" if self.read_only else "") + (" (full)" if self.full_disk else "")
        return f"{shown}{' <stdin' if self.stdin else ''}{mounts}"


@dataclass(frozen=True)
class Places:
    profile: Path  # a real profile, passphrase PASSPHRASE
    ro: Path  # mounted read-only by rows that ask: ro/profile (a copy), ro/empty
    full: Path  # a tiny file system is mounted there by rows that ask
    file: Path  # a regular file where a directory is expected
    scratch: Path  # fresh paths under it for rows that would create something
    missing: Path  # does not exist


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def positionals(sub: argparse.ArgumentParser) -> list[str]:
    """Plausible values for the required positional arguments of ``sub``."""
    return [
        "bob"
        for action in sub._actions
        if not action.option_strings and action.nargs in (None, "+", argparse.ONE_OR_MORE)
    ]


def generic_cases() -> list[Case]:
    """Bad inputs that every command (and the TUI) must answer in one line."""
    cases: list[Case] = []
    for name, sub in [*subcommands().items(), (TUI, None)]:
        base = [] if sub is None else [name, *positionals(sub)]
        cases += [
            Case(name, (*base, "--no-such-option"), expect="--no-such-option"),
            Case(name, (*base, "--data-dir", "{file}")),
            Case(name, (*base, "--data-dir", "{ro}/profile"), read_only=True),
        ]
    return cases


NO_NODE = "no p2pchat node is running"
RO = "read-only file system"
SPECIFIC = [
    # the TUI (stdin is not a terminal here; under a pty below)
    Case(TUI, ("--interface", "wlan9", "--data-dir", "{profile}"), expect="wlan9"),
    Case(TUI, ("--port", "99999"), expect="0 to 65535"),
    Case(TUI, ("--port", "-1"), expect="0 to 65535"),
    # init
    Case("init", ("init", "--data-dir", "{scratch}/a", "--name", " "), expect="--name"),
    Case("init", ("init", "--data-dir", "{ro}/empty"), read_only=True, expect=RO),
    Case("init", ("init", "--data-dir", "{ro}/new"), read_only=True, expect=RO),
    Case("init", ("init", "--data-dir", "{profile}"), expect="already exists"),
    Case("init", ("init", "--data-dir", "{full}/p"), full_disk=True, expect="disk"),
    # daemon: every one fails before it binds or joins multicast
    Case("daemon", ("daemon", "--data-dir", "{profile}", "--interface", "wlan9"), expect="wlan9"),
    Case("daemon", ("daemon", "--data-dir", "{profile}", "--port", "99999"), expect="0 to 65535"),
    Case("daemon", ("daemon", "--data-dir", "{profile}", "--port", "-1"), expect="0 to 65535"),
    Case("daemon", ("daemon", "--port", "http"), expect="not a whole number"),
    Case("daemon", ("daemon", "--data-dir", "{ro}/profile"), read_only=True, expect="node.lock"),
    Case(
        "daemon",
        ("daemon", "--data-dir", "{profile}"),
        env={"P2PCHAT_PASSPHRASE": "wrong"},
        expect="wrong passphrase",
    ),
    Case("daemon", ("daemon", "--data-dir", "{missing}"), expect="p2pchat init"),
    # id
    Case("id", ("id", "--data-dir", "{ro}/profile"), read_only=True, expect=RO),
    Case(
        "id",
        ("id", "--data-dir", "{profile}", "--passphrase-file", "{missing}"),
        expect="does not exist",
    ),
    # commands for the running node (there is none)
    *(
        Case(name, (name, "--data-dir", "{profile}"), expect=NO_NODE)
        for name in ("status", "peers", "contacts", "requests", "watch", "invites", "guests")
    ),
    *(
        Case(name, (name, "bob", "--data-dir", "{profile}"), expect=NO_NODE)
        for name in ("add", "accept", "reject", "verify", "revoke", "admit")
    ),
    Case("groups", ("groups", "--data-dir", "{profile}"), expect=NO_NODE),
    Case("group", ("group",), expect="name an ACTION"),
    Case("group", ("group", "explode"), expect="explode"),
    Case("group", ("group", "create", "x" * 65), expect="64 bytes"),
    Case("group", ("group", "create", "fam\x1b[2J"), expect="control characters"),
    Case("group", ("group", "create", "fam", *[f"m{i}" for i in range(32)]), expect="at most 32"),
    Case("group", ("group", "leave", "fam", "--data-dir", "{profile}"), expect=NO_NODE),
    Case("send", ("send", "bob", "-"), stdin=ONE_MB, expect="1,048,576 bytes"),
    Case("send", ("send", "bob", "x" * 70_000), expect="70,000 bytes"),
    Case("send", ("send", "bob", "-"), stdin=b"\xff\xfe\n", expect="UTF-8"),
    Case("send", ("send", "bob", " "), expect="empty"),
    # files
    Case("send-file", ("send-file", "bob", "{file}", "--data-dir", "{profile}"), expect=NO_NODE),
    Case("send-file", ("send-file", "bob"), expect="PATH"),
    Case("files", ("files", "--data-dir", "{profile}"), expect=NO_NODE),
    Case("files", ("files", "explode"), expect="explode"),
    Case("files", ("files", "accept", "3fa9", "--data-dir", "{profile}"), expect=NO_NODE),
    Case("files", ("files", "cancel"), expect="ID"),
    Case(
        "daemon",
        ("daemon", "--data-dir", "{profile}", "--downloads", "{file}"),
        expect="--downloads",
    ),
    # history
    Case("history", ("history", "--limit", "0"), expect="from 1"),
    Case("history", ("history", "--limit", "1" + "0" * 30), expect="from 1"),
    Case("history", ("history", "bob", "--since", "the day before"), expect="--since"),
    Case("history", ("history", "--export", "{scratch}/x.md"), expect="needs a PEER"),
    Case("history", ("history", "--data-dir", "{ro}/profile"), read_only=True, expect=RO),
    Case("history", ("history", "nobody", "--data-dir", "{profile}"), expect="nobody"),
    # invite
    Case("invite", ("invite", "--server", "http://chat.example"), expect="https"),
    Case("invite", ("invite", "--password-file", "{missing}"), expect="does not exist"),
    Case("invite", ("invite", "--server-token", "x" * 20), expect="--server URL"),
    # server
    Case("server", ("server", "--data-dir", "{profile}"), expect=NO_NODE),
    Case("server", ("server", "set", "https://a.example/path"), expect="--server"),
    Case(
        "server",
        ("server", "set", "https://a.example", "--token-file", "{missing}"),
        expect="cannot read",
    ),
    Case("invite", ("invite", "--expires", "0"), expect="1 second"),
    Case("invite", ("invite", "--expires", "8d"), expect="7 days"),
    Case("invite", ("invite", "--expires", "soon"), expect="not a duration"),
    Case("invite", ("invite", "--uses", "0"), expect="from 1 to 100"),
    Case("invite", ("invite", "--uses", "101"), expect="from 1 to 100"),
    # signal-server: each fails before it listens
    Case("signal-server", ("signal-server", "--port", "99999"), expect="0 to 65535"),
    Case("signal-server", ("signal-server", "--port", "-1"), expect="0 to 65535"),
    Case("signal-server", ("signal-server", "--cert", "{missing}"), expect="--key"),
    Case(
        "signal-server",
        ("signal-server", "--data-dir", "{ro}/new"),
        read_only=True,
        expect=RO,
    ),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Places:
    require_root()  # network and mount namespaces
    require_command("unshare")
    root = tmp_path_factory.mktemp("bad-inputs")
    profile = root / "profile"
    made = subprocess.run(
        [sys.executable, "-m", "p2pchat", "init", "--data-dir", str(profile), "--name", "alice"],
        env={**os.environ, "P2PCHAT_PASSPHRASE": PASSPHRASE},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert made.returncode == 0, made.stderr
    ro = root / "ro"
    ro.mkdir(mode=0o700)
    subprocess.run(["cp", "-a", str(profile), str(ro / "profile")], check=True)
    (ro / "empty").mkdir(mode=0o700)
    (root / "a-file").write_text("not a directory\n")
    scratch = root / "scratch"
    scratch.mkdir(mode=0o700)
    (root / "full").mkdir(mode=0o700)
    return Places(profile, ro, root / "full", root / "a-file", scratch, root / "missing")


def expand(argv: tuple[str, ...], places: Places) -> list[str]:
    names = {
        "{profile}": places.profile,
        "{ro}": places.ro,
        "{full}": places.full,
        "{file}": places.file,
        "{scratch}": places.scratch,
        "{missing}": places.missing,
    }
    out = []
    for arg in argv:
        for key, path in names.items():
            arg = arg.replace(key, str(path))
        out.append(arg)
    return out


def wrapped(
    argv: list[str], places: Places, *, read_only: bool = False, full_disk: bool = False
) -> list[str]:
    """``p2pchat argv`` in a new empty network namespace, with the mounts a row asks for."""
    program = [sys.executable, "-m", "p2pchat", *argv]
    mounts = []
    if read_only:
        ro = shlex.quote(str(places.ro))
        mounts.append(f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} {ro}")
    if full_disk:
        mounts.append(f"mount -t tmpfs -o size=64k,mode=0700 tmpfs {shlex.quote(str(places.full))}")
    if not mounts:
        return ["unshare", "--net", "--", *program]
    script = f'{" && ".join(mounts)} || exit {MOUNT_FAILED}; exec "$@"'
    return [
        "unshare", "--net", "--mount", "--propagation", "private", "--",
        "sh", "-c", script, "sh", *program,
    ]  # fmt: skip


def environment(case_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PCHAT_")}
    env["P2PCHAT_PASSPHRASE"] = PASSPHRASE
    env.update(case_env)
    return {k: v for k, v in env.items() if v != ""}  # "" in a row: unset it


def check_answer(output: str, returncode: int, case_expect: str) -> None:
    assert returncode != MOUNT_FAILED, "the mount the row asks for failed"
    assert returncode != 0, f"exit code 0 for a bad input:\n{output}"
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) <= 2, f"{len(lines)} lines:\n{output}"
    if case_expect:
        assert case_expect.lower() in output.lower(), output


@pytest.mark.parametrize("case", generic_cases() + SPECIFIC, ids=lambda c: c.id)
def test_bad_input_gets_one_line(case: Case, places: Places) -> None:
    argv = expand(case.argv, places)
    result = subprocess.run(
        wrapped(argv, places, read_only=case.read_only, full_disk=case.full_disk),
        input=case.stdin,
        capture_output=True,
        env=environment(case.env),
        timeout=TIMEOUT,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    check_answer(output, result.returncode, case.expect)


def test_every_command_has_rows_of_its_own() -> None:
    covered = {case.command for case in SPECIFIC}
    missing = sorted((set(subcommands()) | {TUI}) - covered)
    assert not missing, f"add bad-input rows to SPECIFIC for: {missing}"


# -- under a pseudo-terminal: prompts and the TUI ------------------------------------


@dataclass(frozen=True)
class TtyCase:
    argv: tuple[str, ...]
    expect: str
    ctrl_d_at: bytes = b""  # answer this prompt with Ctrl-D
    env: dict[str, str] = field(default_factory=dict)


NO_PASSPHRASE = {"P2PCHAT_PASSPHRASE": ""}
TTY_CASES = [
    TtyCase(("--interface", "wlan9", "--data-dir", "{profile}"), expect="wlan9"),
    TtyCase(
        ("id", "--data-dir", "{profile}"),
        expect="Ctrl-D",
        ctrl_d_at=b"Profile passphrase:",
        env=NO_PASSPHRASE,
    ),
    TtyCase(
        ("init", "--data-dir", "{scratch}/tty"),
        expect="Ctrl-D",
        ctrl_d_at=b"Profile passphrase:",
        env=NO_PASSPHRASE,
    ),
    TtyCase(
        ("daemon", "--data-dir", "{profile}"),
        expect="Ctrl-D",
        ctrl_d_at=b"Profile passphrase:",
        env=NO_PASSPHRASE,
    ),
    TtyCase(
        ("history", "--data-dir", "{profile}"),
        expect="Ctrl-D",
        ctrl_d_at=b"Profile passphrase:",
        env=NO_PASSPHRASE,
    ),
]


@pytest.mark.parametrize("case", TTY_CASES, ids=lambda c: " ".join(c.argv))
def test_bad_input_in_a_terminal_gets_one_line(case: TtyCase, places: Places) -> None:
    argv = wrapped(expand(case.argv, places), places)
    returncode, raw = run_in_pty(argv, environment(case.env), case.ctrl_d_at)
    output = ANSI.sub(b"", raw).decode(errors="replace").replace("\r", "")
    check_answer(output, returncode, case.expect)


def run_in_pty(argv: list[str], env: dict[str, str], ctrl_d_at: bytes) -> tuple[int, bytes]:
    """Run ``argv`` on a new 80x24 pseudo-terminal (its controlling terminal); its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def become_session_leader_with_tty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
        preexec_fn=become_session_leader_with_tty,
    )
    os.close(slave)
    output = b""
    answered = not ctrl_d_at
    deadline = time.monotonic() + TIMEOUT
    try:
        for chunk in _read_until_closed(master, deadline):
            output += chunk
            if not answered and ctrl_d_at in output:
                os.write(master, b"\x04")
                answered = True
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        os.close(master)
    return returncode, output


def _read_until_closed(master: int, deadline: float) -> Iterator[bytes]:
    while True:
        if time.monotonic() > deadline:
            raise AssertionError("the program did not end")
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            return
        if not chunk:
            return
        yield chunk
