"""What the TUI reads from the encrypted history: the store API, nothing lower.

``HistoryReader`` is all the screens need; ``ProfileHistory`` is it over the
open Profile (the node's own, on the same event loop: one caller at a time).
"""

from __future__ import annotations

from typing import Protocol

from p2pchat.crypto.identity import peer_id
from p2pchat.store import (
    ConversationSummary,
    Profile,
    SearchHit,
    StoredMessage,
    contact_conversation_id,
    contact_key_of,
    group_id_of,
)

# Matched words in search snippets are wrapped in these (private-use characters:
# they cannot be confused with markup, and the chat text never needs them).
MARK_START = "\ue000"
MARK_END = "\ue001"


class HistoryReader(Protocol):
    @property
    def keep_history(self) -> bool: ...
    def messages(self, label: str, *, limit: int) -> list[StoredMessage]: ...
    def reached(self, label: str) -> dict[str, list[str]]: ...
    def search(self, query: str, *, limit: int) -> list[SearchHit]: ...
    def conversations(self) -> list[ConversationSummary]: ...
    def label_of(self, conversation_id: str) -> str: ...


class ProfileHistory:
    def __init__(self, profile: Profile) -> None:
        self._profile = profile

    @property
    def keep_history(self) -> bool:
        return self._profile.settings.keep_history

    def messages(self, label: str, *, limit: int) -> list[StoredMessage]:
        conversation = self._conversation_of(label)
        if conversation is None:
            return []
        return self._profile.messages(conversation, limit=limit)

    def reached(self, label: str) -> dict[str, list[str]]:
        """Of my messages in a group: message id (hex) → the members (peer ids) whose
        receipt came (what ``history --json`` calls delivered_to). {} for a 1:1."""
        if group_id_of(label) is None:
            return {}
        held = self._profile.groups.deliveries(label)
        return {m.hex(): [peer_id(k) for k in keys] for m, keys in held.items()}

    def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Raises InvalidSearchQuery (a StoreError, with a user_message)."""
        return self._profile.search(query, limit=limit, marks=(MARK_START, MARK_END))

    def conversations(self) -> list[ConversationSummary]:
        return self._profile.conversations()

    def label_of(self, conversation_id: str) -> str:
        """A contact's peer id, or the guest's or group's label (the conversation id)."""
        key = contact_key_of(conversation_id)
        return peer_id(key) if key is not None else conversation_id

    def _conversation_of(self, label: str) -> str | None:
        # A guest's and a group's label is their conversation id already.
        if label.startswith("guest:") or group_id_of(label) is not None:
            return label
        for contact in self._profile.contacts():
            if peer_id(contact.public_key) == label:
                return contact_conversation_id(contact.public_key)
        return None
