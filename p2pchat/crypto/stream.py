"""One direction of a chat session: ``crypto_secretstream_xchacha20poly1305``.

The stream gives ordering, truncation detection (a FINAL tag) and per-message
authentication; the keys come from an ephemeral ``crypto_kx`` exchange, so each
session has its own (forward secrecy per session).
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.bindings import (
    crypto_kx_client_session_keys,
    crypto_kx_keypair,
    crypto_kx_seed_keypair,
    crypto_kx_server_session_keys,
    crypto_secretstream_xchacha20poly1305_ABYTES,
    crypto_secretstream_xchacha20poly1305_HEADERBYTES,
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
)
from nacl.exceptions import CryptoError

HEADER_BYTES: int = crypto_secretstream_xchacha20poly1305_HEADERBYTES
OVERHEAD_BYTES: int = crypto_secretstream_xchacha20poly1305_ABYTES
KX_PUBLIC_KEY_BYTES = 32


class StreamError(Exception):
    """Remote bad data on a secret stream (tampered, reordered, truncated)."""


@dataclass(frozen=True)
class SessionKeys:
    rx: bytes
    tx: bytes


class KxKeyPair:
    """Ephemeral key pair for one session; ``seed`` only for test vectors."""

    def __init__(self, seed: bytes | None = None) -> None:
        if seed is None:
            self.public, self._secret = crypto_kx_keypair()
        else:
            self.public, self._secret = crypto_kx_seed_keypair(seed)

    def client_keys(self, server_public: bytes) -> SessionKeys:
        try:
            rx, tx = crypto_kx_client_session_keys(
                self.public, self._secret, _kx_key(server_public)
            )
        except CryptoError as exc:  # e.g. a low-order point: no shared secret
            raise StreamError("session key share is unusable") from exc
        return SessionKeys(rx=rx, tx=tx)

    def server_keys(self, client_public: bytes) -> SessionKeys:
        try:
            rx, tx = crypto_kx_server_session_keys(
                self.public, self._secret, _kx_key(client_public)
            )
        except CryptoError as exc:
            raise StreamError("session key share is unusable") from exc
        return SessionKeys(rx=rx, tx=tx)


class StreamSender:
    def __init__(self, key: bytes) -> None:
        self._state = crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = crypto_secretstream_xchacha20poly1305_init_push(self._state, key)

    def seal(self, plaintext: bytes, *, final: bool = False) -> bytes:
        tag = (
            crypto_secretstream_xchacha20poly1305_TAG_FINAL
            if final
            else crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
        )
        return crypto_secretstream_xchacha20poly1305_push(self._state, plaintext, None, tag)


class StreamReceiver:
    def __init__(self, key: bytes, header: bytes) -> None:
        if len(header) != HEADER_BYTES:
            raise StreamError("stream header has the wrong size")
        self._state = crypto_secretstream_xchacha20poly1305_state()
        crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self.finished = False

    def open(self, ciphertext: bytes) -> tuple[bytes, bool]:
        """Decrypt the next frame; returns (plaintext, is_final)."""
        if self.finished:
            raise StreamError("data after the end of the stream")
        if len(ciphertext) < OVERHEAD_BYTES:
            raise StreamError("stream frame too short")
        try:
            plaintext, tag = crypto_secretstream_xchacha20poly1305_pull(self._state, ciphertext)
        except CryptoError as exc:
            raise StreamError(
                "stream frame failed authentication (tampered or out of order)"
            ) from exc
        self.finished = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL
        return plaintext, self.finished


def _kx_key(public: bytes) -> bytes:
    if len(public) != KX_PUBLIC_KEY_BYTES:
        raise StreamError("session key share has the wrong size")
    return public
