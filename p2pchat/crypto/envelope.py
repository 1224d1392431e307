"""Authenticated signaling envelopes.

DTLS authenticates only the certificate named in the SDP, so whoever can rewrite
the SDP sits in the middle (RFC 8826). Every offer and answer therefore travels
inside one of these envelopes:

* LAN peers: ``crypto_box`` from the sender's to the recipient's X25519 key
  (converted from their Ed25519 identities).
* Browser guests: XChaCha20-Poly1305 under a key derived from the link secret.

Each envelope binds a kind, a direction, a session id and a timestamp. Openers
reject tampering, reflection (our own envelope sent back to us), stale
timestamps and replays, each with its own error. Wire format: docs/protocol.md.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_box_afternm,
    crypto_box_beforenm,
    crypto_box_open_afternm,
)
from nacl.exceptions import CryptoError

from p2pchat.crypto.identity import PUBLIC_KEY_BYTES, Identity, x25519_public

VERSION = 1
NONCE_BYTES = 24
SESSION_ID_BYTES = 16
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_BODY_BYTES = 48 * 1024
# Home LANs often have no time server; allow for clocks that are minutes apart.
DEFAULT_MAX_AGE_MS = 5 * 60 * 1000

_INNER = struct.Struct(">BB16sQ")  # kind, direction, session id, timestamp (ms)
_MAC_BYTES = 16


class Scheme(IntEnum):
    LAN_BOX = 1
    LINK_KEY = 2


class Direction(IntEnum):
    """Who sent it: the side that made the offer, or the side that answers."""

    INITIATOR = 1
    RESPONDER = 2

    @property
    def opposite(self) -> Direction:
        return Direction.RESPONDER if self is Direction.INITIATOR else Direction.INITIATOR


class EnvelopeError(Exception):
    """Remote bad data: an envelope we refuse. ``code`` is stable and documented."""

    code = "envelope"


class MalformedEnvelope(EnvelopeError):
    code = "malformed"


class UnsupportedEnvelope(EnvelopeError):
    code = "unsupported"


class TamperedEnvelope(EnvelopeError):
    code = "tampered"


class ReflectedEnvelope(EnvelopeError):
    code = "reflected"


class StaleEnvelope(EnvelopeError):
    code = "stale"


class ReplayedEnvelope(EnvelopeError):
    code = "replayed"


@dataclass(frozen=True)
class OpenedEnvelope:
    kind: int
    direction: Direction
    session_id: bytes
    timestamp_ms: int
    body: bytes
    sender_key: bytes | None  # the sender's Ed25519 key (LAN envelopes only)


class ReplayGuard:
    """Remembers envelope nonces for as long as their timestamps are acceptable.

    Bounded: when full, the oldest entry is dropped and everything at least as
    old as it is refused as stale from then on, so a replay can never slip in
    through eviction.

    ``seen_before``: another guard whose nonces also count as seen here (read, never
    written): a sender that moves from the shared stranger guard to a guard of its
    own cannot have its earlier envelopes replayed into the new one.
    """

    def __init__(
        self,
        max_age_ms: int = DEFAULT_MAX_AGE_MS,
        capacity: int = 65_536,
        *,
        seen_before: ReplayGuard | None = None,
    ) -> None:
        self.max_age_ms = max_age_ms
        self._capacity = capacity
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._floor_ms = -1
        self._seen_before = seen_before

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, nonce: bytes, timestamp_ms: int, now_ms: int) -> None:
        if abs(now_ms - timestamp_ms) > self.max_age_ms:
            raise StaleEnvelope(
                "envelope is too old or from the future: check that both clocks are right"
            )
        if timestamp_ms <= self._floor_ms:
            raise StaleEnvelope("envelope is older than the replay window kept in memory")
        if nonce in self._seen or (
            self._seen_before is not None and nonce in self._seen_before._seen
        ):
            raise ReplayedEnvelope("envelope was already received (replay)")
        self._expire(now_ms)
        if len(self._seen) >= self._capacity:
            _, oldest_ts = self._seen.popitem(last=False)
            self._floor_ms = max(self._floor_ms, oldest_ts)
        self._seen[nonce] = timestamp_ms

    def _expire(self, now_ms: int) -> None:
        while self._seen:
            nonce, ts = next(iter(self._seen.items()))
            if now_ms - ts <= self.max_age_ms:
                break
            del self._seen[nonce]
            self._floor_ms = max(self._floor_ms, ts)


def peek_lan_sender(data: bytes) -> bytes:
    """The sender key a LAN envelope claims, before any check (to look up the pin)."""
    _check_outer(data, Scheme.LAN_BOX, 2 + PUBLIC_KEY_BYTES + NONCE_BYTES)
    return data[2 : 2 + PUBLIC_KEY_BYTES]


class LanEnvelopes:
    """Seal and open envelopes between our identity and one peer's key."""

    def __init__(self, identity: Identity, peer_key: bytes, guard: ReplayGuard) -> None:
        self._identity_key = identity.public_key
        self._peer_key = peer_key
        self._shared = crypto_box_beforenm(x25519_public(peer_key), identity.x25519_secret)
        self._guard = guard

    def seal(
        self,
        kind: int,
        direction: Direction,
        session_id: bytes,
        body: bytes,
        now_ms: int,
        *,
        nonce: bytes | None = None,
    ) -> bytes:
        nonce = nonce or os.urandom(NONCE_BYTES)
        inner = _pack_inner(kind, direction, session_id, now_ms, body) + self._peer_key
        outer = bytes([VERSION, Scheme.LAN_BOX]) + self._identity_key + nonce
        return outer + crypto_box_afternm(inner, nonce, self._shared)

    def open(self, data: bytes, expected: Direction, now_ms: int) -> OpenedEnvelope:
        header = 2 + PUBLIC_KEY_BYTES + NONCE_BYTES
        _check_outer(data, Scheme.LAN_BOX, header + _MAC_BYTES + _INNER.size + PUBLIC_KEY_BYTES)
        if data[2 : 2 + PUBLIC_KEY_BYTES] != self._peer_key:
            raise TamperedEnvelope("envelope is not from the expected peer")
        nonce = data[2 + PUBLIC_KEY_BYTES : header]
        try:
            inner = crypto_box_open_afternm(data[header:], nonce, self._shared)
        except CryptoError as exc:
            raise TamperedEnvelope(
                "envelope failed authentication (tampered or wrong key)"
            ) from exc
        if len(inner) < _INNER.size + PUBLIC_KEY_BYTES:
            raise MalformedEnvelope("envelope too short")
        # A box opens with either party's secret key, so an envelope we sealed
        # ourselves would open too: the recipient and direction inside tell.
        if inner[-PUBLIC_KEY_BYTES:] != self._identity_key:
            raise ReflectedEnvelope("envelope was addressed to someone else (reflected)")
        opened = _unpack_inner(inner[:-PUBLIC_KEY_BYTES], expected, self._peer_key)
        # Keyed by sender too: strangers share one guard, and one cannot spend another's nonce.
        self._guard.check(self._peer_key + nonce, opened.timestamp_ms, now_ms)
        return opened


