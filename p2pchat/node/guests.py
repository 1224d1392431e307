"""The owner's side of browser guests: invites, the embedded signaling server, guest sessions.

A guest's page seals an OFFER under the link key and sends it through the
signaling server's WebSocket; we open it, decide admission (uses, expiry,
``--approve``), answer, and run the session over the path the guest picks
(see docs/guest-protocol.md). The server only ever relays ciphertext.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from p2pchat.control.api import GuestView, InviteView, KnownGuestView
from p2pchat.crypto.encoding import b64url_decode, b64url_encode
from p2pchat.crypto.envelope import LinkEnvelopes
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.safety import safety_number
from p2pchat.errors import UserError
from p2pchat.node.core_protocol import ConversationRef, NodeCore
from p2pchat.node.events import (
    GuestJoined,
    GuestLeft,
    GuestPath,
    GuestRefused,
    GuestWaiting,
    InviteServerStatus,
)
from p2pchat.node.invite_server import (
    EmbeddedInviteServer,
    InviteServer,
    RemoteInviteServer,
    ServerUrl,
)
from p2pchat.node.invites import MAX_INVITES, Admission, Invite
from p2pchat.node.links import GuestLink, PeerLink, now_ms
from p2pchat.node.password_gate import PAKE_CONFIRM_TIMEOUT_S
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import Event, OfferReceived, SessionOpened
from p2pchat.protocol.session import Role, Session
from p2pchat.store import guest_conversation_id
from p2pchat.store.conversation_id import group_conversation_id
from p2pchat.transport.errors import LinkFailedError, NoCandidatesError, TransportError
from p2pchat.transport.ice_config import IceConfig, RemoteIceConfigError, parse_ice_offer
from p2pchat.transport.webrtc import DataChannelLink


class GuestGroups(Protocol):
    """Group guests as the guest host sees them (node/group_guests.py)."""

    def guest_refusal(self, group_id: bytes, key: bytes | None) -> str | None: ...
    def newcomer_refusal(self, group_id: bytes) -> str | None: ...
    def group_name(self, group_id: bytes) -> str | None: ...
    def guest_joined(self, group_id: bytes, key: bytes, name: str, link: PeerLink) -> bool: ...
    def guest_left(self, key: bytes, link: PeerLink) -> None: ...


if TYPE_CHECKING:
    from p2pchat.control.api import FileView
    from p2pchat.node.files import LanFiles
    from signaling.app import GuestConnection

logger = logging.getLogger(__name__)

SIGNAL = 0x01
RELAY = 0x02
FILE = 0x03  # one sealed file chunk on the relay path (docs/guest-protocol.md "Files")
# File chunks queued towards a guest's socket before the sender waits: like the data
# channel's bufferedAmount bound, so a chat frame is never stuck behind more than this.
RELAY_FILE_QUEUE_BYTES = 256 * 1024
MAX_WAITING = 32
GUEST_ID_BYTES = 16
# Our close for a probe (a new guest's page asking before its Join form) when the
# link can take that guest; a refusal closes with what a Join would get.
LINK_USABLE = 4100
# A probe whose info says ``probe: "keep"`` (the page wants the same socket for its
# Join) is answered with this SIGNAL payload instead, and the socket stays open for one
# OFFER. Not an envelope: like the close code, it only saves the page a wait.
PROBE_KEEP = "keep"
USABLE_ANSWER = b"usable"
# The ANSWER when the offer gives no direct path: ``info["path"] = "relay"`` tells the
# page to go to the relay at once (a page that ignores it fails to apply this SDP and
# does the same). The handshake needs a non-empty SDP.
RELAY_ONLY_SDP = "v=0\r\n"
DIRECT_LATE = "the direct connection did not open in time"
# How often a direct session's candidate pair is looked at (``GuestPath``): ICE moves
# within seconds of the open; a look is a few attribute reads.
PATH_CHECK_S = 1.0
# A guest's transfers live as long as its page does: past the node's run, nothing resumes them.
GUEST_LEFT = "the guest left"
# Ends of a session that never opened which are no failure to tell the owner about.
_QUIET_ENDS = frozenset({"the guest reconnected", "node stopping", "the invite was revoked"})

# Password links (invite --password; docs/guest-protocol.md "Password links").
WRONG_PASSWORD = 4401
NEEDS_PASSWORD = "this link needs a password"  # noqa: S105 - close reasons, not secrets
PASSWORD_BUSY = "busy: try again"  # noqa: S105 - close 1013: another attempt is pending
PASSWORD_EXHAUSTED = "5 wrong passwords: the invite is revoked"  # noqa: S105

_REFUSALS = {
    Admission.REFUSE_USED_UP: "this link was already used: ask for a new one",
    Admission.REFUSE_EXPIRED: "this link has expired: ask for a new one",
    Admission.REFUSE_REVOKED: "this link was revoked: ask for a new one",
}


class RelayChannel:
    """The guest's WebSocket as a session channel (the relay path)."""

    def __init__(self, connection: GuestConnection) -> None:
        self._connection = connection
        self.close_reason: str | None = None

    def send(self, data: bytes) -> None:
        self._connection.send(bytes([RELAY]) + data)

    async def async_drain(self) -> None:
        await asyncio.sleep(0)  # the server bounds its queue per guest

    async def async_send_file_chunk(self, data: bytes) -> None:
        """One sealed chunk as a FILE message, once the socket's queue has room: the
        sender never outruns the guest (the server would disconnect it at its bound)."""
        await self._connection.async_wait_queue_below(RELAY_FILE_QUEUE_BYTES)
        self._connection.send(bytes([FILE]) + data)

    async def async_close(self) -> None:
        self._connection.close(1000, "session ended")


