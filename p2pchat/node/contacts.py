"""Contacts on the LAN: who is there, who may talk to us, and the sessions with them.

Discovery events feed the LAN view (and key-change warnings); the LAN signaling
server hands us its envelopes (offers, contact requests and answers); the contact
commands (add, accept, reject, verify, requests, contacts, peers) are here too.

Who connects: of two contacts, the one with the smaller public key makes the
offer, whenever the other is on the LAN and no session is up; the other waits.
One rule, so two nodes never race each other with crossing offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable

from p2pchat.control.api import ContactView, PeerView, SafetyView
from p2pchat.crypto.envelope import (
    Direction,
    EnvelopeError,
    LanEnvelopes,
    OpenedEnvelope,
    ReplayGuard,
    peek_lan_sender,
)
from p2pchat.crypto.identity import fingerprint, peer_id
from p2pchat.crypto.safety import safety_number
from p2pchat.discovery import events as disc
from p2pchat.errors import UserError
from p2pchat.node.core_protocol import ConversationRef, NodeCore
from p2pchat.node.events import (
    ContactAccepted,
    ContactRejected,
    ContactRequestReceived,
    KeyChangeWarning,
    NodeEvent,
    PeerFound,
    PeerLost,
    SessionChanged,
)
from p2pchat.node.key_warnings import KeyWarnings, KeyWarningState
from p2pchat.node.lan_view import LanView
from p2pchat.node.links import PeerLink, now_ms
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import Event
from p2pchat.protocol.handshake import EnvelopeKind
from p2pchat.protocol.session import Role, Session
from p2pchat.store import contact_conversation_id
from p2pchat.store.records import Contact, TrustState
from p2pchat.transport.errors import TransportError
from p2pchat.transport.lan_signaling import (
    SignalingError,
    SignalingRefused,
    async_post_envelope,
)
from p2pchat.transport.webrtc import DataChannelLink

MAX_PENDING_REQUESTS = 100
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 3.0)


class LanContacts:
    def __init__(self, core: NodeCore) -> None:
        self._core = core
        # Replay guards: one per accepted contact, kept for good, and ONE shared by
        # every stranger (who can seal envelopes with throwaway keys, so a guard per
        # key would be memory per key). A contact's guard also consults the stranger
        # guard: an envelope seen before acceptance stays seen after it.
        self.stranger_guard = ReplayGuard()
        self.contact_guards: dict[bytes, ReplayGuard] = {}
        self.lan = LanView()  # verified adverts, one per mDNS instance
        self._refs: dict[bytes, ConversationRef] = {}  # a contact's, made once per session
        self._connecting: dict[bytes, asyncio.Task[None]] = {}
        self._key_warnings = KeyWarnings()
        self._key_warning_timer: asyncio.TimerHandle | None = None
        # Set by the groups module: a ``member`` key (pinned by a group's list, not a
        # contact) that shares an active group with us may have a session too.
        self.member_allowed: Callable[[bytes], bool] = lambda _key: False

    def stop(self) -> None:
        if self._key_warning_timer is not None:
            self._key_warning_timer.cancel()

    # -- commands (NodeApi) --------------------------------------------------------

    async def async_peers(self) -> list[PeerView]:
        views = []
        for peer in self.lan.peers():
            contact = self._core.profile.get_contact(peer.public_key)
            link = self._core.links.get(peer.public_key)
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
        return [self._contact_view(c) for c in self._core.profile.contacts()]

    async def async_add_contact(self, peer: str) -> ContactView:
        from p2pchat.node.peer_match import resolve_peer

        target = resolve_peer(
            peer, list(self.lan.peers()), name_of=lambda p: p.name, key_of=lambda p: p.public_key
        )
        existing = self._core.profile.get_contact(target.public_key)
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
        body = json.dumps({"name": self._core.name}).encode()
        try:
            await self._async_post(target.public_key, EnvelopeKind.CONTACT_REQUEST, body)
        except SignalingError as exc:
            raise UserError(f"could not reach {target.name}: {exc}") from None
        self._core.profile.upsert_contact(contact)
        return self._contact_view(contact)

    async def async_requests(self) -> list[ContactView]:
        return [
            self._contact_view(c)
            for c in self._core.profile.contacts()
            if c.trust is TrustState.PENDING_INCOMING
        ]

    async def async_accept(self, peer: str) -> ContactView:
        contact = self._resolve_request(peer)
        self._core.profile.set_trust(contact.public_key, TrustState.ACCEPTED)
        with contextlib.suppress(SignalingError):  # they learn it on our next offer too
            await self._async_post(contact.public_key, EnvelopeKind.CONTACT_ACCEPT, b"{}")
        self._core.emit(ContactAccepted(peer_id(contact.public_key), contact.display_name))
        self.maybe_connect(contact.public_key)
        return self._contact_view(self._contact(contact.public_key))

    async def async_reject(self, peer: str) -> ContactView:
        contact = self._resolve_request(peer)
        self._core.profile.set_trust(contact.public_key, TrustState.REJECTED)
        with contextlib.suppress(SignalingError):
            await self._async_post(contact.public_key, EnvelopeKind.CONTACT_REJECT, b"{}")
        return self._contact_view(self._contact(contact.public_key))

    async def async_verify(self, peer: str, *, mark_verified: bool) -> SafetyView:
        contact = self._resolve_contact(peer, states={TrustState.ACCEPTED})
        if mark_verified:
            self._core.profile.set_verified(contact.public_key, True)
        number = safety_number(self._core.identity.public_key, contact.public_key)
        return SafetyView(
            peer_id=peer_id(contact.public_key),
            name=contact.display_name,
            safety_number=number.digits,
            qr_payload=number.qr_payload,
            verified=mark_verified or contact.verified,
        )

    # -- what a new subscriber, or one that fell behind, is told -------------------

    def snapshot(self) -> list[NodeEvent]:
        """Who is on the LAN and which sessions are up: at most 2 events per LAN peer,
        and the LAN view is bounded, so this always fits an empty subscriber queue."""
        events: list[NodeEvent] = []
        for peer in self.lan.peers():
            contact = self._core.profile.get_contact(peer.public_key)
            accepted = bool(contact and contact.trust is TrustState.ACCEPTED)
            events.append(PeerFound(peer.peer_id, peer.name, list(peer.addresses), accepted))
            link = self._core.links.get(peer.public_key)
            if link is not None and link.state == "open":
                events.append(SessionChanged(peer.peer_id, peer.name, "open"))
        return events

    def open_key_warnings(self) -> list[KeyChangeWarning]:
        """The warnings still open: a node reports one again only on a new attempt."""
        events = []
        for state in self._key_warnings.open_warnings():
            if (warning := self._key_warning_event(state)) is not None:
                events.append(warning)
        return events

    # -- discovery -----------------------------------------------------------------

    def on_discovery_event(self, event: disc.DiscoveryEvent) -> None:
        if isinstance(event, disc.PeerFound | disc.PeerUpdated):
            self._peer_seen(event.peer)
        elif isinstance(event, disc.PeerLost):
            self._instance_gone(event.instance)

    def _instance_gone(self, instance: str) -> None:
        gone = self.lan.lost(instance)
        if gone is not None:
            self._core.emit(PeerLost(gone.peer_id, gone.name))

    def _peer_seen(self, peer: disc.LanPeer) -> None:
        # Discovery passes adverts whose id does not match their key, so that one
        # claiming a contact's id is seen here (and warned about), never used.
        if (
            peer.public_key == self._core.identity.public_key
            or self._key_changed(peer)
            or peer.peer_id != peer_id(peer.public_key)
        ):
            self._instance_gone(peer.instance)  # whatever it advertised before no longer holds
            return
        change = self.lan.seen(peer)
        if change is None:  # the LAN view is full (discovery's own bound, held here too)
            return
        if change.gone is not None:
            self._core.emit(PeerLost(change.gone.peer_id, change.gone.name))
        contact = self._core.profile.get_contact(peer.public_key)
        if change.new_key:
            self._core.emit(
                PeerFound(
                    peer.peer_id,
                    peer.name,
                    list(peer.addresses),
                    is_contact=bool(contact and contact.trust is TrustState.ACCEPTED),
                )
            )
        self.maybe_connect(peer.public_key)

    def _key_changed(self, peer: disc.LanPeer) -> bool:
        """A known contact's name or id with another key: warn, and never connect to it."""
        pinned = (TrustState.ACCEPTED, TrustState.MEMBER)  # a group member's key is pinned too
        own = self._core.profile.get_contact(peer.public_key)
        if own is not None and own.trust in pinned:
            return False  # a contact's own key (two contacts may share a name)
        for contact in self._core.profile.contacts(include_members=True):
            if contact.public_key == peer.public_key or contact.trust not in pinned:
                continue
            if contact.display_name == peer.name or peer_id(contact.public_key) == peer.peer_id:
                address = peer.addresses[0] if peer.addresses else ""
                self.warn_key_change(contact, peer.public_key, address, "advert")
                return True
        return False

    def warn_key_change(
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
        if due is None or self._core.stopping:
            return
        delay = max(0.0, (due - _monotonic_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._key_warning_timer = loop.call_later(delay, self._report_due_key_warnings)

    def _emit_key_warning(self, state: KeyWarningState) -> None:
        event = self._key_warning_event(state)
        if event is not None:
            self._core.emit(event)

    def _key_warning_event(self, state: KeyWarningState) -> KeyChangeWarning | None:
        contact = self._core.profile.get_contact(state.contact_key)
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

    def maybe_connect(self, key: bytes) -> None:
        contact = self._core.profile.get_contact(key)
        links = self._core.links
        if (
            self._core.stopping
            or not self._session_allowed(contact)
            or key not in self.lan
            or key in self._connecting
            or (key in links and links[key].state != "closed")
            or self._core.identity.public_key > key  # the smaller key offers
        ):
            return
        task = self._core.spawn(self._async_connect(key))
        self._connecting[key] = task
        task.add_done_callback(lambda _t: self._connecting.pop(key, None))

    def _session_allowed(self, contact: Contact | None) -> bool:
        """A contact, or a key a group I am active in lists (whatever its contact state
        but blocked: a member's contact request, even refused, must not cut the group)."""
        if contact is None or contact.trust is TrustState.BLOCKED:
            return False
        return contact.trust is TrustState.ACCEPTED or self.member_allowed(contact.public_key)

    def resolve_accepted(self, query: str) -> Contact:
        """The accepted contact ``query`` names (group members are picked from these)."""
        return self._resolve_contact(query, states={TrustState.ACCEPTED})

    async def _async_connect(self, key: bytes) -> None:
        core = self._core
        core.emit(SessionChanged(peer_id(key), self._contact(key).display_name, "connecting"))
        for attempt in range(10_000):
            if core.stopping or key not in self.lan:
                if not core.stopping:  # a watcher saw "connecting": end that story
                    core.emit(
                        SessionChanged(
                            peer_id(key), self._contact(key).display_name, "closed",
                            "peer left the LAN",
                        )
                    )  # fmt: skip
                return
            session = Session(
                Role.INITIATOR,
                LanEnvelopes(core.identity, key, self._guard_for(key)),
                groups=True,
                files=True,
            )
            link = self._new_link(key, session)
            channel: DataChannelLink | None = None
            try:
                channel, offer = await DataChannelLink.async_create_offer(
                    on_message=link.feed,
                    on_closed=link.link_closed,
                    interfaces=core.config.interfaces,
                )
                envelope = session.make_offer(
                    offer, now_ms(), {"name": core.name, "fdirect": "1", "gfiles": "1"}
                )
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
        old = self._core.links.get(key)
        if old is not None:
            old.close("replaced by a new session")
        link = PeerLink(key, session, on_event=self._on_link_event, on_closed=self._on_link_closed)
        self._core.links[key] = link
        self._refs.pop(key, None)  # the contact's name as it is now, once per session
        return link

    def _on_link_closed(self, link: PeerLink, reason: str) -> None:
        links = self._core.links
        if links.get(link.peer_key) is link:
            del links[link.peer_key]
            contact = self._core.profile.get_contact(link.peer_key)
            name = contact.display_name if contact else "?"
            if link.opened:  # failed attempts to connect are not news
                self._core.emit(SessionChanged(peer_id(link.peer_key), name, "closed", reason))
            if not self._core.stopping:
                self.maybe_connect(link.peer_key)

    def _on_link_event(self, link: PeerLink, event: Event) -> None:
        key = link.peer_key
        ref = self._refs.get(key)
        if ref is None:
            ref = ConversationRef(
                contact_conversation_id(key), peer_id(key), self._contact(key).display_name
            )
            self._refs[key] = ref
        self._core.on_session_event(link, event, ref)

    # -- LAN signaling -------------------------------------------------------------

    async def async_handle_envelope(self, data: bytes, remote: str) -> bytes | None:
        """What the LAN signaling server received: opened, checked, acted on."""
        try:
            sender = peek_lan_sender(data)
            envelopes = LanEnvelopes(self._core.identity, sender, self._guard_for(sender))
        except (EnvelopeError, ValueError) as exc:
            raise SignalingRefused(400, f"bad envelope: {exc}") from None
        contact = self._core.profile.get_contact(sender)
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
            self._core.profile.set_trust(sender, TrustState.ACCEPTED)
            self._core.emit(ContactAccepted(peer_id(sender), contact.display_name))
            self.maybe_connect(sender)
            return None
        if kind == EnvelopeKind.CONTACT_REJECT:
            if contact is not None and contact.trust is TrustState.PENDING_OUTGOING:
                self._core.profile.set_trust(sender, TrustState.REJECTED)
                self._core.emit(ContactRejected(peer_id(sender), contact.display_name))
            return None
        raise SignalingRefused(400, f"unknown envelope kind {kind}")

    async def _async_answer_offer(
        self, sender: bytes, contact: Contact | None, opened: OpenedEnvelope
    ) -> bytes:
        core = self._core
        if (
            contact is not None
            and contact.trust is TrustState.PENDING_OUTGOING
            and not self.member_allowed(sender)  # a member's offer is for the group
        ):
            # An authenticated offer from someone we asked: they accepted.
            core.profile.set_trust(sender, TrustState.ACCEPTED)
            core.emit(ContactAccepted(peer_id(sender), contact.display_name))
            contact = self._contact(sender)
        if not self._session_allowed(contact):
            raise SignalingRefused(403, "not a contact: send a contact request first")
        assert contact is not None
        session = Session(
            Role.RESPONDER,
            LanEnvelopes(core.identity, sender, self._guard_for(sender)),
            groups=True,
            files=True,
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
                interfaces=core.config.interfaces,
            )
        except TransportError as exc:
            link.close(str(exc))
            raise SignalingRefused(400, f"bad offer: {exc}") from None
        reply = session.make_answer(
            answer_sdp, now_ms(), {"name": core.name, "fdirect": "1", "gfiles": "1"}
        )
        link.attach(channel)
        core.emit(SessionChanged(peer_id(sender), contact.display_name, "connecting"))
        return reply

    def _contact_request(
        self, sender: bytes, contact: Contact | None, body: bytes, remote: str
    ) -> None:
        profile = self._core.profile
        name = _request_name(body) or peer_id(sender)
        if contact is not None and contact.trust is TrustState.MEMBER:
            contact = None  # a group member asking to be a contact: a request as any other
        if contact is not None:
            if contact.trust is TrustState.PENDING_OUTGOING:  # we both asked: done
                profile.set_trust(sender, TrustState.ACCEPTED)
                self._core.emit(ContactAccepted(peer_id(sender), contact.display_name))
                self.maybe_connect(sender)
            return  # repeated or already answered: nothing new
        contacts = profile.contacts()
        clash = next(
            (c for c in contacts if c.trust is TrustState.ACCEPTED and c.display_name == name),
            None,
        )
        if clash is not None:  # another key under a contact's name: never a silent new "bob"
            self.warn_key_change(clash, sender, remote, "contact_request")
        pending = sum(1 for c in contacts if c.trust is TrustState.PENDING_INCOMING)
        if pending >= MAX_PENDING_REQUESTS:
            raise SignalingRefused(429, "too many pending contact requests")
        if clash is not None:
            # Dropped with the answer every request gets (as one from someone we
            # rejected): the sender cannot tell which names are our contacts.
            return
        profile.upsert_contact(
            Contact(
                public_key=sender,
                display_name=name,
                trust=TrustState.PENDING_INCOMING,
                verified=False,
                pinned_at_ms=now_ms(),
            )
        )
        self._core.emit(ContactRequestReceived(peer_id(sender), name))

    async def _async_post(self, key: bytes, kind: EnvelopeKind, body: bytes) -> bytes | None:
        envelope = LanEnvelopes(self._core.identity, key, self._guard_for(key)).seal(
            kind, Direction.INITIATOR, os.urandom(16), body, now_ms()
        )
        return await self._async_post_raw(key, envelope)

    async def _async_post_raw(self, key: bytes, envelope: bytes) -> bytes | None:
        peer = self.lan.get(key)
        if peer is None:
            raise SignalingError("peer is not on the LAN right now")
        return await async_post_envelope(peer.addresses, peer.port, envelope)

    # -- helpers -------------------------------------------------------------------

    def _resolve_contact(self, query: str, *, states: set[TrustState]) -> Contact:
        from p2pchat.node.peer_match import resolve_peer

        candidates = [c for c in self._core.profile.contacts() if c.trust in states]
        return resolve_peer(
            query, candidates, name_of=lambda c: c.display_name, key_of=lambda c: c.public_key,
            kind="contact",
            none_yet="no contact matches {query}: there are no contacts yet"
            " (`p2pchat add PEER` asks a peer on the LAN)",
        )  # fmt: skip

    def _resolve_request(self, query: str) -> Contact:
        """The contact request ``query`` names (for accept and reject)."""
        from p2pchat.node.peer_match import resolve_peer

        profile = self._core.profile
        waiting = [c for c in profile.contacts() if c.trust is TrustState.PENDING_INCOMING]
        return resolve_peer(
            query, waiting, name_of=lambda c: c.display_name, key_of=lambda c: c.public_key,
            kind="contact request",
            none_yet="there is no contact request from {query}: none is waiting"
            " (`p2pchat add PEER` asks a peer yourself)",
            no_match="there is no contact request from {query}", plural="requests waiting from",
        )  # fmt: skip

    def _guard_for(self, key: bytes) -> ReplayGuard:
        if key in self.contact_guards:
            return self.contact_guards[key]
        contact = self._core.profile.get_contact(key)
        if self._session_allowed(contact):
            guard = ReplayGuard(seen_before=self.stranger_guard)
            self.contact_guards[key] = guard
            return guard
        return self.stranger_guard

    def _contact(self, key: bytes) -> Contact:
        contact = self._core.profile.get_contact(key)
        assert contact is not None
        return contact

    def _contact_view(self, contact: Contact) -> ContactView:
        return ContactView(
            peer_id=peer_id(contact.public_key),
            name=contact.display_name,
            state=contact.trust.value,
            verified=contact.verified,
            fingerprint=fingerprint(contact.public_key),
            online=contact.public_key in self.lan,
        )


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
