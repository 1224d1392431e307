"""The node's reading of a server's IceOffer (p2pchat/transport/ice_config.py)."""

from __future__ import annotations

import copy

import pytest
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from p2pchat.transport.ice_config import (
    IceConfig,
    RemoteIceConfigError,
    parse_ice_offer,
    rtc_configuration,
)

OFFER: dict[str, object] = {
    "ice_servers": [
        {
            "urls": [
                "turn:turn.example.org:3478?transport=udp",
                "turns:turn.example.org:5349?transport=tcp",
            ],
            "username": "1800000000:rAbCdEfGhIj",
            "credential": "XLm/N/gKh1k4MO3nkMg+dyyp0to=",
        },
        {"urls": ["stun:turn.example.org:3478", "stun:stun2.example.org"]},
    ],
    "policy": "all",
    "expires_at": 1_800_000_000,
}


def offer_with(**changes: object) -> dict[str, object]:
    offer = copy.deepcopy(OFFER)
    offer.update(changes)
    return offer


def test_keeps_the_first_turn_and_the_first_stun_in_order() -> None:
    ice = parse_ice_offer(OFFER)
    assert ice == IceConfig(
        turn_url="turn:turn.example.org:3478?transport=udp",
        turn_username="1800000000:rAbCdEfGhIj",
        turn_credential="XLm/N/gKh1k4MO3nkMg+dyyp0to=",
        stun_url="stun:turn.example.org:3478",
        policy="all",
        expires_at=1_800_000_000,
    )
    assert "XLm/" not in repr(ice)
    config = rtc_configuration(ice)
    assert config.iceTransportPolicy == RTCIceTransportPolicy.ALL
    assert config.iceServers is not None
    assert [s.urls for s in config.iceServers] == [
        ["turn:turn.example.org:3478?transport=udp"],
        ["stun:turn.example.org:3478"],
    ]
    assert config.iceServers[0].username == "1800000000:rAbCdEfGhIj"
    assert config.iceServers[0].credential == "XLm/N/gKh1k4MO3nkMg+dyyp0to="


def test_stun_first_in_the_list_does_not_change_the_turn_pick() -> None:
    servers = list(reversed(OFFER["ice_servers"]))  # type: ignore[call-overload]
    ice = parse_ice_offer(offer_with(ice_servers=servers))
    assert ice.turn_url == "turn:turn.example.org:3478?transport=udp"
    assert ice.stun_url == "stun:turn.example.org:3478"


def test_relay_policy_reaches_aiortc() -> None:
    config = rtc_configuration(parse_ice_offer(offer_with(policy="relay")))
    assert config.iceTransportPolicy == RTCIceTransportPolicy.RELAY


def test_no_ice_is_the_lan_configuration() -> None:
    config = rtc_configuration(None)
    assert config.iceServers == []
    assert config.iceTransportPolicy == RTCIceTransportPolicy.ALL


def test_stun_only_and_empty_offers() -> None:
    assert parse_ice_offer({"ice_servers": [{"urls": "stun:10.0.0.1"}]}) == IceConfig(
        stun_url="stun:10.0.0.1"
    )
    assert parse_ice_offer({"ice_servers": []}) == IceConfig()


def turn(url: str) -> dict[str, object]:
    return offer_with(ice_servers=[{"urls": [url], "username": "u", "credential": "c"}])


@pytest.mark.parametrize(
    "offer",
    [
        [],
        "turn:x",
        offer_with(ice_servers="stun:x"),
        offer_with(ice_servers=[{"urls": ["stun:x"]}] * 5),
        offer_with(ice_servers=[{"urls": ["stun:x"] * 5}]),
        offer_with(ice_servers=[{"urls": []}]),
        offer_with(ice_servers=[["stun:x"]]),
        offer_with(policy="none"),
        offer_with(policy="relay", ice_servers=[{"urls": ["stun:x"]}]),
        offer_with(expires_at="soon"),
        offer_with(expires_at=True),
        offer_with(expires_at=-1),
        offer_with(ice_servers=[{"urls": ["turn:x"]}]),  # no credentials
        offer_with(ice_servers=[{"urls": ["turn:x"], "username": "u", "credential": "c" * 257}]),
        offer_with(ice_servers=[{"urls": ["turn:x"], "username": "", "credential": "c"}]),
        offer_with(ice_servers=[{"urls": ["turn:x"], "username": 5, "credential": "c"}]),
        turn("turn:" + "a" * 252),  # 257 characters
        turn("turns:x:5349"),  # aiortc: turns only over TCP
        turn("turns:x?transport=udp"),
        turn("turn:x?transport=sctp"),
        turn("turn:[2001:db8::1]:3478"),  # aiortc cannot parse IPv6 literals
        turn("turn:x:0"),
        turn("turn:x:65536"),
        turn("turn:x y"),
        turn("turn:x\n"),
        turn("stuns:x"),
        turn("http://x"),
        offer_with(ice_servers=[{"urls": [7]}]),
    ],
)
def test_refuses_malformed_or_unbounded_offers(offer: object) -> None:
    with pytest.raises(RemoteIceConfigError) as caught:
        parse_ice_offer(offer)
    assert "\n" not in str(caught.value)


def test_accepts_the_bounds_exactly() -> None:
    longest = "turn:" + "a" * 251  # 256 characters
    servers = [{"urls": [longest] * 4, "username": "u" * 256, "credential": "c" * 256}] + [
        {"urls": ["stun:x"]}
    ] * 3
    ice = parse_ice_offer(offer_with(ice_servers=servers, policy="relay", expires_at=0))
    assert ice.turn_url == longest
    assert ice.policy == "relay"
