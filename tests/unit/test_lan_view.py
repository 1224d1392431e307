"""LanView: one entry per mDNS instance, so an advert that changes its key moves."""

from __future__ import annotations

from p2pchat.crypto.identity import peer_id
from p2pchat.discovery.events import LanPeer
from p2pchat.discovery.txt import PeerAdvert
from p2pchat.node.lan_view import LanView


def peer(instance: str, n: int, name: str = "x") -> LanPeer:
    key = n.to_bytes(32, "big")
    return LanPeer(instance, PeerAdvert(1, peer_id(key), key, name), ("10.0.0.1",), 4000)


def test_an_instance_that_changes_its_key_holds_one_place() -> None:
    view = LanView(max_peers=256)
    first = view.seen(peer("mallory", 0))
    assert first is not None
    assert first.new_key
    for n in range(1, 12_000):
        change = view.seen(peer("mallory", n))
        assert change is not None
        assert change.new_key
        assert change.gone is not None  # the key it advertised before is gone from the LAN
        assert change.gone.public_key == (n - 1).to_bytes(32, "big")
    assert len(view) == 1
    assert [p.public_key for p in view.peers()] == [(11_999).to_bytes(32, "big")]
    assert (0).to_bytes(32, "big") not in view


def test_the_view_is_bounded_but_known_instances_still_update() -> None:
    view = LanView(max_peers=3)
    for n in range(3):
        assert view.seen(peer(f"i{n}", n)) is not None
    assert view.seen(peer("i9", 9)) is None  # full: a new instance is not taken
    assert view.seen(peer("i0", 0, name="renamed")) is not None
    assert len(view) == 3


def test_a_key_advertised_by_two_instances_stays_until_both_are_gone() -> None:
    view = LanView()
    view.seen(peer("old", 7))
    change = view.seen(peer("new", 7))
    assert change is not None
    assert not change.new_key
    assert view.lost("new") is None  # "old" still advertises key 7
    assert view.get((7).to_bytes(32, "big")) == peer("old", 7)
    gone = view.lost("old")
    assert gone == peer("old", 7)
    assert len(view) == 0
    assert view.lost("never seen") is None
