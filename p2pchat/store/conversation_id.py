"""Conversation ids: one string names a conversation in every table.

A contact's conversation is the lowercase hex of their 32-byte public key (stable,
pinned, and the same id on every restart). A browser guest has no long-term key,
so their conversation is ``guest:<id>`` with an id the node chooses per invite.
A group's is ``group:`` and the 32 lowercase hex digits of its 16-byte id.
"""

from __future__ import annotations

from p2pchat.store.records import GROUP_ID_BYTES, PUBLIC_KEY_BYTES

GUEST_PREFIX = "guest:"
GROUP_PREFIX = "group:"
_HEX_DIGITS = frozenset("0123456789abcdef")


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


def group_conversation_id(group_id: bytes) -> str:
    if len(group_id) != GROUP_ID_BYTES:
        raise ValueError(f"group id must be {GROUP_ID_BYTES} bytes, got {len(group_id)}")
    return GROUP_PREFIX + group_id.hex()


def group_id_of(conversation_id: str) -> bytes | None:
    """The group's id if ``conversation_id`` names a group, else None.

    Only the one spelling ``group_conversation_id`` gives (lowercase hex), so one
    group never has two conversation ids.
    """
    digits = conversation_id.removeprefix(GROUP_PREFIX)
    if (
        len(conversation_id) != len(GROUP_PREFIX) + 2 * GROUP_ID_BYTES
        or not conversation_id.startswith(GROUP_PREFIX)
        or not _HEX_DIGITS.issuperset(digits)
    ):
        return None
    return bytes.fromhex(digits)
