"""LAN discovery: who is out there, over mDNS / DNS-SD (``_p2pchat._tcp.local.``).

The codec and the event types are pure and exported here; the adapter, which imports
zeroconf, is imported on purpose: ``from p2pchat.discovery.mdns import LanDiscovery``.
"""

from p2pchat.discovery.events import (
    Advertised,
    DiscoveryEvent,
    LanPeer,
    PeerFound,
    PeerLost,
    PeerUpdated,
)
from p2pchat.discovery.txt import AdvertError, PeerAdvert, decode_txt, encode_txt

__all__ = [
    "AdvertError",
    "Advertised",
    "DiscoveryEvent",
    "LanPeer",
    "PeerAdvert",
    "PeerFound",
    "PeerLost",
    "PeerUpdated",
    "decode_txt",
    "encode_txt",
]
