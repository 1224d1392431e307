"""Map interface names ("eth0") to the addresses zeroconf binds to and we advertise."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import ifaddr

IpVersion = Literal["v4", "v6", "both"]


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

    Raises ``ValueError`` for an unknown interface, or when nothing usable is left.
    """
    adapters = {a.nice_name: a for a in ifaddr.get_adapters()}
    if names is None:
        chosen = [a for a in adapters.values() if not _is_loopback(a)]
    else:
        unknown = [n for n in names if n not in adapters]
        if unknown:
            raise ValueError(f"no such network interface: {', '.join(unknown)}")
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
        raise ValueError("no usable addresses on the chosen network interfaces")
    return InterfaceAddresses(bind, v4 + v6, bool(v4), bool(v6))


def _is_loopback(adapter: ifaddr.Adapter) -> bool:
    return any(
        ipaddress.ip_address(ip.ip if isinstance(ip.ip, str) else ip.ip[0]).is_loopback
        for ip in adapter.ips
    )
