"""Fault injection and checking for the LAN fault tests (tests/lan/test_faults*.py).

Faults (no ``tc netem`` on this kernel, see DESIGN.md §5):

* :class:`LinkFlapper`: unplugs a host's cable every few seconds, from a thread.
* :class:`TcpFault`: nftables in a host's namespace resets (or drops) TCP to a port.
* :class:`SmallDisk`: a small tmpfs mounted on a directory, to fill it up.
* SIGKILL: :meth:`ChatNode.kill`; then :func:`integrity_check` on the profile.

Checks read the receiver's profile (``history --json``, and the raw arrival order),
never ``watch``: a watcher misses what arrives while it is being (re)attached.

Figures go to ``bench/results/faults-<name>.json`` (git-ignored) and to stdout.
``P2PCHAT_FAULTS=full`` selects the long profile; ``P2PCHAT_FAULTS_SEED`` fixes the
seed of the random choices (it is printed either way).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlcipher3

from p2pchat.store.keys import derive_key
from tests.lan.chat_nodes import PASSPHRASE, ChatNode
from tests.lan.netns import Host

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
TCP_FAULT_TABLE = "p2pchat_tcp_faults"


def full_profile() -> bool:
    """True when the long fault runs were asked for (``P2PCHAT_FAULTS=full``)."""
    return os.environ.get("P2PCHAT_FAULTS", "").strip().lower() == "full"


def seeded_rng(test: str) -> tuple[random.Random, int]:
    """A RNG for the test's random choices; the seed is printed so a run can be replayed."""
    env = os.environ.get("P2PCHAT_FAULTS_SEED", "").strip()
    seed = int(env) if env else random.SystemRandom().randrange(2**32)
    print(f"[{test}] seed {seed} (replay with P2PCHAT_FAULTS_SEED={seed})", flush=True)
    return random.Random(seed), seed


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"faults-{name}.json"
    figures = {"test": name, "profile": "full" if full_profile() else "quick", **figures}
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"[{name}] {json.dumps(figures)}", flush=True)
    return path


