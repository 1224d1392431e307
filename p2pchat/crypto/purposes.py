"""Domain-separation strings for every BLAKE2b derivation.

BLAKE2b's *key* parameter carries the purpose. libsodium.js exposes keyed
``crypto_generichash`` in its standard build (personalisation needs the sumo
build), so the browser client can derive the same values.
"""

from __future__ import annotations

import nacl.hash
from nacl.encoding import RawEncoder

PEER_ID = b"p2pchat/v1/peer-id"
FINGERPRINT = b"p2pchat/v1/fingerprint"
SAFETY_NUMBER = b"p2pchat/v1/safety-number"
LINK_ROOM = b"p2pchat/v1/link-room"
LINK_ENVELOPE = b"p2pchat/v1/link-envelope"
# Groups (protocol/group_messages.py): a message's id, one fan-out copy's id, the chain link.
GROUP_MESSAGE_ID = b"p2pchat/v1/group-message-id"
GROUP_COPY_ID = b"p2pchat/v1/group-copy-id"
GROUP_CHAIN = b"p2pchat/v1/group-chain"
# Password links: the CPace ISK mixed into each session key (crypto/cpace.py).
PAKE_SESSION = b"p2pchat/v1/pake-session"


def derive(purpose: bytes, data: bytes, length: int) -> bytes:
    """BLAKE2b-``length`` of ``data`` keyed with ``purpose``."""
    return nacl.hash.blake2b(data, digest_size=length, key=purpose, encoder=RawEncoder)
