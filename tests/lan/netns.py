"""A real LAN of network namespaces on one machine (needs root, `ip`, `nft`).

Topology for ``Lan(n)``::

    <prefix>-sw        "switch" namespace: bridge br0 (multicast snooping off)
       |- p1 ======= eth0 in <prefix>-h1   10.231.N.1/24, fe80::…/64
       |- p2 ======= eth0 in <prefix>-h2   10.231.N.2/24, fe80::…/64
       ...
    default route via 10.231.N.254, which nobody answers (a router with no internet);
    ``default_route=False``: no default route at all (two laptops on a switch, a
    router that hands out no gateway, a link-local network)

Nothing is created in the root namespace: the veth pairs are made inside the switch
namespace and one end is moved straight into the host namespace. Every host has ``lo``
up, a multicast route (224.0.0.0/4 via eth0) so mDNS works, IPv6 DAD disabled (the
link-local address is usable at once) and its own hostname (``host1``, ``host2``…)
for processes started with :meth:`Host.popen` / :meth:`Host.run`.

Names are ``p2c-<pid>-<k>-…``: unique per process and instance, so parallel runs do not
collide; namespaces left over by dead processes (or an earlier instance with the same
prefix) are removed when a new ``Lan`` is created.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

NAME_PREFIX = "p2c"
SUBNET_BASE = "10.231"
FAULT_TABLE = "p2pchat_faults"
#: The venv's interpreter; it runs fine inside a namespace (the filesystem is shared).
PYTHON = sys.executable

_counter = itertools.count(1)
_NAME_RE = re.compile(rf"^{NAME_PREFIX}-(\d+)-(\d+)-")


class NetnsError(RuntimeError):
    """A harness command failed (it says which one and what it printed)."""


class Host:
    """One machine on the LAN: a network namespace with one interface, ``eth0``."""

    def __init__(self, lan: Lan, index: int) -> None:
        self.index = index  # 0-based; "host 1" is hosts[0]
        self.name: str = f"{lan.prefix}-h{index + 1}"
        self.hostname: str = f"host{index + 1}"
        self.ip: str = f"{SUBNET_BASE}.{lan.subnet_id}.{index + 1}"
        self.ipv6_link_local: str | None = None
        self.ifname: str = "eth0"
        self.switch_port: str = f"p{index + 1}"  # the bridge-side end, in lan.switch
        self.mac: str = f"02:00:0a:e7:{lan.subnet_id:02x}:{index + 1:02x}"
        self._lan = lan
        self._procs: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.ip} {self.ipv6_link_local}>"

    # --- running things inside the namespace -------------------------------------------

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside this namespace, with this host's hostname."""
        return [
            "ip", "netns", "exec", self.name,
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname,
            *argv,
        ]  # fmt: skip

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the namespace. ``Popen.pid`` is the program's own pid.

        The process is terminated (then killed) by :meth:`Lan.close` if still running.
        """
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.exec_argv(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and wait.

        Defaults (override with keyword arguments): ``text=True``, output captured,
        ``timeout=60``, ``check=False`` (as :func:`subprocess.run`).
        """
        kwargs.setdefault("text", True)
        if "stdout" not in kwargs and "stderr" not in kwargs:
            kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.exec_argv(argv), **kwargs)

    def python(self, code: str, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``PYTHON -c code args…`` (the venv's interpreter) inside the namespace."""
        return self.popen([PYTHON, "-c", code, *args], **kwargs)

    # --- faults ------------------------------------------------------------------------

    def link_down(self) -> None:
        """Unplug the cable: the bridge-side end goes down, eth0 loses carrier.

        Traffic is cut both ways; addresses and routes inside the host stay as they are
        (as with a real unplugged cable), so sockets see silence, not errors.
        """
        _ip("-n", self._lan.switch, "link", "set", self.switch_port, "down")
        self._wait_carrier(False)

    def link_up(self) -> None:
        """Plug the cable back in and wait until eth0 has carrier again."""
        _ip("-n", self._lan.switch, "link", "set", self.switch_port, "up")
        self._wait_carrier(True)

    def drop_udp(self, percent: int, *, port: int | None = None) -> None:
        """Drop ``percent`` % of incoming UDP in this host (nftables, input hook).

        ``port`` limits it to that destination port. Replaces any earlier drop rule;
        ``percent=100`` drops all (matching) UDP, 0 drops none.
        """
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be within 0..100, not {percent}")
        match = "meta l4proto udp" if port is None else f"udp dport {int(port)}"
        if percent == 100:
            rule = f"{match} counter drop"
        elif percent == 0:
            rule = f"{match} counter accept"
        else:
            rule = f"{match} numgen random mod 100 < {percent} counter drop"
        script = (
            f"table inet {FAULT_TABLE}\n"
            f"delete table inet {FAULT_TABLE}\n"
            f"table inet {FAULT_TABLE} {{\n"
            "  chain input {\n"
            "    type filter hook input priority -10; policy accept;\n"
            f"    {rule}\n"
            "  }\n"
            "}\n"
        )
        _run(["ip", "netns", "exec", self.name, "nft", "-f", "-"], input=script)

    def clear_drops(self) -> None:
        """Remove every drop rule set by :meth:`drop_udp`."""
        _run(
            ["ip", "netns", "exec", self.name, "nft", "delete", "table", "inet", FAULT_TABLE],
            check=False,
        )

    # --- internals ---------------------------------------------------------------------

    def _wait_carrier(self, up: bool, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            info = json.loads(_ip("-n", self.name, "-j", "link", "show", self.ifname))[0]
            has_carrier = "LOWER_UP" in info.get("flags", [])
            if has_carrier == up:
                break
            if time.monotonic() > deadline:
                raise NetnsError(f"{self.name}: carrier still {'down' if up else 'up'}")
            time.sleep(0.01)
        if up and self._lan.ipv6:
            self._wait_link_local()

    def _wait_link_local(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            out = _ip("-n", self.name, "-6", "-j", "addr", "show", "dev", self.ifname)
            for info in json.loads(out):
                for addr in info.get("addr_info", []):
                    if addr.get("scope") == "link" and not addr.get("tentative"):
                        self.ipv6_link_local = addr["local"]
                        return
            if time.monotonic() > deadline:
                raise NetnsError(f"{self.name}: no usable IPv6 link-local address: {out}")
            time.sleep(0.02)

    def _stop_processes(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 3
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()


class Lan:
    """``n_hosts`` namespaces on one bridge. Use as a context manager (or call close())."""

    def __init__(self, n_hosts: int, *, ipv6: bool = True, default_route: bool = True) -> None:
        if not 1 <= n_hosts <= 250:  # .254 is the (absent) gateway
            raise ValueError(f"n_hosts must be within 1..250, not {n_hosts}")
        self.instance = next(_counter)
        self.prefix: str = f"{NAME_PREFIX}-{os.getpid()}-{self.instance}"
        self.subnet_id: int = (os.getpid() + self.instance) % 250 + 1
        self.subnet: str = f"{SUBNET_BASE}.{self.subnet_id}.0/24"
        # The default gateway's address is assigned to nobody: a home LAN whose router
        # has no internet. The route matters: Chromium's WebRTC picks its interface by
        # "connecting" a UDP socket to a public address and gathers no candidates at
        # all without a default route.
        self.gateway: str = f"{SUBNET_BASE}.{self.subnet_id}.254"
        self.ipv6 = ipv6
        self.default_route = default_route
        self.switch: str = f"{self.prefix}-sw"
        self.hosts: list[Host] = [Host(self, i) for i in range(n_hosts)]
        self.setup_seconds = 0.0
        self._closed = False
        remove_leftovers(self.prefix)
        start = time.monotonic()
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - start

    def __enter__(self) -> Lan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lan {self.prefix} {self.subnet} hosts={self.hosts}>"

    def namespaces(self) -> list[str]:
        return [self.switch, *(h.name for h in self.hosts)]

    def close(self) -> None:
        """Stop processes, delete the namespaces (and with them bridge and veths).

        Idempotent; also runs at interpreter exit if a test forgot to.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for host in self.hosts:
            with contextlib.suppress(Exception):
                host._stop_processes()
        _delete_namespaces(self.namespaces())

    # --- internals ---------------------------------------------------------------------

    def _build(self) -> None:
        sw = self.switch
        for ns in self.namespaces():
            _ip("netns", "add", ns)
        switch_cmds = [
            "link set lo up",
            "link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
            "link set br0 up",
        ]
        for h in self.hosts:
            switch_cmds += [
                f"link add {h.switch_port} type veth peer name {h.ifname} netns {h.name}",
                f"link set {h.switch_port} master br0",
                f"link set {h.switch_port} up",
            ]
        # The bridge has no address: it is a plain switch. No IPv6 on it either, so the
        # switch itself never shows up on the wire (no RS / MLD reports of its own).
        _run(["ip", "netns", "exec", sw, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        _ip_batch(sw, switch_cmds)
        for h in self.hosts:
            v6 = 0 if self.ipv6 else 1
            sysctls = [
                f"net.ipv6.conf.all.disable_ipv6={v6}",
                f"net.ipv6.conf.default.disable_ipv6={v6}",
                f"net.ipv6.conf.{h.ifname}.disable_ipv6={v6}",
                f"net.ipv6.conf.{h.ifname}.accept_dad=0",
                f"net.ipv6.conf.{h.ifname}.addr_gen_mode=0",  # eui64 from the fixed MAC
                # Answer ARP only for our own address on our own interface.
                f"net.ipv4.conf.{h.ifname}.arp_ignore=1",
            ]
            _run(["ip", "netns", "exec", h.name, "sysctl", "-qw", *sysctls])
            _ip_batch(
                h.name,
                [
                    "link set lo up",
                    f"link set {h.ifname} address {h.mac}",
                    f"addr add {h.ip}/24 dev {h.ifname}",
                    f"link set {h.ifname} up",
                    # mDNS (224.0.0.251) and any other IPv4 multicast leave via eth0.
                    f"route add 224.0.0.0/4 dev {h.ifname}",
                ],
            )
            if self.default_route:
                _ip_batch(h.name, [f"route add default via {self.gateway} dev {h.ifname}"])
        for h in self.hosts:
            h._wait_carrier(True)


def remove_leftovers(prefix: str | None = None) -> list[str]:
    """Delete namespaces named by this harness whose process is gone (or with ``prefix``).

    Returns the names deleted.
    """
    stale: list[str] = []
    for ns in list_namespaces():
        m = _NAME_RE.match(ns)
        if not m:
            continue
        same_prefix = prefix is not None and ns.startswith(prefix + "-")
        if same_prefix or not _pid_alive(int(m.group(1))):
            stale.append(ns)
    _delete_namespaces(stale)
    return stale


def list_namespaces() -> list[str]:
    out = _ip("netns", "list")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete_namespaces(names: list[str]) -> None:
    # Processes still inside keep a namespace (and its interfaces) alive after the name
    # is gone, so end them first. They were started in our own namespaces, by the tests.
    for ns in names:
        pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for ns in names:
        _run(["ip", "netns", "del", ns], check=False)


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _ip(*args: str) -> str:
    return _run(["ip", *args]).stdout


def _ip_batch(ns: str, commands: list[str]) -> None:
    _run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n")


def _run(
    argv: list[str], *, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, input=input, text=True, capture_output=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        detail = f"\n--- input ---\n{input}" if input else ""
        raise NetnsError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}{detail}"
        )
    return proc
