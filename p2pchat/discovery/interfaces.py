"""Map interface names ("eth0") to the addresses zeroconf binds to and we advertise."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import ifaddr

from p2pchat.errors import UserError

IpVersion = Literal["v4", "v6", "both"]


class InterfaceError(UserError, ValueError):
    """``--interface`` names no interface here, or the chosen ones have no address."""


@dataclass(frozen=True)
class InterfaceAddresses:
    """Addresses of the chosen interfaces.

    ``bind`` is zeroconf's ``interfaces=`` argument (IPv4 addresses, IPv6 interface
    indexes); ``advertised`` are the addresses we put in our A/AAAA records.
    """

    bind: list[str | int]
    advertised: list[str]
    has_ipv4: bool
    has_ipv6: bool

    @property
    def ipv6_indexes(self) -> list[int]:
        return [i for i in self.bind if isinstance(i, int)]


def interface_addresses(
    names: Sequence[str] | None, ip_version: IpVersion = "both"
) -> InterfaceAddresses:
    """Addresses of the interfaces ``names`` (all but loopback when ``None``).

    Raises ``InterfaceError`` for an unknown interface, or when nothing usable is left.
    """
    adapters = {a.nice_name: a for a in ifaddr.get_adapters()}
    if names is None:
        chosen = [a for a in adapters.values() if not _is_loopback(a)]
    else:
        check_interface_names(names, adapters)
        chosen = [adapters[n] for n in names]

    bind: list[str | int] = []
    v4: list[str] = []
    v6: list[str] = []
    for adapter in chosen:
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if ip_version != "v6":
                    v4.append(ip.ip)
                    bind.append(ip.ip)
            elif ip_version != "v4":
                v6.append(ip.ip[0])
                if adapter.index not in bind and adapter.index is not None:
                    bind.append(adapter.index)
    if not bind:
        which = "the chosen network interfaces" if names else "any network interface"
        raise InterfaceError(
            f"no usable addresses on {which}: connect to a network"
            + (", or pick another --interface" if names else "")
        )
    return InterfaceAddresses(bind, v4 + v6, bool(v4), bool(v6))


def check_interface_names(
    names: Sequence[str], adapters: dict[str, ifaddr.Adapter] | None = None
) -> None:
    """``InterfaceError`` naming the interfaces there are, unless every name exists."""
    known = adapters if adapters is not None else {a.nice_name: a for a in ifaddr.get_adapters()}
    unknown = [n for n in names if n not in known]
    if unknown:
        here = ", ".join(sorted(known)) or "none"
        raise InterfaceError(
            f"no network interface named {', '.join(map(repr, unknown))}"
            f" (this machine has: {here}): pick one of them with --interface,"
            " or leave --interface out to use all"
        )


def _is_loopback(adapter: ifaddr.Adapter) -> bool:
    return any(
        ipaddress.ip_address(ip.ip if isinstance(ip.ip, str) else ip.ip[0]).is_loopback
        for ip in adapter.ips
    )
