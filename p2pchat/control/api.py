"""What the control socket can ask of the node: the node implements ``NodeApi``.

Results are small frozen dataclasses, sent as JSON; errors the user can act on
are ``UserError`` (a one-line message), e.g. an unknown or ambiguous PEER.
PEER is a display name or a peer-id prefix (dashes optional).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from p2pchat.errors import UserError
from p2pchat.node.events import NodeEvent


@dataclass(frozen=True)
class PeerView:
    peer_id: str
    name: str
    addresses: list[str]
    contact: str | None  # trust state if a contact ("accepted", "pending_outgoing", ...)
    session: str  # "none" | "connecting" | "open"


@dataclass(frozen=True)
class ContactView:
    peer_id: str
    name: str
    state: str  # trust state
    verified: bool
    fingerprint: str
    online: bool


@dataclass(frozen=True)
class SafetyView:
    peer_id: str
    name: str
    safety_number: str  # 12 groups of 5 digits
    qr_payload: str
    verified: bool


@dataclass(frozen=True)
class SentView:
    conversation: str
    message_id: str  # hex
    status: str  # "sent" (on an open session) | "queued" (waits in the outbox)


@dataclass(frozen=True)
class GroupMemberView:
    peer_id: str  # a LAN member's peer id; a guest's "guest:<id>"
    name: str
    kind: str  # "lan" | "guest"
    admin: bool
    me: bool
    online: bool  # a session with them is open now (always True for me)
    contact: bool  # one of my contacts (False: known only from the group's member list)
    # Its session is open but its p2pchat is from before groups (no groups=1): it gets
    # nothing of the group until it is updated.
    needs_upgrade: bool = False
    # Not my contact, but named as one of my contacts is (another key): that contact's
    # name, so nobody takes this member for them. None: no such clash.
    not_contact: str | None = None
    kept: bool = False  # a guest the admin keeps: listed (offline) while its page is away


@dataclass(frozen=True)
class GroupView:
    group_id: str  # 32 hex digits
    name: str
    conversation: str  # "group:<group_id>": what send, history and export take too
    epoch: int  # the member list's version
    admin_id: str  # the admin's peer id
    am_admin: bool
    state: str  # "active" | "left" | "removed"
    members: list[GroupMemberView]


@dataclass(frozen=True)
class InviteView:
    invite_id: str  # what `p2pchat revoke` takes
    url: str  # https://HOST:PORT/c/<room>#<secret>: show it only to the guest
    label: str | None
    expires_at: int  # unix seconds
    seconds_left: int
    uses_left: int
    approve: bool
    guests: int  # guests who came in through it
    revoked: bool
    certificate_sha256: str  # the invite server's certificate, for the guest to check
    group: str | None = None  # "group:<id>": its guests join that group; None: a 1:1 link
    group_name: str | None = None
    server: str | None = None  # the remote invite server (https://HOST[:PORT]); None: LAN
    server_state: str | None = None  # connecting | connected | reconnecting | refused
    password: bool = False  # the guest also needs a password (the link ends in ".pw")


@dataclass(frozen=True)
class ServerView:
    """``p2pchat server``: the saved default invite server and its connection now."""

    url: str | None  # None: invites are served by the node on the LAN
    token_set: bool  # an owner token is saved (never shown)
    state: str | None  # None: no invite on it in this run yet


@dataclass(frozen=True)
class GuestView:
    peer_id: str  # "guest:<id>"
    name: str
    state: str  # "admitted" | "refused"


@dataclass(frozen=True)
class KnownGuestView:
    peer_id: str  # "guest:<id>": what `send`, `history` and `admit` take
    name: str
    invite_id: str  # the invite they came in through
    state: str  # "live" | "connecting" | "waiting" (at an --approve invite) | "past"
    last_seen_ms: int  # joined, said something, or left


@dataclass(frozen=True)
class FileView:
    """A file transfer, either way (``p2pchat files``)."""

    transfer_id: str  # 32 hex digits: what `files accept|cancel` take (or a prefix)
    conversation: str
    peer_id: str
    peer_name: str
    direction: str  # "in" | "out"
    name: str  # out: as offered; in: sanitized
    size: int
    bytes_done: int  # verified by the receiver
    # "hashing" (out: send-file reads it; offered next) | "queued" (out: offered, no answer yet) | "offered" (in: waits for `files accept`) |
    # "accepted" | "sending" | "receiving" | "done" | "failed" | "cancelled" | "declined"
    state: str
    path: str | None  # out: the source; in: the final file once done
    error: str | None
    bytes_sent_total: int = 0  # out: sent in this run of the node, resends included
    # Which path carried this run's chunks: "direct" (TCP), "datachannel", "relay", "mixed", "" (none)
    path_used: str = ""
    group: str | None = None  # a group's file: the group's name (conversation: group:<id>)


@dataclass(frozen=True)
class SentFilesView:
    """``send-file PEER|GROUP PATH``: the transfers it made (one per LAN member for a
    group) and the group's browser guests it did not send to (files to them: not yet)."""

    files: list[FileView]
    not_sent_to: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StatusView:
    name: str
    peer_id: str
    port: int
    instance: str | None
    data_dir: str