class LinkEnvelopes:
    """Seal and open envelopes under the key derived from an invite-link secret."""

    def __init__(self, envelope_key: bytes, guard: ReplayGuard) -> None:
        self._key = envelope_key
        self._guard = guard

    def seal(
        self,
        kind: int,
        direction: Direction,
        session_id: bytes,
        body: bytes,
        now_ms: int,
        *,
        nonce: bytes | None = None,
    ) -> bytes:
        nonce = nonce or os.urandom(NONCE_BYTES)
        ad = bytes([VERSION, Scheme.LINK_KEY])
        inner = _pack_inner(kind, direction, session_id, now_ms, body)
        return ad + nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(inner, ad, nonce, self._key)

    def open(self, data: bytes, expected: Direction, now_ms: int) -> OpenedEnvelope:
        header = 2 + NONCE_BYTES
        _check_outer(data, Scheme.LINK_KEY, header + _MAC_BYTES + _INNER.size)
        nonce = data[2:header]
        try:
            inner = crypto_aead_xchacha20poly1305_ietf_decrypt(
                data[header:], data[:2], nonce, self._key
            )
        except CryptoError as exc:
            raise TamperedEnvelope(
                "envelope failed authentication (tampered or wrong link)"
            ) from exc
        opened = _unpack_inner(inner, expected, None)
        self._guard.check(nonce, opened.timestamp_ms, now_ms)
        return opened


def _pack_inner(
    kind: int, direction: Direction, session_id: bytes, now_ms: int, body: bytes
) -> bytes:
    if len(session_id) != SESSION_ID_BYTES:
        raise ValueError(f"session id must be {SESSION_ID_BYTES} bytes")
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"envelope body over {MAX_BODY_BYTES} bytes")
    return _INNER.pack(kind, direction, session_id, now_ms) + body


def _unpack_inner(inner: bytes, expected: Direction, sender_key: bytes | None) -> OpenedEnvelope:
    if len(inner) < _INNER.size:
        raise MalformedEnvelope("envelope too short")
    kind, direction, session_id, timestamp_ms = _INNER.unpack_from(inner)
    if direction not in (Direction.INITIATOR, Direction.RESPONDER):
        raise MalformedEnvelope("envelope has an unknown direction")
    if direction != expected:
        raise ReflectedEnvelope("envelope goes the wrong way (reflected)")
    return OpenedEnvelope(
        kind=kind,
        direction=Direction(direction),
        session_id=session_id,
        timestamp_ms=timestamp_ms,
        body=inner[_INNER.size :],
        sender_key=sender_key,
    )


def _check_outer(data: bytes, scheme: Scheme, min_size: int) -> None:
    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEnvelope(f"envelope over {MAX_ENVELOPE_BYTES} bytes")
    if len(data) < 2:
        raise MalformedEnvelope("envelope too short")
    if data[0] != VERSION:
        raise UnsupportedEnvelope(f"envelope version {data[0]} is not supported (want {VERSION})")
    if data[1] != scheme:
        raise MalformedEnvelope("envelope uses another scheme")
    if len(data) < min_size:
        raise MalformedEnvelope("envelope too short")
