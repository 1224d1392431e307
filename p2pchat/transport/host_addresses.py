"""Restrict the ICE host candidates of aiortc to chosen network interfaces.

aioice gathers host candidates from every address of every interface
(``aioice.ice.get_host_addresses``, loopback excluded) and neither aioice 0.13 nor
aiortc 1.16 offers a knob to narrow that (aioice#2 and aioice PR #57 ask for one; the
maintainer suggested a ``filter_host_addresses`` callable that does not exist yet).

Filtering ``a=candidate`` lines out of the SDP is not enough: the ICE agent still binds
sockets on every address and sends checks from them, so the peer learns those addresses
as peer-reflexive candidates and may pick such a pair. Pruning aioice's private
``Connection._local_candidates`` after gathering is impossible for the answerer, whose
checks start inside the same ``setLocalDescription`` call.

So we wrap ``aioice.ice.get_host_addresses`` once, and the wrapper consults a
``ContextVar``: it changes nothing unless the running task entered
``restricted_host_addresses(...)``. ``RTCPeerConnection.setLocalDescription`` gathers
in tasks created by ``asyncio.gather``, which copy the caller's context, so the
restriction applies to exactly the peer connection whose description is being set,
and to no other user of aioice in the process.

Unlike aioice, an explicitly named loopback interface (``lo``) is honoured, so two
links in one process can talk over 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

import aioice.ice
import ifaddr

from p2pchat.transport.errors import LocalTransportError

__all__ = ["addresses_of_interfaces", "restricted_host_addresses"]

_HostAddressGetter = Callable[[bool, bool], list[str]]

# None: no restriction (aioice's own behaviour); otherwise the only host addresses to use.
_allowed_addresses: ContextVar[tuple[str, ...] | None] = ContextVar(
    "p2pchat_ice_host_addresses", default=None
)


def addresses_of_interfaces(names: Sequence[str]) -> tuple[str, ...]:
    """Return the addresses ICE can use on the named interfaces, IPv4 first.

    IPv6 link-local addresses are left out, as aioice does (it cannot bind them without a
    scope id). Raises ``LocalTransportError`` for an unknown interface or an interface
    without a usable address.
    """
    if not names:
        raise LocalTransportError("interfaces: give at least one interface name")
    adapters = {adapter.name: adapter for adapter in ifaddr.get_adapters()}
    ipv4: list[str] = []
    ipv6: list[str] = []
    for name in names:
        adapter = adapters.get(name)
        if adapter is None:
            known = ", ".join(sorted(adapters)) or "none"
            raise LocalTransportError(f"unknown network interface {name!r} (known: {known})")
        found = False
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                ipv4.append(ip.ip)
                found = True
            elif ip.ip[2] == 0 and not ipaddress.IPv6Address(ip.ip[0]).is_link_local:
                ipv6.append(ip.ip[0])
                found = True
        if not found:
            raise LocalTransportError(f"network interface {name!r} has no usable IP address")
    return tuple(dict.fromkeys(ipv4 + ipv6))


@contextlib.contextmanager
def restricted_host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Within this block, ICE gathering in the current task uses only ``addresses``.

    ``None`` means no restriction, so callers need no special case.
    """
    if addresses is None:
        yield
        return
    _install_hook()
    token = _allowed_addresses.set(tuple(addresses))
    try:
        yield
    finally:
        _allowed_addresses.reset(token)


def _install_hook() -> None:
    current: _HostAddressGetter = aioice.ice.get_host_addresses
    if getattr(current, "_p2pchat_hook", False):
        return
    original = current

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        allowed = _allowed_addresses.get()
        if allowed is None:
            return original(use_ipv4, use_ipv6)
        return [address for address in allowed if (use_ipv6 if ":" in address else use_ipv4)]

    get_host_addresses._p2pchat_hook = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses
