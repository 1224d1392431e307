"""What the running node tells its front ends (``watch``, the TUI).

Frozen dataclasses under one base; ``to_json`` gives the one-line JSON object
that ``p2pchat watch --json`` prints. Keys are hex or base64url strings, never bytes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class NodeEvent:
    type: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        # Shallow: fields are str/int/bool/None or lists of str. dataclasses.asdict
        # deep-copies recursively and costs ~10x more, once per event per watcher.
        doc: dict[str, Any] = {"type": self.type}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            doc[name] = list(value) if isinstance(value, list) else value
        return doc


_FIELD_NAMES: dict[type[NodeEvent], tuple[str, ...]] = {}


def _field_names(cls: type[NodeEvent]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass(frozen=True)
class NodeStarted(NodeEvent):
    type: ClassVar[str] = "node_started"
    name: str
    peer_id: str
    port: int


@dataclass(frozen=True)
class PeerFound(NodeEvent):
    type: ClassVar[str] = "peer_found"
    peer_id: str
    name: str
    addresses: list[str]
    is_contact: bool


@dataclass(frozen=True)
class PeerLost(NodeEvent):
    type: ClassVar[str] = "peer_lost"
    peer_id: str
    name: str


@dataclass(frozen=True)
class ContactRequestReceived(NodeEvent):
    type: ClassVar[str] = "contact_request"
    peer_id: str
    name: str


@dataclass(frozen=True)
class ContactAccepted(NodeEvent):
    """A contact is now mutual (we accepted, or they accepted our request)."""

    type: ClassVar[str] = "contact_accepted"
    peer_id: str
    name: str


@dataclass(frozen=True)
class ContactRejected(NodeEvent):
    type: ClassVar[str] = "contact_rejected"
    peer_id: str
    name: str


@dataclass(frozen=True)
class SessionChanged(NodeEvent):
    """``state``: "connecting", "open" or "closed"; ``reason`` when closed."""

    type: ClassVar[str] = "session"
    peer_id: str
    name: str
    state: str
    reason: str | None = None


@dataclass(frozen=True)
class MessageEvent(NodeEvent):
    """A message shown in a conversation: received, or sent by us (``direction``)."""

    type: ClassVar[str] = "message"
    conversation: str
    peer_id: str
    sender: str
    direction: str  # "in" | "out"
    message_id: str  # hex
    timestamp_ms: int
    text: str
    # A group message (conversation "group:<group_id>"): the group, and who wrote it
    # (``peer_id`` is the session it came on; for a group, the sender's peer id, or a
    # guest's "guest:<id>"). None for a 1:1 message.
    group_id: str | None = None  # 32 hex digits
    group_name: str | None = None
    sender_id: str | None = None
    missing_before: int = 0  # messages of this sender that never arrived before this one


@dataclass(frozen=True)
class GroupChanged(NodeEvent):
    """A group I am in changed (or I joined, left, or was removed from it)."""

    type: ClassVar[str] = "group_changed"
    group_id: str  # 32 hex digits
    group_name: str
    # "created" | "joined" | "member_added" | "member_removed" | "member_left" |
    # "you_left" | "you_were_removed" | "name_clash" (a member newly listed under one of
    # my contacts' names with another key: not that contact)
    change: str
    member_id: str | None  # the member concerned (peer id, or "guest:<id>"); None: the group
    member_name: str | None
    epoch: int


@dataclass(frozen=True)
class GroupMessageRefused(NodeEvent):
    """A group message or member list that failed a check (docs/protocol.md "Groups")."""

    type: ClassVar[str] = "group_message_refused"
    group_id: str  # 32 hex digits, or "" if it named no group I hold
    from_peer_id: str  # the session it came on
    code: str  # e.g. "group-bad-signature", "group-replay", "group-not-member"
    reason: str  # one line


@dataclass(frozen=True)
class ReceiptEvent(NodeEvent):
    type: ClassVar[str] = "receipt"
    conversation: str
    peer_id: str
    message_id: str


@dataclass(frozen=True)
class KeyChangeWarning(NodeEvent):
    """Someone on the LAN claims a known contact's name or id with another key (an
    mDNS advert, or a contact request under the contact's name). Blocking: no
    connection is made to that key, whatever the user does."""

    type: ClassVar[str] = "key_warning"
    peer_id: str
    name: str
    pinned_fingerprint: str
    advertised_fingerprint: str  # the latest offending key
    advertised_peer_id: str
    # One warning per contact: later attempts update it (at most every few seconds)
    # with how many there were and where the latest came from.
    count: int = 1
    source: str = "advert"  # "advert" (mDNS) | "contact_request"
    address: str = ""


@dataclass(frozen=True)
class EventsDropped(NodeEvent):
    """This subscriber fell too far behind: ``missed`` events were dropped. The
    present state (peers on the LAN, open sessions) follows at once."""

    type: ClassVar[str] = "events_dropped"
    missed: int


@dataclass(frozen=True)
class GuestWaiting(NodeEvent):
    """A guest came in through an ``--approve`` invite: `p2pchat admit` lets them in."""

    type: ClassVar[str] = "guest_waiting"
    peer_id: str  # "guest:<id>"
    name: str
    invite_id: str


@dataclass(frozen=True)
class GuestJoined(NodeEvent):
    """A guest's session is open. Read ``safety_number`` out to check nobody is in between."""

    type: ClassVar[str] = "guest_joined"
    peer_id: str
    name: str
    invite_id: str
    safety_number: str
    # "direct" (WebRTC) | "turn" (WebRTC through a TURN server) | "relay" (through the
    # signaling server); all three end to end encrypted
    path: str
    relay_reason: str = ""  # on the relay path: why not direct, as far as the node knows


