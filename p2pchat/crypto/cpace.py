"""CPace (draft-irtf-cfrg-cpace), ristretto255 + SHA-512: the password second factor.

A guest (initiator A) and the owner (responder B) each send one share inside
the OFFER / ANSWER envelopes; both derive the same ISK only if they used the
same password. A share reveals nothing that allows an offline guess, so even
the server holding the link gets one online try per connection, counted by the
owner. The ISK is mixed into the ``crypto_kx`` session keys (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

from p2pchat.crypto import purposes, ristretto
from p2pchat.crypto.stream import SessionKeys
from p2pchat.protocol.errors import RemoteProtocolError

DSI = b"CPaceRistretto255"
DSI_ISK = b"CPaceRistretto255_ISK"
CHANNEL_ID = b"p2pchat/v1/cpace"
AD_INITIATOR = b"guest"  # ADa: the guest opens the session
AD_RESPONDER = b"owner"  # ADb
SHARE_BYTES = ristretto.POINT_BYTES
ISK_BYTES = 64
_SHA512_BLOCK = 128
_MIXED_KEY_BYTES = 32
MAX_PASSWORD_BYTES = 128


class PakeError(RemoteProtocolError):
    """The peer's share is not a usable ristretto255 element (or its product is the identity)."""

    code = "bad-pake"


@dataclass(frozen=True)
class CpaceStart:
    scalar: bytes = field(repr=False)
    share: bytes
    generator: bytes = field(repr=False)


def cpace_start(
    password: bytes, room_id: bytes, sid: bytes, *, scalar: bytes | None = None
) -> CpaceStart:
    """Our secret scalar and public share ``Y = y·g`` (``scalar`` only for test vectors)."""
    generator = calculate_generator(password, lv_cat(CHANNEL_ID, room_id), sid)
    scalar = scalar if scalar is not None else ristretto.scalar_random()
    return CpaceStart(scalar, ristretto.scalarmult(scalar, generator), generator)


def cpace_isk(start: CpaceStart, peer_share: bytes, *, sid: bytes, initiator: bool) -> bytes:
    """The 64-byte ISK (``transcript_ir``); :class:`PakeError` for an unusable peer share."""
    if len(peer_share) != SHARE_BYTES or not ristretto.is_valid(peer_share):
        raise PakeError("the password share is not a valid group element")
    try:
        k = ristretto.scalarmult(start.scalar, peer_share)
    except ristretto.InvalidPoint:
        raise PakeError("the password share is not usable") from None
    ya, yb = (start.share, peer_share) if initiator else (peer_share, start.share)
    return isk_ir(sid, k, ya, AD_INITIATOR, yb, AD_RESPONDER)


def mix_session_keys(keys: SessionKeys, isk: bytes) -> SessionKeys:
    """Bind the ``crypto_kx`` keys to the password: a wrong one gives keys that open nothing."""
    return SessionKeys(
        rx=purposes.derive(purposes.PAKE_SESSION, keys.rx + isk, _MIXED_KEY_BYTES),
        tx=purposes.derive(purposes.PAKE_SESSION, keys.tx + isk, _MIXED_KEY_BYTES),
    )


def normalize_password(text: str) -> bytes:
    """The bytes both sides feed CPace: NFKC, surrounding whitespace stripped, UTF-8,
    1..128 bytes (``ValueError`` otherwise), so a phone keyboard and a terminal agree."""
    data = unicodedata.normalize("NFKC", text).strip().encode("utf-8")
    if not 0 < len(data) <= MAX_PASSWORD_BYTES:
        raise ValueError(f"a link password is 1 to {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    return data


# -- the draft's building blocks (public for the test vectors) ---------------


def calculate_generator(prs: bytes, ci: bytes, sid: bytes) -> bytes:
    return ristretto.from_hash(hashlib.sha512(generator_string(prs, ci, sid)).digest())


def generator_string(prs: bytes, ci: bytes, sid: bytes) -> bytes:
    len_zpad = max(0, _SHA512_BLOCK - 1 - len(prepend_len(prs)) - len(prepend_len(DSI)))
    return lv_cat(DSI, prs, bytes(len_zpad), ci, sid)


def isk_ir(sid: bytes, k: bytes, ya: bytes, ada: bytes, yb: bytes, adb: bytes) -> bytes:
    transcript = lv_cat(ya, ada) + lv_cat(yb, adb)
    return hashlib.sha512(lv_cat(DSI_ISK, sid, k) + transcript).digest()


def prepend_len(data: bytes) -> bytes:
    """LEB128 length, then the data."""
    length, encoded = len(data), bytearray()
    while True:
        if length < 128:
            encoded.append(length)
        else:
            encoded.append((length & 0x7F) | 0x80)
        length >>= 7
        if length == 0:
            return bytes(encoded) + data


def lv_cat(*parts: bytes) -> bytes:
    return b"".join(prepend_len(part) for part in parts)
