"""Fixtures for real-LAN tests (network namespaces; root only).

    @pytest.mark.lan
    def test_something(make_lan: MakeLan) -> None:
        lan = make_lan(2)             # Lan(2, ipv6=True); closed after the test
        a, b = lan.hosts
        proc = a.popen([PYTHON, "-m", "p2pchat", ...])

``lan2`` is a ready-made two-host Lan. ``make_internet("symmetric")`` builds the
two-NAT Internet of tests/lan/wan.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import require_netns
from tests.lan.netns import Lan
from tests.lan.wan import Internet, NatKind

MakeLan = Callable[..., Lan]


@pytest.fixture
def make_lan() -> Iterator[MakeLan]:
    """Factory: ``make_lan(n_hosts, ipv6=True, default_route=True) -> Lan``; every Lan
    is closed afterwards."""
    require_netns()
    lans: list[Lan] = []

    def make(n_hosts: int = 2, *, ipv6: bool = True, default_route: bool = True) -> Lan:
        lan = Lan(n_hosts, ipv6=ipv6, default_route=default_route)
        lans.append(lan)
        return lan

    try:
        yield make
    finally:
        for lan in reversed(lans):
            lan.close()


@pytest.fixture
def lan2(make_lan: MakeLan) -> Lan:
    """A two-host LAN (IPv4 + IPv6 link-local)."""
    return make_lan(2)


MakeInternet = Callable[..., Internet]


@pytest.fixture
def make_internet() -> Iterator[MakeInternet]:
    """Factory: ``make_internet(nat_b="cone"|"symmetric"|"udp-blocked") -> Internet``
    (tests/lan/wan.py); every Internet is closed afterwards."""
    require_netns()
    nets: list[Internet] = []

    def make(nat_b: NatKind = "cone") -> Internet:
        net = Internet(nat_b)
        nets.append(net)
        return net

    try:
        yield make
    finally:
        for net in reversed(nets):
            net.close()
