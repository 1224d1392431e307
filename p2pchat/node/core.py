"""The running node: discovery, LAN signaling, one PeerLink per contact, the outbox.

It owns the tasks and the profile; front ends talk to it through ``NodeApi``
(the control socket) and see what happens through ``subscribe()``.

Who connects: of two contacts, the one with the smaller public key makes the
offer, whenever the other is on the LAN and no session is up; the other waits.
One rule, so two nodes never race each other with crossing offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pchat.control.api import (
    ContactView,
    GuestView,
    InviteView,
    KnownGuestView,
    PeerView,
    SafetyView,
    SentView,
    StatusView,
)
from p2pchat.crypto.envelope import (
    Direction,
    EnvelopeError,
    LanEnvelopes,
    OpenedEnvelope,
    ReplayGuard,
    peek_lan_sender,
)
from p2pchat.crypto.identity import Identity, fingerprint, peer_id
from p2pchat.crypto.safety import safety_number
from p2pchat.discovery import events as disc
from p2pchat.discovery.mdns import LanDiscovery
from p2pchat.discovery.txt import PeerAdvert
from p2pchat.errors import UserError
from p2pchat.node.delivery_marks import DeliveryMarks
from p2pchat.node.events import (
    ContactAccepted,
    ContactRejected,
    ContactRequestReceived,
    EventsDropped,
    KeyChangeWarning,
    MessageEvent,
    NodeEvent,
    PeerFound,
    PeerLost,
    ReceiptEvent,
    SessionChanged,
)
from p2pchat.node.guests import GuestHost
from p2pchat.node.key_warnings import KeyWarnings, KeyWarningState
from p2pchat.node.lan_view import LanView
from p2pchat.node.links import PeerLink, now_ms
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import Event, MessageReceived, ReceiptReceived, SessionOpened
from p2pchat.protocol.frames import MAX_BODY_BYTES
from p2pchat.protocol.handshake import EnvelopeKind
from p2pchat.protocol.session import Role, Session
from p2pchat.store import Profile, StoreError, contact_conversation_id, contact_key_of
from p2pchat.store.checkpointer import BackgroundCheckpointer
from p2pchat.store.records import (
    Contact,
    DeliveryState,
    StoredMessage,
    TrustState,
)
from p2pchat.store.records import Direction as MessageDirection
from p2pchat.transport.errors import TransportError
from p2pchat.transport.lan_signaling import (
    LanSignalingServer,
    SignalingError,
    SignalingRefused,
    async_post_envelope,
)
from p2pchat.transport.webrtc import DataChannelLink
from signaling.open_files import raise_open_file_limit

logger = logging.getLogger(__name__)

MAX_PENDING_REQUESTS = 100
MAX_SUBSCRIBER_BACKLOG = 10_000
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class ConversationRef:
    """Who a session is with, as stored and as shown."""

    conversation_id: str
    peer_label: str  # a contact's peer id, or "guest:<id>"
    name: str


@dataclass(frozen=True)
class _Target:
    """Someone ``send`` can write to: a contact, or a guest with its state."""

    ref: ConversationRef
    guest_state: str | None = None  # None: a contact

    def kind(self) -> str:
        return "contact" if self.guest_state is None else "guest"

    def is_past(self) -> bool:
        return self.guest_state == "past"

    def describe(self) -> str:
        from p2pchat.node.peer_match import printable

        who = f"{printable(self.ref.name)} ({printable(self.ref.peer_label)}"
        if self.guest_state is None:
            return who + ")"
        return f"{who}, {self.guest_state})"


class _StagedSend:
    """A message ``send`` resolved, on its way to the store (and then to the peer)."""

    def __init__(self, ref: ConversationRef, text: str) -> None:
        self.ref = ref
        self.text = text
        self.message_id, self.stamp = os.urandom(16), now_ms()
        self.error: UserError | None = UserError("not stored")  # until it is


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    interfaces: Sequence[str] | None = None
    port: int = 0  # LAN signaling (advertised in mDNS); 0: any free port
    invite_port: int = 0  # the invite server for browser guests; 0: any free port


class Node:
    def __init__(self, profile: Profile, config: NodeConfig) -> None:
        self.profile = profile
        self.config = config
        self.identity = Identity(profile.identity.seed)
        self.name = profile.identity.name
        # Replay guards: one per accepted contact, kept for good, and ONE shared by
        # every stranger (who can seal envelopes with throwaway keys, so a guard per
        # key would be memory per key). A contact's guard also consults the stranger
        # guard: an envelope seen before acceptance stays seen after it.
        self._stranger_guard = ReplayGuard()
        self._contact_guards: dict[bytes, ReplayGuard] = {}
        self._lan = LanView()  # verified adverts, one per mDNS instance
        self._links: dict[bytes, PeerLink] = {}
        self._refs: dict[bytes, ConversationRef] = {}  # a contact's, made once per session
        self._marks = DeliveryMarks(profile)
        self._incoming: list[tuple[PeerLink, MessageReceived, ConversationRef]] = []
        self._connecting: dict[bytes, asyncio.Task[None]] = {}
        self._key_warnings = KeyWarnings()
        self._key_warning_timer: asyncio.TimerHandle | None = None
        self._subscribers: set[asyncio.Queue[NodeEvent | None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._signaling = LanSignalingServer(
            self._async_handle_envelope, hosts=self._bind_hosts(), port=config.port
        )
        self._discovery: LanDiscovery | None = None
        self._stopping = False
        self._checkpointer: BackgroundCheckpointer | None = None
        self.guests = GuestHost(self)

    # -- life ----------------------------------------------------------------------

    async def async_start(self) -> None:
        # Before any server starts: their connection caps are sized from the limit.
        raise_open_file_limit()
        await self._signaling.async_start()
        self._checkpointer = self.profile.start_background_checkpoints()
        advert = PeerAdvert(
            version=1,
            peer_id=self.identity.peer_id,
            public_key=self.identity.public_key,
            name=self.name,
        )
        self._discovery = LanDiscovery(
            advert,
            self._signaling.port,
            self._on_discovery_event,
            interfaces=self.config.interfaces,
            peer_id_of=None,
        )
        await self._discovery.async_start()

    async def async_stop(self) -> None:
        self._stopping = True
        if self._key_warning_timer is not None:
            self._key_warning_timer.cancel()
        await self.guests.async_stop()
        for link in list(self._links.values()):
            link.close("node stopping")
        for task in list(self._tasks):
            task.cancel()
        if self._discovery is not None:
            await self._discovery.async_stop()
        await self._signaling.async_stop()
        self._marks.flush()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        for queue in self._subscribers:
            if queue.full():  # room for the end-of-stream mark; the reader is gone anyway
                queue.get_nowait()
            queue.put_nowait(None)

    @property
    def port(self) -> int:
        return self._signaling.port

    # -- NodeApi -------------------------------------------------------------------

    async def async_status(self) -> StatusView:
        instance = self._discovery.instance_name if self._discovery else None
        return StatusView(
            name=self.name,
            peer_id=self.identity.peer_id,
            port=self.port,
            instance=instance,
            data_dir=str(self.config.data_dir),
        )

    async def async_peers(self) -> list[PeerView]:
        views = []
        for peer in self._lan.peers():
            contact = self.profile.get_contact(peer.public_key)
            link = self._links.get(peer.public_key)
            views.append(
                PeerView(
                    peer_id=peer.peer_id,
                    name=peer.name,
                    addresses=list(peer.addresses),
                    contact=contact.trust.value if contact else None,
                    session=link.state if link else "none",
                )
            )
        return sorted(views, key=lambda v: v.name.lower())

    async def async_contacts(self) -> list[ContactView]:
        return [self._contact_view(c) for c in self.profile.contacts()]

    async def async_add_contact(self, peer: str) -> ContactView:
        from p2pchat.node.peer_match import resolve_peer

        target = resolve_peer(
            peer, list(self._lan.peers()), name_of=lambda p: p.name, key_of=lambda p: p.public_key
        )
        existing = self.profile.get_contact(target.public_key)
        if existing and existing.trust is TrustState.ACCEPTED:
            raise UserError(f"{target.name} is already a contact")
        if existing and existing.trust is TrustState.PENDING_INCOMING:
            return await self.async_accept(peer)
        contact = Contact(
            public_key=target.public_key,
            display_name=target.name,
            trust=TrustState.PENDING_OUTGOING,
            verified=False,
            pinned_at_ms=now_ms(),
        )
        body = json.dumps({"name": self.name}).encode()
        try:
            await self._async_post(target.public_key, EnvelopeKind.CONTACT_REQUEST, body)
        except SignalingError as exc:
            raise UserError(f"could not reach {target.name}: {exc}") from None
        self.profile.upsert_contact(contact)
        return self._contact_view(contact)

    async def async_requests(self) -> list[ContactView]:
        return [
            self._contact_view(c)
            for c in self.profile.contacts()
            if c.trust is TrustState.PENDING_INCOMING
        ]

    async def async_accept(self, peer: str) -> ContactView:
        contact = self._resolve_request(peer)
        self.profile.set_trust(contact.public_key, TrustState.ACCEPTED)
        with contextlib.suppress(SignalingError):  # they learn it on our next offer too
            await self._async_post(contact.public_key, EnvelopeKind.CONTACT_ACCEPT, b"{}")
        self.emit(ContactAccepted(peer_id(contact.public_key), contact.display_name))
        self._maybe_connect(contact.public_key)
        return self._contact_view(self._contact(contact.public_key))

    async def async_reject(self, peer: str) -> ContactView:
        contact = self._resolve_request(peer)
        self.profile.set_trust(contact.public_key, TrustState.REJECTED)
        with contextlib.suppress(SignalingError):
            await self._async_post(contact.public_key, EnvelopeKind.CONTACT_REJECT, b"{}")
        return self._contact_view(self._contact(contact.public_key))

    async def async_verify(self, peer: str, *, mark_verified: bool) -> SafetyView:
        contact = self._resolve_contact(peer, states={TrustState.ACCEPTED})
        if mark_verified:
            self.profile.set_verified(contact.public_key, True)
        number = safety_number(self.identity.public_key, contact.public_key)
        return SafetyView(
            peer_id=peer_id(contact.public_key),
            name=contact.display_name,
            safety_number=number.digits,
            qr_payload=number.qr_payload,
            verified=mark_verified or contact.verified,
        )

    async def async_send(self, peer: str, text: str) -> SentView:
        (result,) = await self.async_send_many([(peer, text)])
        if isinstance(result, UserError):
            raise result
        return result

    async def async_send_many(self, sends: Sequence[tuple[str, str]]) -> list[SentView | UserError]:
        """Each (peer, text) as ``async_send`` does, all stored in one commit (a group
        commit of pipelined sends); each result is a view, or the UserError of that one."""
        targets = self._send_targets()
        staged: list[_StagedSend | UserError] = []
        for peer, text in sends:
            try:
                staged.append(_StagedSend(self._resolve_send(peer, text, targets), text))
            except UserError as exc:
                staged.append(exc)
        # Outbox and history in one commit: whatever happens next, nothing is lost.
        # If it cannot be stored (a full disk, a full outbox), it is not sent: one line says why.
        to_store = [item for item in staged if isinstance(item, _StagedSend)]
        if not self._store_sends(to_store):
            # One of them failed (e.g. its conversation's outbox is full): each on its own,
            # so that only that one fails.
            for item in to_store:
                self._store_sends([item])
        if any(item.error is None for item in to_store):
            self._marks.index_later()
        return [
            item if isinstance(item, UserError) else await self._send_stored(item)
            for item in staged
        ]

    def _send_targets(self) -> list[_Target]:
        # Contacts, and this run's guests: a live one is who "Dana" means, not the
        # Danas who left (past ones are still reachable by their guest:<id> label).
        targets = [
            _Target(
                ConversationRef(
                    contact_conversation_id(c.public_key), peer_id(c.public_key), c.display_name
                )
            )
            for c in self.profile.contacts()
            if c.trust is TrustState.ACCEPTED
        ]
        targets += [
            _Target(ConversationRef(cid, label, name), guest_state=state)
            for name, label, cid, state in self.guests.conversations()
        ]
        return targets

    def _resolve_send(self, peer: str, text: str, targets: list[_Target]) -> ConversationRef:
        from p2pchat.node.peer_match import resolve_peer

        if not text:
            raise UserError("the message is empty")
        if len(text.encode("utf-8")) > MAX_BODY_BYTES:
            raise UserError(f"the message is over {MAX_BODY_BYTES} bytes: split it")
        return resolve_peer(
            peer, targets, name_of=lambda t: t.ref.name, key_of=lambda t: t.ref.peer_label,
            kind="contact or guest", kind_of=_Target.kind, past=_Target.is_past,
            describe=_Target.describe,
            pick_one="use more of the peer id, or a guest's guest:ID (`p2pchat guests` lists them)",
            none_yet="no contact or guest matches {query}: no contacts yet (`p2pchat add PEER`)"
            " and no guests (`p2pchat invite`)",
        ).ref  # fmt: skip

    def _store_sends(self, items: Sequence[_StagedSend]) -> bool:
        """Store ``items`` in one transaction; False (each item told why) if it failed."""
        if not items:
            return True
        try:
            with self.profile.batch():
                for item in items:
                    self.profile.enqueue_outbox(
                        item.message_id,
                        item.ref.conversation_id,
                        item.text,
                        created_ms=item.stamp,
                    )
                    self.profile.add_message(
                        StoredMessage(
                            message_id=item.message_id,
                            conversation_id=item.ref.conversation_id,
                            direction=MessageDirection.OUT,
                            sender=self.name,
                            timestamp_ms=item.stamp,
                            body=item.text,
                            delivery=DeliveryState.PENDING,
                        )
                    )
        except StoreError as exc:
            for item in items:
                item.error = UserError(exc.user_message)
            return False
        for item in items:
            item.error = None
        return True

    async def _send_stored(self, item: _StagedSend) -> SentView | UserError:
        if item.error is not None:
            return item.error
        ref, message_id, stamp, text = item.ref, item.message_id, item.stamp, item.text
        self.emit(
            MessageEvent(
                conversation=ref.conversation_id, peer_id=ref.peer_label, sender=self.name,
                direction="out", message_id=message_id.hex(), timestamp_ms=stamp, text=text,
            )
        )  # fmt: skip
        key = contact_key_of(ref.conversation_id)
        link = self._links.get(key) if key else self.guests.link_for(ref.peer_label)
        if link is None or link.state != "open":
            if key:
                self._maybe_connect(key)
            return SentView(ref.conversation_id, message_id.hex(), "queued")
        async with link.send_lock:
            try:
                link.send(link.session.send_text(text, stamp, message_id=message_id)[1])
            except (TransportError, ProtocolError):
                return SentView(ref.conversation_id, message_id.hex(), "queued")
        self._marks.mark_sent(message_id)
        return SentView(ref.conversation_id, message_id.hex(), "sent")

    async def async_invite(
        self, *, expires_s: int, uses: int, label: str | None, approve: bool
    ) -> InviteView:
        return await self.guests.async_invite(
            expires_s=expires_s, uses=uses, label=label, approve=approve
        )

    async def async_invites(self) -> list[InviteView]:
        return self.guests.invites()

    async def async_revoke(self, invite_id: str) -> InviteView:
        return self.guests.revoke(invite_id)

    async def async_admit(self, guest: str, *, admit: bool) -> GuestView:
        from p2pchat.node.peer_match import resolve_peer

        name, label = resolve_peer(
            guest, self.guests.waiting(), name_of=lambda w: w[0], key_of=lambda w: w[1],
            kind="waiting guest",
            none_yet="no waiting guest matches {query}: nobody is waiting to be let in"
            " (only --approve invites make guests wait)",
        )  # fmt: skip
        return GuestView(label, name, await self.guests.async_admit(label, admit=admit))

    async def async_guests(self) -> list[KnownGuestView]:
        return self.guests.known_guests()

    def lan_address(self) -> str:
        """The IPv4 address invite links point at (first of the chosen interfaces)."""
        from p2pchat.discovery.interfaces import interface_addresses

        try:
            return interface_addresses(self.config.interfaces, "v4").advertised[0]
        except (ValueError, IndexError):
            raise UserError(
                "no IPv4 address on the network interfaces: invite links need one"
            ) from None

    def bind_host(self) -> str | None:
        """Where the invite server listens: the chosen interfaces' address, else everywhere."""
        return self.lan_address() if self.config.interfaces else None

    async def subscribe(self) -> AsyncIterator[NodeEvent]:
        queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue(MAX_SUBSCRIBER_BACKLOG)
        # A new subscriber first learns the present: who is on the LAN, which sessions are up.
        self._put_snapshot(queue)
        self._subscribers.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.discard(queue)

    # -- discovery -----------------------------------------------------------------

    def _on_discovery_event(self, event: disc.DiscoveryEvent) -> None:
        if isinstance(event, disc.PeerFound | disc.PeerUpdated):
            self._peer_seen(event.peer)
        elif isinstance(event, disc.PeerLost):
            self._instance_gone(event.instance)

    def _instance_gone(self, instance: str) -> None:
        gone = self._lan.lost(instance)
        if gone is not None:
            self.emit(PeerLost(gone.peer_id, gone.name))

    def _peer_seen(self, peer: disc.LanPeer) -> None:
        # Discovery passes adverts whose id does not match their key, so that one
        # claiming a contact's id is seen here (and warned about), never used.
        if (
            peer.public_key == self.identity.public_key
            or self._key_changed(peer)
            or peer.peer_id != peer_id(peer.public_key)
        ):
            self._instance_gone(peer.instance)  # whatever it advertised before no longer holds
            return
        change = self._lan.seen(peer)
        if change is None:  # the LAN view is full (discovery's own bound, held here too)
            return
        if change.gone is not None:
            self.emit(PeerLost(change.gone.peer_id, change.gone.name))
        contact = self.profile.get_contact(peer.public_key)
        if change.new_key:
            self.emit(
                PeerFound(
                    peer.peer_id,
                    peer.name,
                    list(peer.addresses),
                    is_contact=bool(contact and contact.trust is TrustState.ACCEPTED),
                )
            )
        self._maybe_connect(peer.public_key)

    def _key_changed(self, peer: disc.LanPeer) -> bool:
        """A known contact's name or id with another key: warn, and never connect to it."""
        own = self.profile.get_contact(peer.public_key)
        if own is not None and own.trust is TrustState.ACCEPTED:
            return False  # a contact's own key (two contacts may share a name)
        for contact in self.profile.contacts():
            if contact.public_key == peer.public_key or contact.trust is not TrustState.ACCEPTED:
                continue
            if contact.display_name == peer.name or peer_id(contact.public_key) == peer.peer_id:
                address = peer.addresses[0] if peer.addresses else ""
                self._warn_key_change(contact, peer.public_key, address, "advert")
                return True
        return False

    def _warn_key_change(
        self, contact: Contact, offending_key: bytes, address: str, source: str
    ) -> None:
        """One open warning per contact; a stream of attempts folds into its count."""
        state = self._key_warnings.note(
            contact.public_key, offending_key, address, source, _monotonic_ms()
        )
        if state is not None:
            self._emit_key_warning(state)
        elif self._key_warning_timer is None:
            self._arm_key_warning_timer()

    def _report_due_key_warnings(self) -> None:
        self._key_warning_timer = None
        for state in self._key_warnings.due(_monotonic_ms()):
            self._emit_key_warning(state)
        self._arm_key_warning_timer()

    def _arm_key_warning_timer(self) -> None:
        """Wake when a folded-in attempt is due to be reported (a monotonic clock: a
        wall clock stepped back must not silence the warning)."""
        due = self._key_warnings.next_due_ms()
        if due is None or self._stopping:
            return
        delay = max(0.0, (due - _monotonic_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._key_warning_timer = loop.call_later(delay, self._report_due_key_warnings)

    def _emit_key_warning(self, state: KeyWarningState) -> None:
        event = self._key_warning_event(state)
        if event is not None:
            self.emit(event)

    def _key_warning_event(self, state: KeyWarningState) -> KeyChangeWarning | None:
        contact = self.profile.get_contact(state.contact_key)
        if contact is None:
            return None
        return KeyChangeWarning(
            peer_id=peer_id(contact.public_key),
            name=contact.display_name,
            pinned_fingerprint=fingerprint(contact.public_key),
            advertised_fingerprint=fingerprint(state.offending_key),
            advertised_peer_id=peer_id(state.offending_key),
            count=state.count,
            source=state.source,
            address=state.address,
        )

    # -- connecting ----------------------------------------------------------------

    def _maybe_connect(self, key: bytes) -> None:
        contact = self.profile.get_contact(key)
        if (
            self._stopping
            or contact is None
            or contact.trust is not TrustState.ACCEPTED
            or key not in self._lan
            or key in self._connecting
            or (key in self._links and self._links[key].state != "closed")
            or self.identity.public_key > key  # the smaller key offers
        ):
            return
        task = self._spawn(self._async_connect(key))
        self._connecting[key] = task
        task.add_done_callback(lambda _t: self._connecting.pop(key, None))

    async def _async_connect(self, key: bytes) -> None:
        self.emit(SessionChanged(peer_id(key), self._contact(key).display_name, "connecting"))
        for attempt in range(10_000):
            if self._stopping or key not in self._lan:
                if not self._stopping:  # a watcher saw "connecting": end that story
                    self.emit(
                        SessionChanged(
                            peer_id(key), self._contact(key).display_name, "closed",
                            "peer left the LAN",
                        )
                    )  # fmt: skip
                return
            session = Session(
                Role.INITIATOR, LanEnvelopes(self.identity, key, self._guard_for(key))
            )
            link = self._new_link(key, session)
            channel: DataChannelLink | None = None
            try:
                channel, offer = await DataChannelLink.async_create_offer(
                    on_message=link.feed,
                    on_closed=link.link_closed,
                    interfaces=self.config.interfaces,
                )
                envelope = session.make_offer(offer, now_ms(), {"name": self.name})
                reply = await self._async_post_raw(key, envelope)
                if reply is None:
                    raise SignalingError("peer sent no answer")
                answer = session.receive_answer(reply, now_ms())
                await channel.async_apply_answer(answer.sdp)
                link.attach(channel)
                return
            except (SignalingError, ProtocolError, TransportError) as exc:
                link.close(f"connect failed: {exc}")
                if channel is not None:
                    await channel.async_close()
                await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])

    def _new_link(self, key: bytes, session: Session) -> PeerLink:
        old = self._links.get(key)
        if old is not None:
            old.close("replaced by a new session")
        link = PeerLink(key, session, on_event=self._on_link_event, on_closed=self._on_link_closed)
        self._links[key] = link
        self._refs.pop(key, None)  # the contact's name as it is now, once per session
        return link

    def _on_link_closed(self, link: PeerLink, reason: str) -> None:
        if self._links.get(link.peer_key) is link:
            del self._links[link.peer_key]
            contact = self.profile.get_contact(link.peer_key)
            name = contact.display_name if contact else "?"
            if link.opened:  # failed attempts to connect are not news
                self.emit(SessionChanged(peer_id(link.peer_key), name, "closed", reason))
            if not self._stopping:
                self._maybe_connect(link.peer_key)

    def _on_link_event(self, link: PeerLink, event: Event) -> None:
        key = link.peer_key
        ref = self._refs.get(key)
        if ref is None:
            ref = ConversationRef(
                contact_conversation_id(key), peer_id(key), self._contact(key).display_name
            )
            self._refs[key] = ref
        self.on_session_event(link, event, ref)

    def on_session_event(self, link: PeerLink, event: Event, ref: ConversationRef) -> None:
        """What a session (a contact's or a guest's) tells us, stored and passed on."""
        if isinstance(event, SessionOpened):
            self.emit(SessionChanged(ref.peer_label, ref.name, "open"))
            self._spawn(self._async_flush_outbox(link, ref.conversation_id))
        elif isinstance(event, MessageReceived):
            if link.state == "closed":  # a message after one we could not store: not yet
                return
            # Stored in a group commit at the end of this loop turn: the messages of a
            # burst (several per SCTP packet) share one transaction; receipts follow it.
            self._incoming.append((link, event, ref))
            if len(self._incoming) == 1:
                asyncio.get_running_loop().call_soon(self._store_incoming)
        # A receipt is scoped to its conversation: one from one contact cannot
        # mark (or drop from the outbox) a message meant for another.
        elif isinstance(event, ReceiptReceived) and self._marks.take_receipt(
            event.message_id, ref.conversation_id
        ):
            self.emit(ReceiptEvent(ref.conversation_id, ref.peer_label, event.message_id.hex()))

    def _store_incoming(self) -> None:
        batch, self._incoming = self._incoming, []
        batch = [item for item in batch if item[0].state != "closed"]
        if not batch:
            return
        try:
            with self.profile.batch():
                stored = [
                    self.profile.add_message(
                        StoredMessage(
                            message_id=event.message_id, conversation_id=ref.conversation_id,
                            direction=MessageDirection.IN, sender=ref.name,
                            timestamp_ms=event.timestamp_ms, body=event.text,
                            delivery=DeliveryState.DELIVERED,
                        )
                    )
                    for _, event, ref in batch
                ]  # fmt: skip
        except Exception as exc:  # a callback: nothing may escape it
            # StoreError (a full disk) or any other database error (busy, I/O).
            # No receipt for what we could not store: the peers keep it queued.
            # Ending a session makes its peer send its queue again, in order, on
            # the next one (a session resends only when it opens).
            for link, _, ref in batch:
                if link.state != "closed":
                    logger.warning("message from %s not stored: %s", ref.peer_label, exc)
                    link.close(f"could not store a message: {exc}")
            return
        if any(stored):
            self._marks.index_later()
        for (link, event, ref), new in zip(batch, stored, strict=True):
            # Receipt even for a duplicate: the first receipt may have been lost.
            with contextlib.suppress(TransportError, ProtocolError):
                link.send(link.session.send_receipt(event.message_id, now_ms()))
            if new:
                self.emit(
                    MessageEvent(
                        conversation=ref.conversation_id, peer_id=ref.peer_label,
                        sender=ref.name, direction="in", message_id=event.message_id.hex(),
                        timestamp_ms=event.timestamp_ms, text=event.text,
                    )
                )  # fmt: skip

    async def _async_flush_outbox(self, link: PeerLink, conversation: str) -> None:
        async with link.send_lock:
            self._marks.flush()  # receipts still queued must not send their messages again
            for entry in self.profile.pending_outbox(conversation):
                if link.state != "open":
                    return
                try:
                    _, data = link.session.send_text(
                        entry.body, entry.created_ms, message_id=entry.message_id
                    )
                    link.send(data)
                    await link.async_drain()
                except (TransportError, ProtocolError):
                    return
                self._marks.mark_sent(entry.message_id)

    # -- signaling -----------------------------------------------------------------

    async def _async_handle_envelope(self, data: bytes, remote: str) -> bytes | None:
        try:
            sender = peek_lan_sender(data)
            envelopes = LanEnvelopes(self.identity, sender, self._guard_for(sender))
        except (EnvelopeError, ValueError) as exc:
            raise SignalingRefused(400, f"bad envelope: {exc}") from None
        contact = self.profile.get_contact(sender)
        if contact is not None and contact.trust is TrustState.BLOCKED:
            raise SignalingRefused(403, "blocked")
        try:
            opened = envelopes.open(data, Direction.INITIATOR, now_ms())
        except EnvelopeError as exc:
            raise SignalingRefused(403, f"envelope refused ({exc.code}): {exc}") from None
        kind = opened.kind
        if kind == EnvelopeKind.OFFER:
            return await self._async_answer_offer(sender, contact, opened)
        if kind == EnvelopeKind.CONTACT_REQUEST:
            self._contact_request(sender, contact, opened.body, remote)
            return None
        if kind == EnvelopeKind.CONTACT_ACCEPT:
            if contact is None or contact.trust is not TrustState.PENDING_OUTGOING:
                raise SignalingRefused(403, "no contact request to accept")
            self.profile.set_trust(sender, TrustState.ACCEPTED)
            self.emit(ContactAccepted(peer_id(sender), contact.display_name))
            self._maybe_connect(sender)
            return None
        if kind == EnvelopeKind.CONTACT_REJECT:
            if contact is not None and contact.trust is TrustState.PENDING_OUTGOING:
                self.profile.set_trust(sender, TrustState.REJECTED)
                self.emit(ContactRejected(peer_id(sender), contact.display_name))
            return None
        raise SignalingRefused(400, f"unknown envelope kind {kind}")

    async def _async_answer_offer(
        self, sender: bytes, contact: Contact | None, opened: OpenedEnvelope
    ) -> bytes:
        if contact is not None and contact.trust is TrustState.PENDING_OUTGOING:
            # An authenticated offer from someone we asked: they accepted.
            self.profile.set_trust(sender, TrustState.ACCEPTED)
            self.emit(ContactAccepted(peer_id(sender), contact.display_name))
            contact = self._contact(sender)
        if contact is None or contact.trust is not TrustState.ACCEPTED:
            raise SignalingRefused(403, "not a contact: send a contact request first")
        session = Session(
            Role.RESPONDER, LanEnvelopes(self.identity, sender, self._guard_for(sender))
        )
        try:
            offer = session.receive_opened_offer(opened)
        except ProtocolError as exc:
            raise SignalingRefused(400, f"bad offer ({exc.code}): {exc}") from None
        link = self._new_link(sender, session)
        try:
            channel, answer_sdp = await DataChannelLink.async_accept_offer(
                offer.sdp,
                on_message=link.feed,
                on_closed=link.link_closed,
                interfaces=self.config.interfaces,
            )
        except TransportError as exc:
            link.close(str(exc))
            raise SignalingRefused(400, f"bad offer: {exc}") from None
        reply = session.make_answer(answer_sdp, now_ms(), {"name": self.name})
        link.attach(channel)
        self.emit(SessionChanged(peer_id(sender), contact.display_name, "connecting"))
        return reply

    def _contact_request(
        self, sender: bytes, contact: Contact | None, body: bytes, remote: str
    ) -> None:
        name = _request_name(body) or peer_id(sender)
        if contact is not None:
            if contact.trust is TrustState.PENDING_OUTGOING:  # we both asked: done
                self.profile.set_trust(sender, TrustState.ACCEPTED)
                self.emit(ContactAccepted(peer_id(sender), contact.display_name))
                self._maybe_connect(sender)
            return  # repeated or already answered: nothing new
        contacts = self.profile.contacts()
        clash = next(
            (c for c in contacts if c.trust is TrustState.ACCEPTED and c.display_name == name),
            None,
        )
        if clash is not None:  # another key under a contact's name: never a silent new "bob"
            self._warn_key_change(clash, sender, remote, "contact_request")
        pending = sum(1 for c in contacts if c.trust is TrustState.PENDING_INCOMING)
        if pending >= MAX_PENDING_REQUESTS:
            raise SignalingRefused(429, "too many pending contact requests")
        if clash is not None:
            # Dropped with the answer every request gets (as one from someone we
            # rejected): the sender cannot tell which names are our contacts.
            return
        self.profile.upsert_contact(
            Contact(
                public_key=sender,
                display_name=name,
                trust=TrustState.PENDING_INCOMING,
                verified=False,
                pinned_at_ms=now_ms(),
            )
        )
        self.emit(ContactRequestReceived(peer_id(sender), name))

    async def _async_post(self, key: bytes, kind: EnvelopeKind, body: bytes) -> bytes | None:
        envelope = LanEnvelopes(self.identity, key, self._guard_for(key)).seal(
            kind, Direction.INITIATOR, os.urandom(16), body, now_ms()
        )
        return await self._async_post_raw(key, envelope)

    async def _async_post_raw(self, key: bytes, envelope: bytes) -> bytes | None:
        peer = self._lan.get(key)
        if peer is None:
            raise SignalingError("peer is not on the LAN right now")
        return await async_post_envelope(peer.addresses, peer.port, envelope)

    # -- helpers -------------------------------------------------------------------

    def _resolve_contact(self, query: str, *, states: set[TrustState]) -> Contact:
        from p2pchat.node.peer_match import resolve_peer

        candidates = [c for c in self.profile.contacts() if c.trust in states]
        return resolve_peer(
            query, candidates, name_of=lambda c: c.display_name, key_of=lambda c: c.public_key,
            kind="contact",
            none_yet="no contact matches {query}: there are no contacts yet"
            " (`p2pchat add PEER` asks a peer on the LAN)",
        )  # fmt: skip

    def _resolve_request(self, query: str) -> Contact:
        """The contact request ``query`` names (for accept and reject)."""
        from p2pchat.node.peer_match import resolve_peer

        waiting = [c for c in self.profile.contacts() if c.trust is TrustState.PENDING_INCOMING]
        return resolve_peer(
            query, waiting, name_of=lambda c: c.display_name, key_of=lambda c: c.public_key,
            kind="contact request",
            none_yet="there is no contact request from {query}: none is waiting"
            " (`p2pchat add PEER` asks a peer yourself)",
            no_match="there is no contact request from {query}", plural="requests waiting from",
        )  # fmt: skip

    def _guard_for(self, key: bytes) -> ReplayGuard:
        if key in self._contact_guards:
            return self._contact_guards[key]
        contact = self.profile.get_contact(key)
        if contact is not None and contact.trust is TrustState.ACCEPTED:
            guard = ReplayGuard(seen_before=self._stranger_guard)
            self._contact_guards[key] = guard
            return guard
        return self._stranger_guard

    def _contact(self, key: bytes) -> Contact:
        contact = self.profile.get_contact(key)
        assert contact is not None
        return contact

    def _contact_view(self, contact: Contact) -> ContactView:
        return ContactView(
            peer_id=peer_id(contact.public_key),
            name=contact.display_name,
            state=contact.trust.value,
            verified=contact.verified,
            fingerprint=fingerprint(contact.public_key),
            online=contact.public_key in self._lan,
        )

    def emit(self, event: NodeEvent) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A subscriber that fell MAX_SUBSCRIBER_BACKLOG events behind loses
                # them: it is told how many, then gets the present state again.
                missed = queue.qsize() + 1
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(EventsDropped(missed))
                self._put_snapshot(queue)
                # A warning it missed would otherwise never be seen: the node reports
                # a contact's warning again only on a new attempt.
                for state in self._key_warnings.open_warnings():
                    if (warning := self._key_warning_event(state)) is not None:
                        queue.put_nowait(warning)

    def _put_snapshot(self, queue: asyncio.Queue[NodeEvent | None]) -> None:
        """Who is on the LAN and which sessions are up: at most 2 events per LAN peer,
        and the LAN view is bounded, so this always fits an empty subscriber queue."""
        for peer in self._lan.peers():
            contact = self.profile.get_contact(peer.public_key)
            accepted = bool(contact and contact.trust is TrustState.ACCEPTED)
            queue.put_nowait(PeerFound(peer.peer_id, peer.name, list(peer.addresses), accepted))
            link = self._links.get(peer.public_key)
            if link is not None and link.state == "open":
                queue.put_nowait(SessionChanged(peer.peer_id, peer.name, "open"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _bind_hosts(self) -> list[str]:
        if not self.config.interfaces:
            return []
        from p2pchat.discovery.interfaces import interface_addresses

        # IPv4 only: a link-local IPv6 bind needs a scope per address; peers on
        # the chosen interface reach us over IPv4 (documented in docs/architecture.md).
        return interface_addresses(self.config.interfaces, "v4").advertised


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def _request_name(body: bytes) -> str | None:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    name = doc.get("name") if isinstance(doc, dict) else None
    if isinstance(name, str) and 0 < len(name.encode()) <= 64 and name.isprintable():
        return name
    return None
