"""Conversation ids of groups: ``group:`` + 32 lowercase hex digits, one spelling only."""

from __future__ import annotations

import pytest

from p2pchat.store.conversation_id import (
    contact_key_of,
    group_conversation_id,
    group_id_of,
    guest_conversation_id,
)

GROUP_ID = bytes(range(16))


def test_group_conversation_id_round_trip() -> None:
    conversation = group_conversation_id(GROUP_ID)
    assert conversation == "group:000102030405060708090a0b0c0d0e0f"
    assert group_id_of(conversation) == GROUP_ID


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_group_id_must_be_16_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        group_conversation_id(bytes(length))


@pytest.mark.parametrize(
    "conversation",
    [
        "group:000102030405060708090A0B0C0D0E0F",  # uppercase: a second spelling
        "group:000102030405060708090a0b0c0d0e",  # short
        "group:000102030405060708090a0b0c0d0e0f00",  # long
        "group:000102030405060708090a0b0c0d0e0g",  # not hex
        "group: 00102030405060708090a0b0c0d0e0f",  # fromhex would skip the space
        "guest:000102030405060708090a0b0c0d0e0f",
        "000102030405060708090a0b0c0d0e0f" * 2,  # a contact's id
        guest_conversation_id("g1"),
        "",
    ],
)
def test_other_ids_are_not_groups(conversation: str) -> None:
    assert group_id_of(conversation) is None


def test_a_group_id_is_not_a_contact_id() -> None:
    assert contact_key_of(group_conversation_id(GROUP_ID)) is None
