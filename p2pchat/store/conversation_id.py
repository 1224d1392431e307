"""Conversation ids: one string names a conversation in every table.

A contact's conversation is the lowercase hex of their 32-byte public key (stable,
pinned, and the same id on every restart). A browser guest has no long-term key,
so their conversation is ``guest:<id>`` with an id the node chooses per invite.
"""

from __future__ import annotations

from p2pchat.store.records import PUBLIC_KEY_BYTES

GUEST_PREFIX = "guest:"


def contact_conversation_id(public_key: bytes) -> str:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return public_key.hex()


def guest_conversation_id(guest_id: str) -> str:
    if not guest_id:
        raise ValueError("guest id must not be empty")
    return GUEST_PREFIX + guest_id


def contact_key_of(conversation_id: str) -> bytes | None:
    """The contact's public key if ``conversation_id`` names a contact, else None."""
    if len(conversation_id) != 2 * PUBLIC_KEY_BYTES:
        return None
    try:
        return bytes.fromhex(conversation_id)
    except ValueError:
        return None
