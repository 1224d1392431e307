"""Chunk encryption and hashes for file transfers (libsodium primitives, so a browser
guest can speak the same bytes with libsodium-wrappers).

XChaCha20-Poly1305-IETF with a deterministic nonce ``transfer_id || block u32 || chunk u16
|| 00 00`` and the chunk header as additional data. Safe because each transfer has its
own random key (sent only inside the secret stream) and a (block, chunk) pair always
carries the same plaintext: a resend re-encrypts identical bytes, so no nonce ever seals
two different messages under one key. BLAKE2b-256 for blocks and whole files.
"""

from __future__ import annotations

import hashlib
import struct

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from p2pchat.protocol.file_wire import HASH_BYTES, KEY_BYTES, TRANSFER_ID_BYTES, FileWireError


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_BYTES).digest()


def new_file_hasher() -> hashlib.blake2b:
    """A streaming BLAKE2b-256 for whole files (the node feeds it block by block)."""
    return hashlib.blake2b(digest_size=HASH_BYTES)


def chunk_nonce(transfer_id: bytes, block: int, chunk: int) -> bytes:
    if len(transfer_id) != TRANSFER_ID_BYTES:
        raise ValueError(f"transfer id must be {TRANSFER_ID_BYTES} bytes")
    return transfer_id + struct.pack(">IH", block, chunk) + b"\x00\x00"


def seal_chunk(
    key: bytes, header: bytes, transfer_id: bytes, block: int, chunk: int, plaintext: bytes
) -> bytes:
    """The chunk message: ``header`` then the ciphertext (``header`` is the additional data)."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"file key must be {KEY_BYTES} bytes")
    nonce = chunk_nonce(transfer_id, block, chunk)
    return header + crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, header, nonce, key)


def open_chunk(
    key: bytes, header: bytes, transfer_id: bytes, block: int, chunk: int, ciphertext: bytes
) -> bytes:
    """The plaintext of a chunk; ``file-bad-ciphertext`` if it does not authenticate."""
    nonce = chunk_nonce(transfer_id, block, chunk)
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, header, nonce, key)
    except CryptoError:
        raise FileWireError(
            f"file chunk {block}/{chunk} does not authenticate", code="file-bad-ciphertext"
        ) from None
