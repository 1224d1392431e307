from __future__ import annotations

import pytest

from p2pchat.crypto.envelope import (
    Direction,
    LanEnvelopes,
    ReflectedEnvelope,
    ReplayedEnvelope,
    ReplayGuard,
    StaleEnvelope,
    TamperedEnvelope,
    UnsupportedEnvelope,
)
from p2pchat.crypto.identity import Identity, normalize_peer_id, peer_id, x25519_public
from p2pchat.crypto.link import LinkSecret

NOW = 1_700_000_000_000


def test_peer_id_shape() -> None:
    pid = Identity.generate().peer_id
    assert len(pid) == 19
    assert [len(g) for g in pid.split("-")] == [4, 4, 4, 4]
    assert normalize_peer_id(pid.upper()) == pid.replace("-", "")


def test_distinct_keys_distinct_ids() -> None:
    assert len({peer_id(Identity.generate().public_key) for _ in range(200)}) == 200


def test_bad_public_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        x25519_public(b"short")


def test_lan_envelope_errors_are_distinct() -> None:
    alice, bob, mallory = Identity.generate(), Identity.generate(), Identity.generate()
    a_to_b = LanEnvelopes(alice, bob.public_key, ReplayGuard())
    sealed = a_to_b.seal(1, Direction.INITIATOR, bytes(16), b"hi", NOW)

    bob_side = LanEnvelopes(bob, alice.public_key, ReplayGuard())
    assert bob_side.open(sealed, Direction.INITIATOR, NOW).body == b"hi"
    with pytest.raises(ReplayedEnvelope):
        bob_side.open(sealed, Direction.INITIATOR, NOW)
    with pytest.raises(StaleEnvelope):
        LanEnvelopes(bob, alice.public_key, ReplayGuard()).open(
            sealed, Direction.INITIATOR, NOW + 10 * 60 * 1000
        )
    # Someone else's key cannot open it.
    with pytest.raises(TamperedEnvelope):
        LanEnvelopes(mallory, alice.public_key, ReplayGuard()).open(
            sealed, Direction.INITIATOR, NOW
        )
    # Reflection: the envelope comes back to alice, the sender rewritten to bob.
    reflected = sealed[:2] + bob.public_key + sealed[34:]
    with pytest.raises(ReflectedEnvelope):
        LanEnvelopes(alice, bob.public_key, ReplayGuard()).open(reflected, Direction.INITIATOR, NOW)
    with pytest.raises(UnsupportedEnvelope):
        bob_side.open(b"\x02" + sealed[1:], Direction.INITIATOR, NOW)


def test_replay_guard_is_bounded_and_safe_on_eviction() -> None:
    guard = ReplayGuard(capacity=3)
    for i in range(3):
        guard.check(bytes([i]) * 24, NOW + i, NOW)
    guard.check(b"\x09" * 24, NOW + 5, NOW)  # evicts nonce 0 (ts NOW)
    with pytest.raises(StaleEnvelope):
        guard.check(b"\x00" * 24, NOW, NOW)  # the evicted one cannot be replayed
    assert len(guard._seen) == 3


def test_link_url_and_fragment() -> None:
    link = LinkSecret.generate()
    url = link.url("fe80::1", 8443)
    assert url.startswith("https://[fe80::1]:8443/c/")
    assert url.endswith("#" + link.fragment)
    assert link.fragment not in link.room_id
    with pytest.raises(ValueError, match="damaged"):
        LinkSecret.from_fragment("#abc")


@pytest.mark.parametrize("text", ["A.B.C.D", "AB==", "AB+/", "A", "AB C", "AR"])
def test_b64url_is_strict(text: str) -> None:
    from p2pchat.crypto.encoding import b64url_decode

    with pytest.raises(ValueError, match="base64url"):
        b64url_decode(text)


def test_handshake_version_must_be_the_integer_1() -> None:
    from p2pchat.protocol.handshake import HandshakeError, decode_handshake

    for version in ("true", "1.0", '"1"'):
        doc = '{{"v": {}, "sdp": "v=0", "kx": "{}"}}'.format(version, "A" * 43)
        with pytest.raises(HandshakeError):
            decode_handshake(doc.encode())