@dataclass(frozen=True)
class GuestPath(NodeEvent):
    """A joined guest's WebRTC session moved to another path ("direct" | "turn"): ICE
    may select a better candidate pair after the session opened (Chromium starts on the
    first pair that answers, often the TURN one, and moves to a direct one)."""

    type: ClassVar[str] = "guest_path"
    peer_id: str
    name: str
    path: str


@dataclass(frozen=True)
class GuestLeft(NodeEvent):
    type: ClassVar[str] = "guest_left"
    peer_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class GuestRefused(NodeEvent):
    """A guest's attempt to come in failed: refused (a used-up, expired or revoked link,
    a failed handshake, too many waiting) or answered but never opened (``reason``
    says which). ``peer_id`` ("guest:<id>") and ``name`` are empty when the guest's
    offer could not be read."""

    type: ClassVar[str] = "guest_refused"
    invite_id: str
    reason: str
    peer_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class InviteServerStatus(NodeEvent):
    """The node's connection to a remote invite server changed. ``reconnecting``:
    lost, trying again by itself; ``refused``: the server will not take the room back
    (the invites on it stop working for new guests)."""

    type: ClassVar[str] = "invite_server_status"
    url: str
    state: str  # connecting | connected | reconnecting | refused
    detail: str = ""


# -- files (node/files.py) ---------------------------------------------------------


@dataclass(frozen=True)
class FileOffered(NodeEvent):
    """A contact offers a file that waits for `p2pchat files accept ID` (too big for
    auto-accept, no room for it, or auto-accept off): ``reason`` says which."""

    type: ClassVar[str] = "file_offered"
    transfer_id: str  # hex
    conversation: str
    peer_id: str
    peer_name: str
    name: str  # sanitized: what it will be saved as (or "name (1).ext")
    size: int
    reason: str


@dataclass(frozen=True)
class FileProgress(NodeEvent):
    """A transfer moved (at most every 250 ms per transfer, and once at each state
    change). ``bytes_sent_total``: what the sender put on the wire for it in this run,
    resends and chunk framing included (0 on the receiving side)."""

    type: ClassVar[str] = "file_progress"
    transfer_id: str
    conversation: str
    peer_id: str
    direction: str  # "in" | "out"
    name: str
    state: str  # "hashing" | "queued" | "accepted" | "sending" | "receiving" | "verifying"
    bytes_done: int  # verified by the receiver (acknowledged, for the sender)
    size: int
    rate: int  # bytes/s over the last few seconds; 0 when unknown
    eta_s: int | None  # seconds left at that rate; None when unknown
    bytes_sent_total: int = 0


@dataclass(frozen=True)
class FileDone(NodeEvent):
    """The whole file arrived and its hash matched (``path``: where the receiver put it;
    on the sending side, the source)."""

    type: ClassVar[str] = "file_done"
    transfer_id: str
    conversation: str
    peer_id: str
    direction: str
    name: str
    size: int
    path: str
    bytes_sent_total: int = 0
    path_used: str = ""  # "direct" (TCP), "datachannel", "relay" or "mixed": what carried them


@dataclass(frozen=True)
class FileFailed(NodeEvent):
    """A transfer ended without the file (a hash mismatch, a disk error, the source
    changed, the receiver refused it): ``reason`` is one line."""

    type: ClassVar[str] = "file_failed"
    transfer_id: str
    conversation: str
    peer_id: str
    direction: str
    name: str
    reason: str


@dataclass(frozen=True)
class FileCancelled(NodeEvent):
    """A transfer was cancelled: ``by`` "me" (`files cancel`) or "peer"."""

    type: ClassVar[str] = "file_cancelled"
    transfer_id: str
    conversation: str
    peer_id: str
    direction: str
    name: str
    by: str
    reason: str = ""