@dataclass
class _Guest:
    guest_id: str
    name: str
    invite: Invite
    link: GuestLink | None = None
    group_key: bytes | None = None  # the page's ``gk`` (group invites only)
    joined: bool = False  # a session opened at least once: a guest, not an attempt
    last_seen_ms: int = 0  # joined, said something, or left

    @property
    def label(self) -> str:
        return f"guest:{self.guest_id}"

    @property
    def state(self) -> str:
        """ "live" (in the chat now), "connecting" (coming back) or "past" (left)."""
        if self.link is None or self.link.state == "closed":
            return "past"
        return "live" if self.link.state == "open" else "connecting"

    @property
    def conversation_id(self) -> str:
        return guest_conversation_id(self.guest_id)


@dataclass
class _Waiting:
    guest: _Guest
    connection: GuestConnection
    session: Session
    offer: OfferReceived


class GuestHost:
    def __init__(self, node: NodeCore) -> None:
        self._node = node
        self._invites: dict[str, Invite] = {}  # by room id
        self._guests: dict[str, _Guest] = {}  # by guest id
        self._by_connection: dict[str, GuestLink] = {}
        self._offered: set[str] = set()  # guest sockets that sent their offer
        self._probed: set[str] = set()  # guest sockets kept open after their probe
        self._waiting: dict[str, _Waiting] = {}  # by guest id
        # None: the node's own server (LAN); else one per remote server URL.
        self._servers: dict[str | None, InviteServer] = {}
        self._password_attempts: set[PeerLink] = set()  # answered with a share, not confirmed
        self._tasks: set[asyncio.Task[Any]] = set()
        self.groups: GuestGroups | None = None  # set by the core once groups exist
        self.files: LanFiles | None = None  # set by the core: a 1:1 guest's files

    # -- owner commands ---------------------------------------------------------------

    async def async_invite(
        self,
        *,
        expires_s: int,
        uses: int,
        label: str | None,
        approve: bool,
        group_id: bytes | None = None,
        server: ServerUrl | None = None,
        server_token: str | None = None,
        password: bytes | None = None,
    ) -> InviteView:
        now = time.time()
        live = [i for i in self._invites.values() if i.accepts_connections(now)]
        if len(live) >= MAX_INVITES:
            raise UserError(f"{MAX_INVITES} invites are open already: revoke some first")
        invite_server = self._invite_server(server, server_token)
        invite = Invite(
            LinkSecret.generate(), label, now, now + expires_s, uses, approve, group_id=group_id,
            server=invite_server.server,
            password=password,
        )  # fmt: skip
        try:
            await invite_server.async_open_room(
                invite.room_id, expires_at=invite.expires_at, claim=invite.claim
            )
        except UserError:
            if not any(i.server == invite.server for i in self._invites.values()):
                self._servers.pop(invite.server, None)  # nothing half-made stays
                await invite_server.async_stop()
            raise
        self._invites[invite.room_id] = invite
        return self._view(invite, now)

    def server_state(self, url: str) -> str | None:
        """The connection state of the remote invite server ``url`` (None: not used yet)."""
        server = self._servers.get(url)
        return server.state if server is not None else None

    def invites(self) -> list[InviteView]:
        now = time.time()
        return [self._view(i, now) for i in self._invites.values() if i.accepts_connections(now)]

    def revoke(self, invite_id: str) -> InviteView:
        wanted = invite_id.strip().lower()  # base32: any case reads the same
        matches = [i for i in self._invites.values() if i.invite_id == wanted]
        if not matches:
            known = ", ".join(i.invite_id for i in self._invites.values()) or "none"
            raise UserError(f"no invite {invite_id!r}; invites: {known}")
        invite = matches[0]
        invite.revoked = True
        if invite.server in self._servers:
            self._servers[invite.server].revoke(invite.room_id)
        for guest in self._guests.values():
            if guest.invite is invite and guest.link is not None:
                guest.link.close("the invite was revoked")
        for guest_id, waiting in list(self._waiting.items()):
            if waiting.guest.invite is invite:
                del self._waiting[guest_id]
                waiting.connection.close(4403, _REFUSALS[Admission.REFUSE_REVOKED])
        return self._view(invite, time.time())

    def conversations(self) -> list[tuple[str, str, str, str]]:
        """(name, label, conversation id, state) of every guest who joined in this run."""
        return [
            (g.name, g.label, g.conversation_id, g.state) for g in self._guests.values() if g.joined
        ]

    def known_guests(self) -> list[KnownGuestView]:
        """Guests of this run: in the chat, coming back, waiting at the door, or left."""
        views = [
            KnownGuestView(g.label, g.name, g.invite.invite_id, g.state, g.last_seen_ms)
            for g in self._guests.values()
            if g.joined and g.guest_id not in self._waiting
        ]
        views += [
            KnownGuestView(w.guest.label, w.guest.name, w.guest.invite.invite_id, "waiting",
                           w.guest.last_seen_ms)
            for w in self._waiting.values()
        ]  # fmt: skip
        order = {"live": 0, "connecting": 1, "waiting": 2, "past": 3}
        return sorted(views, key=lambda v: (order[v.state], -v.last_seen_ms, v.name.casefold()))

    def waiting(self) -> list[tuple[str, str]]:
        return [(w.guest.name, w.guest.label) for w in self._waiting.values()]

    def link_for(self, label: str) -> PeerLink | None:
        guest = self._guests.get(label.removeprefix("guest:"))
        return guest.link if guest else None

    # -- files (node/files.py runs them; a guest's key there is its 16-byte id) --------

    def link_by_key(self, key: bytes) -> PeerLink | None:
        return self.link_for(b64url_encode(key))

    def name_by_key(self, key: bytes) -> str | None:
        guest = self._guests.get(b64url_encode(key))
        return guest.name if guest else None

    async def async_send_file(self, label: str, path: str) -> FileView:
        """``send-file guest:<id> PATH``: offered on the guest's session while it is open."""
        guest = self._guests.get(label.strip().removeprefix("guest:"))
        if guest is None or not guest.joined:
            known = ", ".join(g.label for g in self._guests.values() if g.joined) or "none"
            raise UserError(f"no guest {label.strip()} in this run; guests: {known}")
        if guest.state == "past":
            raise UserError(f"{guest.label} ({guest.name}) left: files go to a guest in the chat")
        if guest.invite.group_id is not None:
            raise UserError(f"{guest.label} came in through a group invite: no files for them yet")
        assert self.files is not None
        from p2pchat.node.files import guest_key

        key = guest_key(b64url_decode(guest.guest_id))
        return await self.files.async_send_file_to(guest.conversation_id, key, path)

    def fail_files(self) -> None:
        """Every guest transfer not finished fails: the node's run (the pages' sessions)
        ended. At start for a run that ended without it, at stop for this one."""
        if self.files is None:
            return
        from p2pchat.node.files import is_guest_key

        keys = {
            t.peer_key for t in self._node.profile.files.unfinished() if is_guest_key(t.peer_key)
        }
        for key in keys:
            self.files.fail_with_peer(key, GUEST_LEFT)

    async def async_admit_named(self, guest: str, *, admit: bool) -> GuestView:
        """``admit``'s answer to the waiting guest ``guest`` names (a name or a label)."""
        from p2pchat.node.peer_match import resolve_peer

        name, label = resolve_peer(
            guest, self.waiting(), name_of=lambda w: w[0], key_of=lambda w: w[1],
            kind="waiting guest",
            none_yet="no waiting guest matches {query}: nobody is waiting to be let in"
            " (only --approve invites make guests wait)",
        )  # fmt: skip
        return GuestView(label, name, await self.async_admit(label, admit=admit))

    async def async_admit(self, label: str, *, admit: bool) -> str:
        waiting = self._waiting.pop(label.removeprefix("guest:"), None)
        if waiting is None:
            raise UserError(f"{label} is not waiting to be let in")
        if not admit:
            waiting.connection.close(4403, "the owner did not let you in")
            return "refused"
        invite, guest_id = waiting.guest.invite, waiting.guest.guest_id
        admission = invite.admission(guest_id, time.time())
        if admission in _REFUSALS:  # the link ran out (or was revoked) while they waited
            self._refused(waiting.guest, _REFUSALS[admission])
            waiting.connection.close(4403, _REFUSALS[admission])
            return "refused"
        invite.reserve(guest_id)
        await self._async_complete(waiting)
        return "admitted"

    async def async_stop(self) -> None:
        self.fail_files()
        for guest in list(self._guests.values()):  # a link closing may forget its guest
            if guest.link is not None:
                guest.link.close("node stopping")
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers.values():
            await server.async_stop()

    # -- OwnerHooks (called by the signaling server) --------------------------------

    def on_guest_message(self, room_id: str, guest: GuestConnection, data: bytes) -> None:
        if not data:
            return
        if data[0] == RELAY:
            link = self._by_connection.get(guest.id)
            if link is not None:
                link.feed_relay(data[1:])
            return
        if data[0] == FILE:
            link = self._by_connection.get(guest.id)
            if link is not None:  # else a late chunk of a session that ended: dropped
                link.feed_relay_file(data[1:])
            return
        if data[0] == SIGNAL and guest.id not in self._offered:
            # One handshake per socket: a second offer would start another peer
            # connection for nothing (the page opens a new socket to start over).
            self._offered.add(guest.id)
            self._spawn(self._async_offer(room_id, guest, data[1:]))
            return
        guest.close(4400, "unexpected message")

    def on_guest_closed(self, room_id: str, guest: GuestConnection) -> None:
        self._offered.discard(guest.id)
        self._probed.discard(guest.id)
        link = self._by_connection.pop(guest.id, None)
        # A direct session does not need the socket (the signaling server may restart
        # under it): it ends by its own keep-alive. On the relay path the socket is it.
        if link is not None and link.path != "direct":
            link.close("the guest left")
        for guest_id, waiting in list(self._waiting.items()):
            if waiting.connection is guest:
                del self._waiting[guest_id]

    # -- the handshake ------------------------------------------------------------------

    async def _async_offer(self, room_id: str, connection: GuestConnection, data: bytes) -> None:
        invite = self._invites.get(room_id)
        if invite is None:
            connection.close(4404, "link not valid")
            return
        # Group frames only on a group invite's sessions: a 1:1 guest stays as before.
        # Files for 1:1 guests (a group's files are a later step), on either path.
        session = Session(
            Role.RESPONDER,
            LinkEnvelopes(invite.secret.envelope_key, invite.guard),
            groups=invite.group_id is not None,
            files=invite.group_id is None,
            password=invite.password,
            link_room=invite.secret.room_id_raw,
        )
        try:
            offer = session.receive_offer(data, now_ms())
            guest_id = _guest_id(offer.info.get("guest", ""))
        except ProtocolError as exc:
            # Tampered, replayed, reflected or stale: say so on both sides.
            self._node.emit(GuestRefused(invite.invite_id, f"handshake failed ({exc.code}): {exc}"))
            connection.close(4400, f"handshake failed ({exc.code})")
            return
        name = _guest_name(offer.info.get("name")) or f"guest-{guest_id[:4]}"
        if invite.gate.pending and offer.info.get("probe") is None and not session.password_missing:
            # Another password attempt is out (it holds the use, if it is the last one).
            connection.close(1013, PASSWORD_BUSY)
            return
        admission = invite.admission(guest_id, time.time())
        if admission in _REFUSALS:
            self._refused(_Guest(guest_id, name, invite), _REFUSALS[admission])
            connection.close(4403, _REFUSALS[admission])
            return
        bound = self._bound_invite(guest_id)
        if bound is not None and bound is not invite:
            # A guest id names one guest (its label, its conversation) through one
            # invite; the page makes a new id per link, so this offer reuses an id
            # it was never given: never let it take over that guest's session.
            reason = f"this guest id came in through invite {bound.invite_id}"
            self._refused(_Guest(guest_id, name, invite), reason)
            connection.close(4403, "this guest already came in through another link")
            return
        if offer.info.get("probe"):
            # The page holds the link (the envelope opened) and asks before showing its
            # Join form: nothing is reserved, nobody waits, no answer is made. A group
            # that cannot take a new guest says so now (the page shows this line).
            full = None
            if invite.group_id is not None and self.groups is not None:
                full = self.groups.newcomer_refusal(invite.group_id)
            if full is not None:
                connection.close(4403, full)
                return
            if offer.info.get("probe") == PROBE_KEEP and connection.id not in self._probed:
                # One probe per socket, then its one OFFER (sent after Join).
                self._probed.add(connection.id)
                self._offered.discard(connection.id)
                connection.send(bytes([SIGNAL]) + USABLE_ANSWER)
            else:
                connection.close(LINK_USABLE, "this link can take you: join when ready")
            return
        if session.password_missing:  # a Join without the password: told so, not a try
            self._refused(_Guest(guest_id, name, invite), NEEDS_PASSWORD)
            connection.close(WRONG_PASSWORD, NEEDS_PASSWORD)
            return
        group_key = _group_key(offer.info.get("gk")) if invite.group_id else None
        if invite.group_id is not None and self.groups is not None:
            refusal = self.groups.guest_refusal(invite.group_id, group_key)
            if refusal is not None:
                logger.warning("guest %s refused at a group invite: %s", name, refusal)
                self._refused(_Guest(guest_id, name, invite), refusal)
                connection.close(4403, refusal)
                return
        guest = self._guests.get(guest_id) or _Guest(guest_id, name, invite)
        guest.name = name
        guest.group_key = group_key
        guest.last_seen_ms = now_ms()
        waiting = _Waiting(guest, connection, session, offer)
        if admission is Admission.ASK_OWNER:
            if len(self._waiting) >= MAX_WAITING:
                self._refused(guest, f"{MAX_WAITING} guests are waiting already")
                connection.close(4429, "too many guests waiting: try again later")
                return
            self._waiting[guest_id] = waiting
            self._node.emit(GuestWaiting(guest.label, name, invite.invite_id))
            return
        # Reserve before the first await: two guests racing for the last use
        # cannot both be answered.
        invite.reserve(guest_id)
        await self._async_complete(waiting)

    async def _async_complete(self, waiting: _Waiting) -> None:
        guest, connection, session = waiting.guest, waiting.connection, waiting.session
        if not self._begin_password_attempt(guest, connection):
            return
        key = guest.group_key  # this attempt's (a reload brings a new one)
        link = GuestLink(
            b64url_decode(guest.guest_id), session, RelayChannel(connection),
            on_event=lambda lk, ev: self._on_event(guest, lk, ev, key),
            on_closed=lambda lk, reason: self._on_closed(guest, connection, lk, reason, key),
        )  # fmt: skip
        info = {"name": self._node.name, "pk": b64url_encode(self._node.identity.public_key)}
        channel: DataChannelLink | None = None
        try:
            channel, answer_sdp = await DataChannelLink.async_accept_offer(
                waiting.offer.sdp, on_message=link.feed_direct, on_closed=link.direct_closed,
                interfaces=self._node.config.interfaces, files_channel=guest.invite.group_id is None,
                ice=self._link_ice(guest.invite),
            )  # fmt: skip
        except TransportError as exc:
            # No direct path from this offer: the chat still goes over the relay
            # (the guest's socket), end to end encrypted all the same.
            link.relay_reason = _relay_reason(exc)
            answer_sdp, info["path"] = RELAY_ONLY_SDP, "relay"
        if guest.invite.revoked:  # revoked while we made the answer: nothing may open
            guest.invite.release(guest.guest_id)
            guest.invite.gate.abandon()
            self._refused(guest, _REFUSALS[Admission.REFUSE_REVOKED])
            connection.close(4403, _REFUSALS[Admission.REFUSE_REVOKED])
            if channel is not None:
                self._spawn(channel.async_close())
            return
        answer = session.make_answer(answer_sdp, now_ms(), info)
        if guest.link is not None:
            guest.link.close("the guest reconnected")
        guest.link = link
        self._guests[guest.guest_id] = guest
        self._by_connection[connection.id] = link
        connection.send(bytes([SIGNAL]) + answer)
        link.start(channel)
        if guest.invite.password is not None:
            self._password_attempts.add(link)
            self._spawn(self._async_password_deadline(link))

    def _on_event(self, guest: _Guest, link: PeerLink, event: Event, key: bytes | None) -> None:
        guest.last_seen_ms = now_ms()
        if isinstance(event, SessionOpened):
            if link in self._password_attempts:  # its first frame authenticated: right password
                self._password_attempts.discard(link)
                guest.invite.gate.confirmed()
            guest.joined = True
            guest.invite.admit(guest.guest_id)
            kx = link.session.peer_kx_public
            number = safety_number(self._node.identity.public_key, kx).digits if kx else ""
            path, why = "", ""
            if isinstance(link, GuestLink) and link.path is not None:
                path = joined_path(link)
                why = (link.relay_reason or DIRECT_LATE) if path == "relay" else ""
            self._node.emit(
                GuestJoined(guest.label, guest.name, guest.invite.invite_id, number, path, why)
            )
            if isinstance(link, GuestLink) and link.direct is not None and path != "relay":
                self._spawn(self._async_follow_path(guest, link, path))
            group_id = guest.invite.group_id
            # Listed, and sent the list, before anything else on this session.
            if (
                group_id is not None
                and key is not None
                and self.groups is not None
                and not self.groups.guest_joined(group_id, key, guest.name, link)
            ):
                return
        ref = ConversationRef(guest.conversation_id, guest.label, guest.name)
        self._node.on_session_event(link, event, ref)

    async def _async_follow_path(self, guest: _Guest, link: GuestLink, path: str) -> None:
        """Tell the owner when ICE moves a direct session to another pair (direct/turn):
        aioice has no event for it, so look at the nominated pair now and then."""
        while link.state != "closed" and guest.link is link:
            await asyncio.sleep(PATH_CHECK_S)
            if link.direct is not None:
                link.direct.take_late_nomination()
            now = joined_path(link)
            if now != path and now in ("direct", "turn") and link.state != "closed":
                path = now
                self._node.emit(GuestPath(guest.label, guest.name, path))

    def _on_closed(
        self,
        guest: _Guest,
        connection: GuestConnection,
        link: PeerLink,
        reason: str,
        group_key: bytes | None,
    ) -> None:
        self._by_connection.pop(connection.id, None)
        if link in self._password_attempts:
            self._password_attempts.discard(link)
            reason = self._password_failed(guest, connection, reason)
        if not link.opened:
            guest.invite.release(guest.guest_id)
            if reason not in _QUIET_ENDS:
                self._refused(guest, f"the connection never opened: {reason}")
        if guest.link is link:
            guest.link = None
            guest.last_seen_ms = now_ms()
            if link.opened:
                self._node.emit(GuestLeft(guest.label, guest.name, reason))
            elif not guest.joined and self._guests.get(guest.guest_id) is guest:
                # Never got in: forget it, or a link holder could grow this map
                # without bound with fresh guest ids that never open.
                del self._guests[guest.guest_id]
        replaced = reason == "the guest reconnected" and group_key == guest.group_key
        if group_key and self.groups is not None and not replaced:
            # Its session was its membership (no "keep" for guests yet): off the list.
            # A newer attempt of the same page (same key) keeps it listed.
            self.groups.guest_left(group_key, link)

    # -- password links (the gate is pure: node/password_gate.py) ------------------------

    def _begin_password_attempt(self, guest: _Guest, connection: GuestConnection) -> bool:
        """Our answer will carry a share: one such attempt per invite at a time."""
        invite = guest.invite
        if invite.password is None or invite.gate.begin(time.monotonic()):
            return True
        invite.release(guest.guest_id)
        connection.close(1013, PASSWORD_BUSY)
        return False

    def _password_failed(self, guest: _Guest, connection: GuestConnection, reason: str) -> str:
        """The attempt ended before its first authenticated frame: one try spent."""
        invite = guest.invite
        if reason in _QUIET_ENDS:  # the node or the owner ended it: no try spent
            invite.gate.abandon()
            return reason
        left = invite.gate.failed()
        if invite.gate.exhausted and not invite.revoked:
            connection.close(4403, PASSWORD_EXHAUSTED)
            self.revoke(invite.invite_id)
            return PASSWORD_EXHAUSTED
        text = f"wrong password ({left} {'try' if left == 1 else 'tries'} left)"
        connection.close(WRONG_PASSWORD, text)
        return text

    async def _async_password_deadline(self, link: PeerLink) -> None:
        await asyncio.sleep(PAKE_CONFIRM_TIMEOUT_S)
        if link in self._password_attempts:
            link.close("the password was not confirmed in time")

    # -- private --------------------------------------------------------------------------

    def _refused(self, guest: _Guest, reason: str) -> None:
        """Tell the owner (``watch``, the TUI) that this guest did not get in, and why."""
        self._node.emit(
            GuestRefused(guest.invite.invite_id, reason, peer_id=guest.label, name=guest.name)
        )

    def _bound_invite(self, guest_id: str) -> Invite | None:
        """The invite a guest id came in, waits or holds a use at, if any."""
        known = self._guests.get(guest_id)
        if known is not None:
            return known.invite
        waiting = self._waiting.get(guest_id)
        if waiting is not None:
            return waiting.guest.invite
        # Answered but not in ``_guests`` yet (our answer is being made).
        for invite in self._invites.values():
            if guest_id in invite.reserved or guest_id in invite.admitted:
                return invite
        return None

    def _invite_server(self, url: ServerUrl | None, token: str | None) -> InviteServer:
        key = url.base if url is not None else None
        server = self._servers.get(key)
        if server is None:
            if url is None:
                server = EmbeddedInviteServer(self._node.config, self)
            else:
                server = RemoteInviteServer(
                    url, self, token=token,
                    on_status=lambda u, state, detail: self._node.emit(
                        InviteServerStatus(u, state, detail)
                    ),
                )  # fmt: skip
            self._servers[key] = server
        return server

    def server_ice(self, invite: Invite) -> dict[str, object] | None:
        """The remote server's ICE offer for this invite's room (raw JSON), or None on
        the LAN (or a server with no STUN/TURN)."""
        server = self._servers.get(invite.server)
        return server.ice_for(invite.room_id) if server is not None else None

    def _link_ice(self, invite: Invite) -> IceConfig | None:
        """The STUN/TURN a guest's link uses: the server's offer, checked; None (host
        candidates only, as on the LAN) when there is none or it is malformed."""
        offer = self.server_ice(invite)
        if offer is None:
            return None
        try:
            return parse_ice_offer(offer)
        except RemoteIceConfigError as exc:
            logger.warning("the server's ICE offer is not usable (%s): host candidates only", exc)
            return None

    def _view(self, invite: Invite, now: float) -> InviteView:
        server = self._servers[invite.server]
        return InviteView(
            invite_id=invite.invite_id,
            url=server.link(invite.secret, password=invite.password is not None),
            label=invite.label,
            expires_at=int(invite.expires_at),
            seconds_left=max(0, int(invite.expires_at - now)),
            uses_left=invite.uses_left,
            approve=invite.approve,
            guests=len(invite.admitted),
            revoked=invite.revoked,
            certificate_sha256=server.certificate_sha256,
            group=group_conversation_id(invite.group_id) if invite.group_id else None,
            group_name=(
                self.groups.group_name(invite.group_id)
                if invite.group_id and self.groups is not None
                else None
            ),
            server=server.server,
            server_state=server.state,
            password=invite.password is not None,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def joined_path(link: GuestLink) -> str:
    """What carries a guest's opened session: "direct", "turn" (WebRTC through a TURN
    relay: still end to end, but not peer to peer) or "relay" (the signaling server).

    Known when the session opens: the guest's header came over the data channel, so
    ICE has nominated its pair by then (aioice nominates before the channel opens).
    """
    if link.path == "direct" and link.direct is not None and link.direct.selected_path == "turn":
        return "turn"
    return link.path or ""


def _relay_reason(exc: TransportError) -> str:
    """Why an offer gives no direct path, for the owner."""
    if isinstance(exc, NoCandidatesError):
        return (
            "the guest's browser offered no address for a direct connection"
            " (Chromium offers none on a network without a default route)"
        )
    if isinstance(exc, LinkFailedError):
        return f"no direct connection from this node: {exc}"
    return f"the guest's offer is no use for a direct connection: {exc}"


def _guest_id(text: str) -> str:
    try:
        raw = b64url_decode(text)
    except ValueError:
        raw = b""
    if len(raw) != GUEST_ID_BYTES:
        raise ProtocolError("the offer has no valid guest id", code="bad-handshake")
    return text


def _group_key(value: str | None) -> bytes | None:
    """The page's per-load group key (``gk``), or ``None`` if it gave none usable."""
    try:
        raw = b64url_decode(value or "")
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def _guest_name(value: str | None) -> str | None:
    if value is None:
        return None
    name = "".join(c for c in value.strip() if c.isprintable())[:32]
    return name or None
