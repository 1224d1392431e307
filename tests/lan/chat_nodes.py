"""Real p2pchat nodes in network namespaces, driven through the real CLI.

Each ``ChatNode`` is a profile directory plus a ``p2pchat daemon`` process in one
host of a :class:`~tests.lan.netns.Lan`. CLI commands reach the daemon through its
control socket (a path on the shared filesystem, so they run from anywhere).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.lan.netns import PYTHON, Host

PASSPHRASE = "correct horse battery staple"
Event = dict[str, Any]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["P2PCHAT_PASSPHRASE"] = PASSPHRASE
    env.pop("P2PCHAT_HOME", None)
    return env


class ChatNode:
    def __init__(self, host: Host, data_dir: Path, name: str) -> None:
        self.host = host
        self.data_dir = data_dir
        self.name = name
        self.daemon: subprocess.Popen[bytes] | None = None
        self.interface_only = True  # the daemon runs with --interface eth0
        self.daemon_args: list[str] = []  # more daemon options (e.g. --downloads DIR)
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._watch: subprocess.Popen[bytes] | None = None
        result = self.cli("init", "--name", name)
        assert result.returncode == 0, result.stderr
        self.peer_id: str = json.loads(self.cli("id", "--json").stdout)["peer_id"]

    # -- processes -------------------------------------------------------------

    def daemon_command(self) -> list[str]:
        """How the daemon is started (a subclass may start a patched one)."""
        where = ["--interface", self.host.ifname] if self.interface_only else []
        return [PYTHON, "-m", "p2pchat", "--data-dir", str(self.data_dir), "daemon", "--json",
                *where, *self.daemon_args]  # fmt: skip

    def start(
        self,
        timeout: float = 30.0,
        *,
        prefix: Sequence[str] = (),
        interface: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start the daemon on ``eth0`` (``interface=False``: every interface, as by
        default); ``prefix`` wraps it (e.g. ``prlimit --nofile=1024:4096 --``), ``env``
        adds to its environment."""
        self.interface_only = interface
        self.daemon = self.host.popen(
            [*prefix, *self.daemon_command()],
            env={**cli_env(), **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.daemon.stdout is not None
        line = self.daemon.stdout.readline()
        if not line:
            _, err = self.daemon.communicate(timeout=5)
            raise AssertionError(f"daemon for {self.name} did not start: {err.decode()}")
        assert json.loads(line)["type"] == "node_started"
        self._start_watch()

    def kill(self) -> None:
        """SIGKILL: no goodbye, no clean shutdown."""
        if self.daemon is not None:
            self.daemon.send_signal(signal.SIGKILL)
            self.daemon.wait(timeout=10)
            self.daemon = None
        self._stop_watch()

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.terminate()
            self.daemon.wait(timeout=20)
            self.daemon = None
        self._stop_watch()

    def cli(
        self, *args: str, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [PYTHON, "-m", "p2pchat", "--data-dir", str(self.data_dir), *args],
            env=cli_env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check:
            assert result.returncode == 0, f"p2pchat {' '.join(args)}: {result.stderr}"
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json", check=True).stdout)

    # -- events ----------------------------------------------------------------

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 60.0) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [e.get("type") for e in self.events[-20:]]
                    raise AssertionError(f"{self.name}: timed out; last events: {kinds}")
                self._cond.wait(left)

    def messages_in(self) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.get("type") == "message" and e["direction"] == "in"]

    def wait_messages(self, count: int, timeout: float = 120.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages_in()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: {len(self.messages_in())} of {count} messages arrived"
                    )
                self._cond.wait(left)
        return self.messages_in()

    def wait_history(self, peer: str, count: int, timeout: float = 120.0) -> list[Event]:
        """Poll ``history PEER --json`` (the profile itself) until ``count`` messages came in.

        For messages that may arrive before ``watch`` is attached (just after a start).
        """
        deadline = time.monotonic() + timeout
        while True:
            rows = [m for m in self.cli_json("history", peer) if m["direction"] == "in"]
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(1)

    def _start_watch(self) -> None:
        self._watch = subprocess.Popen(
            [PYTHON, "-m", "p2pchat", "--data-dir", str(self.data_dir), "watch", "--json"],
            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        threading.Thread(target=self._read_watch, args=(self._watch,), daemon=True).start()

    def _read_watch(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.terminate()
            self._watch.wait(timeout=10)
            self._watch = None


def befriend(a: ChatNode, b: ChatNode) -> None:
    """a asks, b accepts; both end up with a pinned, accepted contact."""
    a.wait_for(lambda e: e.get("type") == "peer_found" and e["peer_id"] == b.peer_id)
    b.wait_for(lambda e: e.get("type") == "peer_found" and e["peer_id"] == a.peer_id)
    a.cli("add", b.peer_id, check=True)
    b.wait_for(lambda e: e.get("type") == "contact_request" and e["peer_id"] == a.peer_id)
    b.cli("accept", a.name, check=True)
    a.wait_for(lambda e: e.get("type") == "contact_accepted" and e["peer_id"] == b.peer_id)
    for x, y in ((a, b), (b, a)):
        x.wait_for(
            lambda e, y=y: e.get("type") == "session" and e["peer_id"] == y.peer_id
            and e["state"] == "open"
        )  # fmt: skip
