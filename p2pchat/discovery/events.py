"""What discovery tells the node: peers on the LAN and the events about them."""

from __future__ import annotations

from dataclasses import dataclass

from p2pchat.discovery.txt import PeerAdvert


@dataclass(frozen=True)
class LanPeer:
    """A peer seen on the LAN, as its advert says (its key is not yet checked by anyone).

    ``instance`` is its DNS-SD instance name (``"alice (abcd)"``), unique on the link;
    ``addresses`` are IPv4 first, then IPv6 (link-local ones carry ``%scope``, the
    index of *our* interface they were heard on).
    """

    instance: str
    advert: PeerAdvert
    addresses: tuple[str, ...]
    port: int

    @property
    def peer_id(self) -> str:
        return self.advert.peer_id

    @property
    def public_key(self) -> bytes:
        return self.advert.public_key

    @property
    def name(self) -> str:
        return self.advert.name


@dataclass(frozen=True)
class DiscoveryEvent:
    """Base of everything :class:`~p2pchat.discovery.mdns.LanDiscovery` emits."""


@dataclass(frozen=True)
class PeerFound(DiscoveryEvent):
    peer: LanPeer


@dataclass(frozen=True)
class PeerUpdated(DiscoveryEvent):
    """A known instance changed its advert, addresses or port."""

    peer: LanPeer


@dataclass(frozen=True)
class PeerLost(DiscoveryEvent):
    """The instance said goodbye, or stopped answering a re-query."""

    instance: str
    peer_id: str


@dataclass(frozen=True)
class Advertised(DiscoveryEvent):
    """Our own advert is on the LAN under ``instance`` (emitted again after a rename)."""

    instance: str
