"""Long-term identity: one Ed25519 key per profile, and the names we show for it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from nacl.bindings import (
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.signing import SigningKey

from p2pchat.crypto import purposes
from p2pchat.crypto.encoding import b32_encode

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
PEER_ID_BYTES = 10  # 80 bits: 16 base32 characters
FINGERPRINT_BYTES = 32


@dataclass(frozen=True)
class Identity:
    """A profile's signing key. ``seed`` is the only secret that is stored."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise ValueError(f"identity seed must be {SEED_BYTES} bytes")

    @classmethod
    def generate(cls) -> Identity:
        return cls(bytes(SigningKey.generate()))

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def x25519_secret(self) -> bytes:
        sk = self.signing_key
        return crypto_sign_ed25519_sk_to_curve25519(bytes(sk) + bytes(sk.verify_key))

    @property
    def peer_id(self) -> str:
        return peer_id(self.public_key)


def x25519_public(public_key: bytes) -> bytes:
    """The X25519 key for an Ed25519 public key; ``ValueError`` for a bad key."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes")
    try:
        return crypto_sign_ed25519_pk_to_curve25519(public_key)
    except NaclRuntimeError as exc:  # not a point on the curve
        raise ValueError("not a valid Ed25519 public key") from exc


@functools.lru_cache(maxsize=4096)  # asked for on every message; the keys seen are few
def peer_id(public_key: bytes) -> str:
    """Short, readable id: 16 base32 characters in groups of four (``abcd-efgh-...``)."""
    text = b32_encode(purposes.derive(purposes.PEER_ID, public_key, PEER_ID_BYTES))
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalize_peer_id(text: str) -> str:
    """Lower-case, without separators: what users may type as a peer-id prefix."""
    return "".join(c for c in text.lower() if c.isalnum())


def fingerprint(public_key: bytes) -> str:
    """Full 256-bit fingerprint of a key, as 16 groups of 4 hex digits."""
    text = purposes.derive(purposes.FINGERPRINT, public_key, FINGERPRINT_BYTES).hex()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