class NodeApi(Protocol):
    async def async_status(self) -> StatusView: ...
    async def async_peers(self) -> list[PeerView]: ...
    async def async_contacts(self) -> list[ContactView]: ...
    async def async_add_contact(self, peer: str) -> ContactView: ...
    async def async_requests(self) -> list[ContactView]: ...
    async def async_accept(self, peer: str) -> ContactView: ...
    async def async_reject(self, peer: str) -> ContactView: ...
    async def async_verify(self, peer: str, *, mark_verified: bool) -> SafetyView: ...
    async def async_send(self, peer: str, text: str) -> SentView: ...
    async def async_send_many(
        self, sends: Sequence[tuple[str, str]]
    ) -> list[SentView | UserError]: ...
    # Groups. GROUP is a group's name or "group:<hex prefix>"; MEMBER a contact (PEER)
    # or, for remove, a member's name or peer id. Only the admin adds and removes.
    async def async_groups(self) -> list[GroupView]: ...
    async def async_group_create(self, name: str, members: Sequence[str]) -> GroupView: ...
    async def async_group_add(self, group: str, member: str) -> GroupView: ...
    async def async_group_remove(self, group: str, member: str) -> GroupView: ...
    async def async_group_leave(self, group: str) -> GroupView: ...
    # The admin keeps a guest (its name or id): listed while its page is away.
    async def async_group_keep(self, group: str, guest: str) -> GroupView: ...
    async def async_invite(
        self,
        *,
        expires_s: int,
        uses: int,
        label: str | None,
        approve: bool,
        group: str | None = None,
        server: str | None = None,
        server_token: str | None = None,
        password: bytes | None = None,  # normalised (crypto/cpace.py); the link gets ".pw"
    ) -> InviteView: ...
    async def async_invites(self) -> list[InviteView]: ...
    # The default invite server (profile settings): None/clear = the LAN.
    async def async_server(self) -> ServerView: ...
    async def async_server_set(self, url: str, token: str | None) -> ServerView: ...
    async def async_server_clear(self) -> ServerView: ...
    async def async_revoke(self, invite_id: str) -> InviteView: ...
    async def async_admit(self, guest: str, *, admit: bool) -> GuestView: ...
    async def async_guests(self) -> list[KnownGuestView]: ...
    # Files. PATH is absolute (the CLI resolves it); ID a transfer id or its start.
    async def async_send_file(self, peer: str, path: str) -> FileView: ...
    async def async_send_files(self, peer: str, path: str) -> SentFilesView: ...
    async def async_files(self) -> list[FileView]: ...
    async def async_file_accept(self, transfer: str, to: str | None = None) -> FileView: ...
    async def async_file_cancel(self, transfer: str) -> FileView: ...
    def subscribe(self) -> AsyncIterator[NodeEvent]:
        """Every event from now on (after a snapshot of the present); a subscriber that
        falls far behind gets ``EventsDropped`` and a fresh snapshot."""
        ...
