"""A small Internet of network namespaces: two home LANs behind NATs and a server.

Topology for ``Internet(nat_b=...)`` (``X`` = 240..247, one /16 per instance)::

    lanA 10.X.1.2 (owner) —eth0/lan0— natA [masquerade]
                                      wan0 10.X.0.1 ─┐
    wan: bridge br0 (no address) ────────────────────┼── srv eth0: 10.X.0.10 (shared),
                                      wan0 10.X.0.2 ─┘    .11 .12 .13 (instances), .20 (redis),
    lanB 10.X.2.2 (guests) —eth0/lan0— natB [NAT_B]      .30 (coturn)

``nat_b`` picks natB's behaviour (research §6, verified rules):

* ``"cone"``: ``masquerade``: endpoint-independent mapping (one public port whatever the
  destination); Linux filters by the conntrack 5-tuple, so it is a port-restricted cone;
* ``"symmetric"``: ``masquerade fully-random``: a fresh random public port per destination;
  with a (cone) natA only a TURN-relayed pair connects;
* ``"udp-blocked"``: ``masquerade`` and natB forwards no UDP at all (TCP passes): only the
  WebSocket relay is left.

natA is always ``masquerade``. Both NATs drop new connections coming in from the wan
(a home router without port forwarding). lanA/lanB have default routes via their NAT
(Chromium gathers no ICE candidates without one); the NATs and srv have no default route
and srv has no route to the LANs: from srv only the NATs' wan addresses exist, so
nothing reaches a LAN host unless the LAN host spoke first. IPv4 only.

Names and leftover cleanup are tests/lan/netns.py's (``p2c-<pid>-<k>-…``); processes are
started with the :class:`~tests.lan.netns.Host` methods (``popen``/``run``/``python``) of
``internet.lan_a``, ``internet.lan_b``, ``internet.srv``, ``internet.nat_a``,
``internet.nat_b``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from tests.lan.netns import (
    NAME_PREFIX,
    Host,
    _counter,
    _delete_namespaces,
    _ip,
    _ip_batch,
    _run,
    remove_leftovers,
)

NatKind = Literal["cone", "symmetric", "udp-blocked"]
NAT_KINDS: tuple[NatKind, ...] = ("cone", "symmetric", "udp-blocked")
#: Second octets this harness may use (netns.py's Lan uses 10.231).
OCTET_BASE = 240
OCTET_COUNT = 8
NAT_TABLE = "p2pchat_nat"
#: The srv addresses' last octets (contract §9).
SHARED_HOST = 10
INSTANCE_HOSTS = (11, 12, 13)
REDIS_HOST = 20
TURN_HOST = 30


@dataclass
class _Uplink:
    """What :class:`Host`'s link and carrier methods need to know about the far end:
    the namespace holding the other end of the host's cable (``switch``)."""

    switch: str
    ipv6: bool = False


class WanHost(Host):
    """A namespace of the Internet: one interface (``eth0``, or ``wan0`` for a NAT).

    ``link_down()`` / ``link_up()`` unplug and replug its cable at the far end.
    """

    def __init__(
        self, prefix: str, role: str, *, ip: str, ifname: str, far_ns: str, far_port: str
    ) -> None:
        # Host's own __init__ is about a Lan's numbered hosts; set the same attributes.
        self.index = 0
        self.name = f"{prefix}-{role}"
        self.hostname = role
        self.ip = ip
        self.ipv6_link_local = None
        self.ifname = ifname
        self.switch_port = far_port
        self.mac = ""
        self._lan = _Uplink(far_ns)  # type: ignore[assignment]  # duck-typed for Host
        self._procs = []

    def __repr__(self) -> str:
        return f"<WanHost {self.name} {self.ip}>"