class FaultNode(ChatNode):
    """A ChatNode whose daemon stderr is read (so a chatty node never blocks on a full
    pipe) and kept, across restarts, for the failure report."""

    def start(
        self,
        timeout: float = 30.0,
        *,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        super().start(timeout, prefix=prefix, env=env)
        assert self.daemon is not None
        assert self.daemon.stderr is not None
        if not hasattr(self, "log"):
            self.log: list[str] = []
        self.log.append(f"--- {self.name}: daemon started (pid {self.daemon.pid}) ---\n")
        threading.Thread(target=self._drain, args=(self.daemon.stderr,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for raw in stream:
            self.log.append(raw.decode("utf-8", "replace"))

    def alive(self) -> bool:
        return self.daemon is not None and self.daemon.poll() is None

    def report(self, events: int = 40) -> str:
        """The last events and log lines, for an assertion message."""
        seen = [
            {k: e.get(k) for k in ("type", "state", "reason") if k in e}
            for e in self.events
            if e.get("type") not in ("message", "receipt")
        ][-events:]
        counts = Counter(f"{e.get('type')}:{e.get('direction', '')}" for e in self.events)
        peers = "?"
        if self.alive():
            with contextlib.suppress(Exception):
                peers = json.dumps(self.cli_json("peers"))
        log = "".join(getattr(self, "log", [])[-60:])
        return (
            f"\n=== {self.name} (alive: {self.alive()}) peers now: {peers}"
            f"\nevent counts: {dict(counts)}\nevents: {seen}\n{log}"
        )


# -- the profile on disk ---------------------------------------------------------------


def profile_key(data_dir: Path) -> bytes:
    """The SQLCipher key of a test profile (the test passphrase, the default KDF)."""
    salt = (data_dir / "profile.salt").read_bytes()
    return derive_key(PASSPHRASE, salt)


def open_raw(data_dir: Path, key: bytes | None = None, *, readonly: bool = False) -> Any:
    """A plain sqlcipher3 connection to the profile, as the store opens it."""
    uri = (data_dir / "profile.db").absolute().as_uri() + ("?mode=ro" if readonly else "?mode=rw")
    conn = sqlcipher3.connect(uri, uri=True, isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{(key or profile_key(data_dir)).hex()}'\"")
    conn.execute("PRAGMA cipher_compatibility = 4")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def integrity_check(data_dir: Path, key: bytes | None = None) -> dict[str, Any]:
    """``PRAGMA cipher_integrity_check`` (no rows: every page's HMAC is right) and
    ``PRAGMA integrity_check`` (``ok``) on a profile whose node is not running.

    Opening it replays the WAL a crash left behind, as the next start would.
    """
    conn = open_raw(data_dir, key)
    try:
        cipher = [tuple(r) for r in conn.execute("PRAGMA cipher_integrity_check").fetchall()]
        plain = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    finally:
        conn.close()
    return {"cipher_integrity_check": cipher, "integrity_check": plain}


def assert_profile_intact(data_dir: Path, key: bytes | None = None) -> None:
    result = integrity_check(data_dir, key)
    assert result["cipher_integrity_check"] == [], f"{data_dir}: {result}"
    assert result["integrity_check"] == ["ok"], f"{data_dir}: {result}"


def arrival_order(data_dir: Path, key: bytes | None = None) -> list[str]:
    """Bodies of incoming messages in the order they were stored (rowid), not by time.

    Read-only, so it may run beside the node (WAL: readers do not block the writer).
    """
    conn = open_raw(data_dir, key, readonly=True)
    try:
        rows = conn.execute("SELECT body FROM messages WHERE direction = 'in' ORDER BY id")
        return [r[0] for r in rows.fetchall()]
    finally:
        conn.close()


def outbox_size(data_dir: Path, key: bytes | None = None) -> int:
    conn = open_raw(data_dir, key, readonly=True)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        conn.close()


# -- delivery checks -------------------------------------------------------------------


@dataclass
class Delivery:
    """What a receiver holds compared with what was sent to it (one sender)."""

    sent: int
    received: int
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    in_order: bool = True

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.unexpected) and self.in_order

    def figures(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "received": self.received,
            "lost": len(self.lost),
            "duplicates": len(self.duplicates),
            "unexpected": len(self.unexpected),
            "in_order": self.in_order,
        }

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, received {self.received}, lost {self.lost[:10]}"
            f" ({len(self.lost)}), duplicates {self.duplicates[:10]} ({len(self.duplicates)}),"
            f" unexpected {self.unexpected[:10]}, in order {self.in_order}"
        )


def compare(sent: list[str], got: list[str]) -> Delivery:
    """Each sent text exactly once, in the order sent (texts are unique per test)."""
    sent_set = set(sent)
    counts = Counter(got)
    seen_once = [t for t in got if t in sent_set]
    first = list(dict.fromkeys(seen_once))
    order = {t: i for i, t in enumerate(sent)}
    return Delivery(
        sent=len(sent),
        received=len(got),
        lost=[t for t in sent if t not in counts],
        duplicates=sorted(t for t, n in counts.items() if n > 1),
        unexpected=[t for t in got if t not in sent_set],
        in_order=all(order[a] < order[b] for a, b in itertools.pairwise(first)),
    )


def history_texts(node: ChatNode, peer: str, direction: str = "in") -> list[str]:
    """Texts of ``history PEER --json`` (what the user sees), one direction."""
    return [m["text"] for m in node.cli_json("history", peer) if m["direction"] == direction]


def wait_received(
    node: ChatNode, peer: str, count: int, *, timeout: float, poll: float = 1.0
) -> list[str]:
    """Poll the receiver's history until ``count`` incoming messages are there (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        got = history_texts(node, peer)
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(poll)


def wait_all_delivered(node: ChatNode, peer: str, *, timeout: float) -> list[dict[str, Any]]:
    """Poll the sender's history until every outgoing message is marked delivered."""
    deadline = time.monotonic() + timeout
    while True:
        out = [m for m in node.cli_json("history", peer) if m["direction"] == "out"]
        if all(m["delivery"] == "delivered" for m in out) or time.monotonic() > deadline:
            return out
        time.sleep(1)


# -- faults ----------------------------------------------------------------------------


class LinkFlapper:
    """From a thread: every ``period`` s (±1 s) unplug ``host`` for ``down`` (lo, hi) s.

    A 1-2 s cut is shorter than the ping timeout: SCTP retransmits and the session
    survives. Every ``long_every``-th cut lasts ``long_down`` s instead, long enough
    for the session to close, so reconnecting and the outbox are exercised too.
    """

    def __init__(
        self,
        host: Host,
        rng: random.Random,
        *,
        period: float = 3.0,
        down: tuple[float, float] = (1.0, 2.0),
        long_every: int = 0,
        long_down: tuple[float, float] = (9.0, 11.0),
    ) -> None:
        self.host = host
        self.flaps = 0
        self.long_flaps = 0
        self.down_seconds = 0.0
        self._rng = rng
        self._period = period
        self._down = down
        self._long_every = long_every
        self._long_down = long_down
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="link-flapper")
        self.error: BaseException | None = None

    def start(self) -> LinkFlapper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.host.link_up()  # whatever state the thread left it in
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._rng.uniform(self._period - 1, self._period + 1)):
                long = bool(self._long_every) and (self.flaps + 1) % self._long_every == 0
                pause = self._rng.uniform(*(self._long_down if long else self._down))
                self.host.link_down()
                self.flaps += 1
                self.long_flaps += long
                self._stop.wait(pause)
                self.down_seconds += pause
                self.host.link_up()
        except BaseException as exc:  # reported by stop()
            self.error = exc


