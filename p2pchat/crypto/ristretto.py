"""ristretto255 over the system libsodium (``pysodium``): the four operations CPace needs.

PyNaCl ships its own libsodium without the ristretto255 symbols, so this one
module imports ``pysodium`` (ctypes over Debian's ``libsodium23``), lazily: a
node that never makes a password link never loads it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

POINT_BYTES = 32
SCALAR_BYTES = 32
HASH_BYTES = 64


class RistrettoUnavailable(RuntimeError):
    """libsodium (or pysodium) is missing: password links cannot work here."""


class InvalidPoint(ValueError):
    """Remote bad data: not a ristretto255 encoding, or a product that is the identity."""


def ensure_available() -> None:
    """:class:`RistrettoUnavailable` (one line saying what to install) if libsodium is not here."""
    _sodium()


def from_hash(digest: bytes) -> bytes:
    """The ristretto255 element for a 64-byte uniform hash (RFC 9496 one-way map)."""
    if len(digest) != HASH_BYTES:
        raise ValueError(f"from_hash takes {HASH_BYTES} bytes")
    return bytes(_sodium().crypto_core_ristretto255_from_hash(digest))


def scalar_random() -> bytes:
    """A uniformly random non-zero scalar modulo the group order."""
    return bytes(_sodium().crypto_core_ristretto255_scalar_random())


def scalarmult(scalar: bytes, point: bytes) -> bytes:
    """``scalar · point``; :class:`InvalidPoint` for an invalid point or an identity result."""
    if len(scalar) != SCALAR_BYTES or len(point) != POINT_BYTES:
        raise InvalidPoint("a ristretto255 scalar and point are 32 bytes each")
    try:  # libsodium refuses a non-canonical encoding and an all-zero result
        return bytes(_sodium().crypto_scalarmult_ristretto255(scalar, point))
    except ValueError:
        raise InvalidPoint("not a usable ristretto255 point") from None


def is_valid(point: bytes) -> bool:
    """A canonical encoding of a non-identity element."""
    if len(point) != POINT_BYTES or point == bytes(POINT_BYTES):
        return False  # libsodium accepts the identity's encoding (all zeros): we do not
    return bool(_sodium().crypto_core_ristretto255_is_valid_point(point))


_module: ModuleType | None = None


def _sodium() -> Any:
    global _module
    if _module is None:
        try:
            import pysodium

            pysodium.crypto_core_ristretto255_is_valid_point  # noqa: B018 - present in this libsodium?
        except (ImportError, OSError, AttributeError, TypeError):
            raise RistrettoUnavailable(
                "password links need libsodium (Debian: apt install libsodium23)"
            ) from None
        _module = pysodium
    return _module
