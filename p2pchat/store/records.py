"""The rows the store hands out and takes in: frozen dataclasses and enums.

Enum values are what is written to the database, so they must never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
MESSAGE_ID_BYTES = 16
GROUP_ID_BYTES = 16
CHAIN_HASH_BYTES = 32  # BLAKE2b-256 of a sender's previous group message
# Outbox entries carry the 1:1 frame type they go out as (the protocol's FrameType
# values, repeated here so the store does not import the protocol): 1 is text.
TEXT_FRAME_TYPE = 1
FILE_HASH_BYTES = 32  # BLAKE2b-256 of the whole file
FILE_KEY_BYTES = 32  # the transfer's XChaCha20-Poly1305 key


class TrustState(Enum):
    """Where a contact stands. A key is pinned on first sight (TOFU), in any state."""

    PENDING_OUTGOING = "pending_outgoing"  # we asked, they have not answered
    PENDING_INCOMING = "pending_incoming"  # they asked, we have not answered
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    BLOCKED = "blocked"
    # Pinned by a group's signed member list, never asked or accepted as a contact:
    # sessions with it are for that group only. Not listed by ``Profile.contacts()``.
    MEMBER = "member"


class Direction(Enum):
    IN = "in"
    OUT = "out"


# A transfer goes in or out, like a message.
TransferDirection = Direction


class MessageKind(Enum):
    """What a history row is: a text, or a file transfer (body = the file's name)."""

    TEXT = "text"
    FILE = "file"


class DeliveryState(Enum):
    PENDING = "pending"  # waiting in the outbox for the contact to come online
    SENT = "sent"  # handed to the channel, no receipt yet
    DELIVERED = "delivered"  # the peer confirmed (always the state of incoming messages)


@dataclass(frozen=True)
class StoredIdentity:
    """Our own identity: the Ed25519 seed (the private key!) and our display name."""

    seed: bytes = field(repr=False)  # never in logs or tracebacks
    name: str  # our display name, shown to peers


DEFAULT_AUTO_ACCEPT_BYTES = 100_000_000


@dataclass(frozen=True)
class Settings:
    keep_history: bool
    # Files from an accepted contact up to this size are accepted without asking.
    auto_accept_bytes: int = DEFAULT_AUTO_ACCEPT_BYTES
    downloads_dir: Path | None = None  # None: the platform's downloads folder
    # The default remote invite server (https://HOST[:PORT]); None: invites on the LAN.
    invite_server: str | None = None
    invite_server_token: str | None = field(default=None, repr=False)  # never shown


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
    # Group messages only: who really sent it (names in a group are not unique).
    sender_key: bytes | None = None
    kind: MessageKind = MessageKind.TEXT  # FILE: a transfer's row (Profile.files)


@dataclass(frozen=True)
class OutboxEntry:
    message_id: bytes
    conversation_id: str
    created_ms: int
    attempts: int
    body: str  # '' for a frame that is not text
    frame_type: int = TEXT_FRAME_TYPE
    payload: bytes | None = None  # the frame body when not text (an encoded group object)


class GroupState(Enum):
    ACTIVE = "active"
    LEFT = "left"  # I left it
    REMOVED = "removed"  # the admin removed me (a list without me arrived)


@dataclass(frozen=True)
class StoredGroup:
    """A group as this profile holds it: the latest signed member list, as it came."""

    group_id: bytes  # 16 random bytes chosen by the admin
    name: str  # the list's name (1..64 UTF-8 bytes)
    admin_key: bytes  # never changes for the group's life
    epoch: int  # the held list's epoch (1 at creation, +1 per change)
    member_list: bytes = field(repr=False)  # the encoded signed MemberList, byte for byte
    joined_epoch: int  # the epoch at which I joined: older messages are refused
    state: GroupState
    created_ms: int  # when this profile first stored the group; never moves on update


@dataclass(frozen=True)
class ChainState:
    """Where one sender's hash chain in one group stands (constant size per sender)."""

    last_seq: int
    last_hash: bytes


@dataclass(frozen=True)
class ConversationSummary:
    conversation_id: str
    name: str  # contact or group name, else the guest's latest label, else the id
    last_message_ms: int
    message_count: int


@dataclass(frozen=True)
class SearchHit:
    message: StoredMessage
    snippet: str  # a few words around the match, matches wrapped in the given marks


class TransferState(Enum):
    QUEUED = "queued"  # out: offered, waiting for the peer's answer
    OFFERED = "offered"  # in: waiting for the user (or auto-accept) to accept
    ACCEPTED = "accepted"  # accepted, no block moved yet in this session
    SENDING = "sending"
    RECEIVING = "receiving"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DECLINED = "declined"

    @property
    def finished(self) -> bool:
        """Ended for good: nothing resumes it, and its key is gone."""
        return self in _FINISHED


_FINISHED = frozenset(
    {TransferState.DONE, TransferState.FAILED, TransferState.CANCELLED, TransferState.DECLINED}
)


@dataclass(frozen=True)
class StoredTransfer:
    """One file transfer, in or out (``Profile.files``)."""

    transfer_id: bytes  # 16 random bytes: the offer's message_id, and the history row's
    conversation: str  # the peer's conversation id
    peer_key: bytes
    direction: Direction
    name: str  # as offered (out) or sanitized (in)
    size: int
    block_bytes: int
    file_hash: bytes  # BLAKE2b-256 of the whole file
    file_key: bytes | None = field(repr=False)  # secret; None once the transfer ended
    mime: str
    state: TransferState
    verified_blocks: int  # in: blocks on disk and verified; out: blocks acknowledged
    source_path: Path | None  # out: the file sent
    partial_path: Path | None  # in: the .part being written
    final_path: Path | None  # in, when done: where the file is
    error: str | None
    created_ms: int
    updated_ms: int
    # out: (st_dev, st_ino, st_mtime_ns, st_size) of the source when it was offered; a
    # change means other bytes under the same key and nonces, so the send stops.
    source_stamp: tuple[int, int, int, int] | None = None

    @property
    def block_count(self) -> int:
        return -(-self.size // self.block_bytes)