class TcpFault:
    """nftables rules in ``host``'s namespace against TCP (IPv4) to ``port``, or to any
    port when ``port`` is None (a test namespace serves only the node's signaling).

    ``reset_incoming()``: the connection is let through (SYN, handshake), and the
    request's first data segment is answered with a TCP reset: a reset mid-exchange.
    ``drop_replies()``: the server's data segments are dropped, so a request hangs
    until the client's timeout.
    """

    def __init__(self, host: Host, port: int | None = None) -> None:
        self.host = host
        self.port = port

    def reset_incoming(self) -> None:
        # IPv4 + TCP headers with timestamps are 52 bytes: longer is a segment with data.
        match = "" if self.port is None else f" tcp dport {self.port}"
        self._load(
            "chain input { type filter hook input priority -20; policy accept;\n"
            f"  ip protocol tcp{match} meta length > 60 counter reject with tcp reset\n}}"
        )

    def drop_replies(self) -> None:
        match = "" if self.port is None else f" tcp sport {self.port}"
        self._load(
            "chain output { type filter hook output priority -20; policy accept;\n"
            f"  ip protocol tcp{match} meta length > 60 counter drop\n}}"
        )

    def counters(self) -> int:
        """Packets the rule matched so far (0 if no rule)."""
        out = self._nft("-j", "list", "table", "inet", TCP_FAULT_TABLE, check=False)
        if out.returncode != 0:
            return 0
        total = 0
        for item in json.loads(out.stdout).get("nftables", []):
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    total += int(expr["counter"]["packets"])
        return total

    def clear(self) -> None:
        self._nft("delete", "table", "inet", TCP_FAULT_TABLE, check=False)

    def _load(self, chain: str) -> None:
        script = (
            f"table inet {TCP_FAULT_TABLE}\n"
            f"delete table inet {TCP_FAULT_TABLE}\n"
            f"table inet {TCP_FAULT_TABLE} {{\n{chain}\n}}\n"
        )
        proc = subprocess.run(
            ["ip", "netns", "exec", self.host.name, "nft", "-f", "-"],
            input=script, text=True, capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"nft: {proc.stderr}\n{script}"

    def _nft(self, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.host.name, "nft", *args],
            text=True, capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc


class SmallDisk:
    """A ``size``-byte tmpfs mounted on ``path`` (root only); ``fill()`` leaves it full.

    Mounted in the test's own mount namespace, so the CLI (the control socket lives in
    the data dir) and the daemon in its network namespace both see it.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._filler = path / "filler"
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self) -> int:
        """Write a filler file until the disk is full; returns its size."""
        written = 0
        with open(self._filler, "ab", buffering=0) as file:
            for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0" * 512):
                try:
                    while True:
                        written += file.write(chunk) or 0
                except OSError:  # ENOSPC
                    pass
        return written

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
