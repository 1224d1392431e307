"""The TXT-record codec: round trip, every malformed record is an AdvertError."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.discovery.txt import (
    MAX_NAME_BYTES,
    AdvertError,
    PeerAdvert,
    decode_txt,
    encode_txt,
)


def fake_peer_id(public_key: bytes) -> str:
    """Stand-in for the crypto module's peer_id: same shape, any hash will do here."""
    text = base64.b32encode(hashlib.sha256(public_key).digest()[:10]).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


KEY = bytes(range(32))
ADVERT = PeerAdvert(1, fake_peer_id(KEY), KEY, "alice")


def props(**fields: str | bytes | None) -> dict[bytes, bytes | None]:
    base: dict[str, str | bytes | None] = dict(encode_txt(ADVERT))
    base.update(fields)
    return {
        k.encode(): (v.encode() if isinstance(v, str) else v)
        for k, v in base.items()
        if v != "<absent>"
    }


def decode(p: dict[bytes, bytes | None]) -> PeerAdvert:
    return decode_txt(p, peer_id_of=fake_peer_id)


def test_encode_known_answer() -> None:
    assert encode_txt(ADVERT) == {
        "v": "1",
        "id": ADVERT.peer_id,
        "pk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "name": "alice",
    }


def test_decode_valid() -> None:
    assert decode(props()) == ADVERT


def test_keys_are_case_insensitive_and_unknown_keys_ignored() -> None:
    p = {k.upper(): v for k, v in props().items()}
    p[b"future"] = b"x"
    p[b"\xff"] = None
    assert decode(p) == ADVERT


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"v": "<absent>"}, "missing"),
        ({"id": "<absent>"}, "missing"),
        ({"pk": "<absent>"}, "missing"),
        ({"name": "<absent>"}, "missing"),
        ({"name": None}, "missing"),
        ({"v": "2"}, "version"),
        ({"v": "01"}, "version"),
        ({"pk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, "base64url"),
        ({"pk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+"}, "base64url"),
        ({"pk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9"}, "canonical"),
        ({"pk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg"}, "32 bytes"),
        ({"pk": "A" * 65}, "longer"),
        ({"name": "x" * (MAX_NAME_BYTES + 1)}, "longer"),
        ({"name": "é" * 33}, "longer"),
        ({"name": b"\xff\xfe"}, "UTF-8"),
        ({"name": ""}, "name"),
        ({"name": "evil\x1b[2J"}, "control"),
        ({"name": "abc\u202egnp.exe"}, "control"),
        ({"id": "ABCD-EFGH"}, "base32"),
        ({"id": "abcd-efgh-ijkl-mnop"}, "does not match"),
    ],
)
def test_malformed(fields: dict[str, str | bytes | None], message: str) -> None:
    with pytest.raises(AdvertError, match=message):
        decode(props(**fields))


def test_duplicate_keys_differing_in_case() -> None:
    p = props()
    p[b"NAME"] = b"mallory"
    with pytest.raises(AdvertError, match="duplicate"):
        decode(p)


def test_peer_id_of_refusing_the_key_is_an_advert_error() -> None:
    def refuse(_key: bytes) -> str:
        raise ValueError("not a valid Ed25519 public key")

    with pytest.raises(AdvertError, match="Ed25519"):
        decode_txt(props(), peer_id_of=refuse)


def test_invalid_local_advert_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PeerAdvert(1, ADVERT.peer_id, b"short", "alice")


names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u202e\u2066"),
    min_size=1,
).filter(lambda s: len(s.encode()) <= MAX_NAME_BYTES)


@given(key=st.binary(min_size=32, max_size=32), name=names)
def test_round_trip(key: bytes, name: str) -> None:
    advert = PeerAdvert(1, fake_peer_id(key), key, name)
    wire = {k.encode(): v.encode() for k, v in encode_txt(advert).items()}
    assert decode(wire) == advert


keys = st.sampled_from([b"v", b"id", b"pk", b"name", b"V", b"Name", b"x"]) | st.binary(max_size=8)
values = st.none() | st.binary(max_size=80) | st.sampled_from(list(props().values()))


@given(st.dictionaries(keys, values, max_size=8))
def test_any_mapping_is_an_advert_or_an_advert_error(p: dict[bytes, bytes | None]) -> None:
    try:
        advert = decode(p)
    except AdvertError:
        return
    assert isinstance(advert, PeerAdvert)


@given(
    st.fixed_dictionaries(
        {b"v": st.sampled_from([b"1", b"2", None])},
        optional={
            b"id": st.sampled_from([props()[b"id"], b"abcd", b""]),
            b"pk": st.binary(max_size=48).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")),
            b"name": st.binary(max_size=70),
        },
    )
)
def test_near_valid_mappings_never_crash(p: dict[bytes, bytes | None]) -> None:
    with contextlib.suppress(AdvertError):
        decode(p)


def test_id_check_can_be_left_to_the_caller() -> None:
    """The node decodes with ``peer_id_of=None`` so a spoofed id reaches its key-change check."""
    key = bytes(range(32))
    props = {
        b"v": b"1",
        b"id": b"aaaa-bbbb-cccc-dddd",
        b"pk": base64.urlsafe_b64encode(key).rstrip(b"="),
        b"name": b"x",
    }
    advert = decode_txt(props, peer_id_of=None)
    assert advert.peer_id == "aaaa-bbbb-cccc-dddd"
    assert advert.public_key == key
