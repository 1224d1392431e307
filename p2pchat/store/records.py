"""The rows the store hands out and takes in: frozen dataclasses and enums.

Enum values are what is written to the database, so they must never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
MESSAGE_ID_BYTES = 16


class TrustState(Enum):
    """Where a contact stands. A key is pinned on first sight (TOFU), in any state."""

    PENDING_OUTGOING = "pending_outgoing"  # we asked, they have not answered
    PENDING_INCOMING = "pending_incoming"  # they asked, we have not answered
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    BLOCKED = "blocked"


class Direction(Enum):
    IN = "in"
    OUT = "out"


class DeliveryState(Enum):
    PENDING = "pending"  # waiting in the outbox for the contact to come online
    SENT = "sent"  # handed to the channel, no receipt yet
    DELIVERED = "delivered"  # the peer confirmed (always the state of incoming messages)


@dataclass(frozen=True)
class StoredIdentity:
    """Our own identity: the Ed25519 seed (the private key!) and our display name."""

    seed: bytes = field(repr=False)  # never in logs or tracebacks
    name: str  # our display name, shown to peers


@dataclass(frozen=True)
class Settings:
    keep_history: bool


@dataclass(frozen=True)
class Contact:
    public_key: bytes
    display_name: str
    trust: TrustState
    verified: bool  # safety number compared out of band
    pinned_at_ms: int  # when this key was first pinned; never moves on update


@dataclass(frozen=True)
class StoredMessage:
    message_id: bytes  # 16 bytes, unique across all conversations
    conversation_id: str  # see conversation_id.py
    direction: Direction
    sender: str  # display label at the time of sending
    timestamp_ms: int
    body: str
    delivery: DeliveryState


@dataclass(frozen=True)
class OutboxEntry:
    message_id: bytes
    conversation_id: str
    created_ms: int
    attempts: int
    body: str


@dataclass(frozen=True)
class ConversationSummary:
    conversation_id: str
    name: str  # contact name, else the guest's latest label, else the id
    last_message_ms: int
    message_count: int


@dataclass(frozen=True)
class SearchHit:
    message: StoredMessage
    snippet: str  # a few words around the match, matches wrapped in the given marks
