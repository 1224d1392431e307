"""Who is on the LAN now, as the node sees it: one entry per mDNS instance.

Pure and bounded. Keyed by DNS-SD instance name, so an instance that changes its
advert (another key, another name) replaces its old entry instead of adding one: a
single host cycling through keys can hold at most one place. An index finds the
instance that most recently advertised a key, which is the one the node talks to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from p2pchat.discovery.events import LanPeer
from p2pchat.discovery.mdns import MAX_PEERS


@dataclass(frozen=True)
class ViewChange:
    """What one advert did to the view."""

    new_key: bool  # the key was not on the LAN before: a peer found
    gone: LanPeer | None = None  # a key this instance advertised before and no one holds now


class LanView:
    def __init__(self, max_peers: int = MAX_PEERS) -> None:
        self._max = max_peers
        self._by_instance: dict[str, LanPeer] = {}
        self._instance_of: dict[bytes, str] = {}  # key → instance that advertised it last

    # -- queries -----------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._instance_of

    def __len__(self) -> int:
        return len(self._instance_of)

    def get(self, key: bytes) -> LanPeer | None:
        instance = self._instance_of.get(key)
        return None if instance is None else self._by_instance[instance]

    def peers(self) -> Iterator[LanPeer]:
        """One peer per key on the LAN."""
        for instance in self._instance_of.values():
            yield self._by_instance[instance]

    # -- changes -----------------------------------------------------------------------

    def seen(self, peer: LanPeer) -> ViewChange | None:
        """A verified advert; ``None`` if the view is full and this instance is new."""
        old = self._by_instance.get(peer.instance)
        if old is None and len(self._by_instance) >= self._max:
            return None
        self._by_instance[peer.instance] = peer
        new_key = peer.public_key not in self._instance_of
        self._instance_of[peer.public_key] = peer.instance
        gone = None
        if old is not None and old.public_key != peer.public_key:
            gone = self._unindex(old)
        return ViewChange(new_key=new_key, gone=gone)

    def lost(self, instance: str) -> LanPeer | None:
        """The instance left; returns its peer if its key is now gone from the LAN."""
        old = self._by_instance.pop(instance, None)
        return None if old is None else self._unindex(old)

    # -- private -------------------------------------------------------------------------

    def _unindex(self, old: LanPeer) -> LanPeer | None:
        if self._instance_of.get(old.public_key) != old.instance:
            return None  # another instance advertised that key more recently
        # Another instance may still advertise the same key (a restarted node whose
        # old record has not expired yet): it takes over; otherwise the key is gone.
        for other in self._by_instance.values():
            if other.public_key == old.public_key:
                self._instance_of[old.public_key] = other.instance
                return None
        del self._instance_of[old.public_key]
        return old