class Internet:
    """The topology above. Use as a context manager (or call close())."""

    def __init__(self, nat_b: NatKind = "cone") -> None:
        if nat_b not in NAT_KINDS:
            raise ValueError(f"nat_b must be one of {', '.join(NAT_KINDS)}, not {nat_b!r}")
        self.nat_b_kind: NatKind = nat_b
        self.instance = next(_counter)
        self.prefix = f"{NAME_PREFIX}-{os.getpid()}-{self.instance}"
        octet = OCTET_BASE + (os.getpid() + self.instance) % OCTET_COUNT
        self.net = f"10.{octet}"
        self.wan_subnet = f"{self.net}.0.0/24"
        p = self.prefix
        self.wan_switch = f"{p}-wan"
        self.srv = WanHost(
            p, "srv", ip=self.srv_address(SHARED_HOST), ifname="eth0",
            far_ns=self.wan_switch, far_port="srv",
        )  # fmt: skip
        self.nat_a = WanHost(
            p, "natA", ip=f"{self.net}.0.1", ifname="wan0", far_ns=self.wan_switch, far_port="natA"
        )
        self.nat_b = WanHost(
            p, "natB", ip=f"{self.net}.0.2", ifname="wan0", far_ns=self.wan_switch, far_port="natB"
        )
        self.lan_a = WanHost(
            p, "lanA", ip=f"{self.net}.1.2", ifname="eth0", far_ns=self.nat_a.name, far_port="lan0"
        )
        self.lan_b = WanHost(
            p, "lanB", ip=f"{self.net}.2.2", ifname="eth0", far_ns=self.nat_b.name, far_port="lan0"
        )
        self._closed = False
        remove_leftovers(self.prefix)
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Internet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Internet {self.prefix} {self.net}.0.0/16 nat_b={self.nat_b_kind}>"

    # --- addresses ------------------------------------------------------------------------

    def srv_address(self, last_octet: int) -> str:
        """``10.X.0.<last_octet>``: one of srv's addresses (see the module docstring)."""
        return f"{self.net}.0.{last_octet}"

    @property
    def shared_address(self) -> str:
        """The address every signaling instance also listens on (SO_REUSEPORT)."""
        return self.srv_address(SHARED_HOST)

    @property
    def instance_addresses(self) -> tuple[str, ...]:
        """One address per signaling instance (1..3), for deterministic targeting."""
        return tuple(self.srv_address(i) for i in INSTANCE_HOSTS)

    @property
    def redis_address(self) -> str:
        return self.srv_address(REDIS_HOST)

    @property
    def turn_address(self) -> str:
        return self.srv_address(TURN_HOST)

    @property
    def hosts(self) -> list[WanHost]:
        return [self.lan_a, self.nat_a, self.srv, self.nat_b, self.lan_b]

    def namespaces(self) -> list[str]:
        return [self.wan_switch, *(h.name for h in self.hosts)]

    def close(self) -> None:
        """Stop processes, delete the namespaces. Idempotent; also runs at exit."""
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
        for ns in self.namespaces():
            _ip("netns", "add", ns)
        for ns in self.namespaces():
            # IPv4 only: no link-local chatter, no IPv6 path around the NATs.
            _run(
                [
                    "ip", "netns", "exec", ns, "sysctl", "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                ]
            )  # fmt: skip
        wan_cmds = [
            "link set lo up",
            "link add br0 type bridge stp_state 0 forward_delay 0",
            "link set br0 up",
        ]
        for host in (self.srv, self.nat_a, self.nat_b):
            wan_cmds += [
                f"link add {host.switch_port} type veth peer name {host.ifname} netns {host.name}",
                f"link set {host.switch_port} master br0",
                f"link set {host.switch_port} up",
            ]
        _ip_batch(self.wan_switch, wan_cmds)
        srv_addrs = [SHARED_HOST, *INSTANCE_HOSTS, REDIS_HOST, TURN_HOST]
        _ip_batch(
            self.srv.name,
            [
                "link set lo up",
                *(f"addr add {self.srv_address(i)}/24 dev eth0" for i in srv_addrs),
                "link set eth0 up",
            ],
        )
        for nat, lan, side in ((self.nat_a, self.lan_a, 1), (self.nat_b, self.lan_b, 2)):
            _ip_batch(
                nat.name,
                [
                    "link set lo up",
                    f"addr add {nat.ip}/24 dev wan0",
                    "link set wan0 up",
                    f"link add lan0 type veth peer name eth0 netns {lan.name}",
                    f"addr add {self.net}.{side}.1/24 dev lan0",
                    "link set lan0 up",
                ],
            )
            _run(["ip", "netns", "exec", nat.name, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            kind: NatKind = "cone" if nat is self.nat_a else self.nat_b_kind
            _run(["ip", "netns", "exec", nat.name, "nft", "-f", "-"], input=nat_rules(kind))
            _ip_batch(
                lan.name,
                [
                    "link set lo up",
                    f"addr add {lan.ip}/24 dev eth0",
                    "link set eth0 up",
                    f"route add default via {self.net}.{side}.1 dev eth0",
                ],
            )
        for host in self.hosts:
            host._wait_carrier(True)


def nat_rules(kind: NatKind) -> str:
    """The nftables script of a NAT router of ``kind`` (wan side ``wan0``).

    Written one statement per line: nft 1.0.6 does not parse a chain body on one line.
    """
    masquerade = "masquerade fully-random" if kind == "symmetric" else "masquerade"
    udp_drop = "    meta l4proto udp counter drop\n" if kind == "udp-blocked" else ""
    return (
        f"table ip {NAT_TABLE} {{\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "wan0" {masquerade}\n'
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        f"{udp_drop}"
        # No port forwarding: from the wan, only answers to what the LAN sent get in.
        '    iifname "wan0" ct state != { established, related } counter drop\n'
        "  }\n"
        # Nor to the router itself: accepted, a stray packet (the far peer's ICE check
        # arriving before ours went out) is confirmed as a conntrack entry holding our
        # public port, and masquerade then maps our own packet to another port: the hole
        # never opens. A home router drops it, so no entry is made.
        "  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n"
        '    iifname "wan0" ct state != { established, related } counter drop\n'
        "  }\n"
        "}\n"
    )
