"""coturn REST credentials and the IceOffer the server hands out (signaling/turn_credentials.py)."""

from __future__ import annotations

import pytest

from p2pchat.transport.ice_config import parse_ice_offer
from signaling.turn_credentials import IceProvider, TurnConfig, TurnConfigError, mint

SECRET = b"correct horse battery staple"
ROOM = "AbCdEfGhIjKlMnOpQrStUv"  # 22 characters, like every room id


def test_mint_matches_openssl() -> None:
    # printf '%s' '1800000000:rAbCdEfGhIj' \
    #   | openssl dgst -sha1 -hmac 'correct horse battery staple' -binary | base64
    assert mint(SECRET, ROOM, 1_799_996_400.7, 3600) == (
        "1800000000:rAbCdEfGhIj",
        "XLm/N/gKh1k4MO3nkMg+dyyp0to=",
    )
    # printf '%s' '1800003600:r0123456789' \
    #   | openssl dgst -sha1 -hmac 'p2pchat-test-secret-0001' -binary | base64
    assert mint(b"p2pchat-test-secret-0001", "0123456789abcdef", 1_800_003_300, 300) == (
        "1800003600:r0123456789",
        "iBgdbEr95oeoJKt0cDGtah1yJMo=",
    )


def config(**overrides: object) -> TurnConfig:
    values: dict[str, object] = {
        "turn_urls": ("turn:turn.example.org:3478?transport=udp",),
        "stun_urls": ("stun:turn.example.org:3478",),
        "secret": SECRET,
        "ttl": 3600,
        "policy": "all",
    }
    values.update(overrides)
    return TurnConfig(**values)  # type: ignore[arg-type]


def test_offer_shape_udp_turn_first_and_parses_on_the_node() -> None:
    turn = (
        "turns:turn.example.org:5349?transport=tcp",
        "turn:turn.example.org:3478?transport=tcp",
        "turn:turn.example.org",
    )
    offer = IceProvider(config(turn_urls=turn, policy="relay")).for_room(ROOM, 1_799_996_400)
    username, password = mint(SECRET, ROOM, 1_799_996_400, 3600)
    assert offer == {
        "ice_servers": [
            {
                "urls": [
                    "turn:turn.example.org",
                    "turns:turn.example.org:5349?transport=tcp",
                    "turn:turn.example.org:3478?transport=tcp",
                ],
                "username": username,
                "credential": password,
            },
            {"urls": ["stun:turn.example.org:3478"]},
        ],
        "policy": "relay",
        "expires_at": 1_800_000_000,
    }
    # What the server hands out, the node takes.
    parsed = parse_ice_offer(offer)
    assert parsed.policy == "relay"
    assert parsed.turn_url == "turn:turn.example.org"


def test_stun_only_offer_has_no_credentials() -> None:
    offer = IceProvider(config(turn_urls=(), secret=b"")).for_room(ROOM, 0)
    assert offer == {
        "ice_servers": [{"urls": ["stun:turn.example.org:3478"]}],
        "policy": "all",
        "expires_at": 3600,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"turn_urls": ("turn:[2001:db8::1]:3478",)}, "IPv6 literals"),
        ({"turn_urls": ("turns:turn.example.org:5349",)}, "needs .transport=tcp"),
        ({"turn_urls": ("turns:turn.example.org?transport=udp",)}, "needs .transport=tcp"),
        ({"turn_urls": ("http://turn.example.org",)}, "expected turn:"),
        ({"turn_urls": ("stun:turn.example.org",)}, "expected turn:"),
        ({"turn_urls": ("turn:turn.example.org?transport=sctp",)}, "expected turn:"),
        ({"turn_urls": ("turn:turn.example.org:70000",)}, "no such port"),
        ({"turn_urls": ("turn:" + "a" * 300,)}, "longer than 256"),
        ({"stun_urls": ("stuns:turn.example.org",)}, "expected stun:"),
        ({"stun_urls": ("stun:turn.example.org?transport=udp",)}, "expected stun:"),
        ({"turn_urls": (), "stun_urls": ()}, "at least one"),
        ({"stun_urls": ("stun:a", "stun:b", "stun:c", "stun:d")}, "at most 4"),
        ({"secret": b"fifteen chars.."}, "at least 16"),
        ({"ttl": 299}, "within 300..3600"),
        ({"ttl": 3601}, "within 300..3600"),
        ({"policy": "none"}, "one of: all, relay"),
        ({"policy": "relay", "turn_urls": ()}, "needs a --turn-url"),
    ],
)
def test_bad_config_is_one_clear_line(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TurnConfigError, match=message) as caught:
        config(**overrides)
    assert "\n" not in str(caught.value)


def test_secret_is_not_in_the_repr_or_the_offer() -> None:
    cfg = config()
    assert "horse" not in repr(cfg)
    assert "horse" not in repr(IceProvider(cfg).for_room(ROOM, 0))
