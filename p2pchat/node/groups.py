"""LAN groups: create/add/remove/leave, fan-out on send, receive → verify → store → event.

Each group's protocol state (``protocol.group_state.GroupState``) is held here,
restored from the store when the node starts. Whatever changes it is stored
before anything is sent or acknowledged, one transaction per step.

Delivery is pairwise fan-out over the 1:1 sessions (docs/protocol.md "Groups"):
a message is stored once in history and one copy per other LAN member goes into
that member's 1:1 outbox in the same commit; the core's outbox flush sends it
(only to a peer that announced ``groups=1``). Members who are not contacts are
pinned from the admin's list (trust ``member``) and get sessions too.

Browser guests (kind 2) join a group through an invite of its admin, their host:
group_guests.py hosts them; this module fans their messages out to the LAN members
as it does its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from p2pchat.control.api import GroupMemberView, GroupView, SentView
from p2pchat.crypto.encoding import b64url_encode
from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node.contacts import LanContacts
from p2pchat.node.core_protocol import ConversationRef, NodeCore
from p2pchat.node.events import GroupChanged, GroupMessageRefused, MessageEvent, ReceiptEvent
from p2pchat.node.group_guests import GroupGuests
from p2pchat.node.links import GuestLink, PeerLink, now_ms
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import GroupFrameReceived
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import Member, MemberKind, decode_member_list
from p2pchat.protocol.group_messages import (
    MessageKind,
    copy_id_of,
    decode_group_message,
    group_id_of,
    message_id_of,
)
from p2pchat.protocol.group_wire import LocalGroupError
from p2pchat.store import StoreError, contact_conversation_id
from p2pchat.store.conversation_id import GROUP_PREFIX, group_conversation_id
from p2pchat.store.records import (
    DeliveryState,
    StoredGroup,
    StoredMessage,
    TrustState,
)
from p2pchat.store.records import Direction as MessageDirection
from p2pchat.store.records import GroupState as StoredState
from p2pchat.transport.errors import TransportError

logger = logging.getLogger(__name__)

# Refusals that are the normal echo of at-least-once delivery, not an attack: a list
# resent after a newer one; a list a member forwards before the admin's own reached us.
_QUIET_CODES = frozenset({"group-stale-list", "group-join-not-admin"})
# Messages of a group I do not hold yet (a member's copy can overtake the admin's first
# list): kept, unacknowledged, until that list comes; past this many, left to the
# senders' outboxes (no receipt: they send them again on the next session).
MAX_ORPHANS = 256


@dataclass
class _Held:
    """A message held for a newer list: where its receipt goes once it is stored."""

    link: PeerLink
    copy_id: bytes


class LanGroups:
    def __init__(self, core: NodeCore, contacts: LanContacts) -> None:
        self._core = core
        self._contacts = contacts
        self._states: dict[bytes, gs.GroupState] = {}
        self._held: dict[bytes, _Held] = {}  # message id → receipt to send when released
        self._orphans: list[tuple[PeerLink, GroupFrameReceived, ConversationRef]] = []
        self.guests = GroupGuests(core, self)
        self._restore()
        contacts.member_allowed = self.shares_active_group

    # -- start ---------------------------------------------------------------------

    def _restore(self) -> None:
        me = self._core.identity.public_key
        store = self._core.profile.groups
        for row in store.all():
            try:
                decode_member_list(row.member_list)  # gs.restore decodes it again
            except ProtocolError as exc:  # a list that no longer verifies: never used
                logger.warning("group %s not restored: %s", row.group_id.hex(), exc)
                continue
            # Every chain held, members on the list or not: a removed member's is kept,
            # so its old messages stay refused if it is added again (threat model (f)).
            chains = {
                key: gs.Chain(held.last_seq, held.last_hash)
                for key, held in store.chains(row.group_id).items()
                if key != me
            }
            own = store.chain(row.group_id, me)
            self._states[row.group_id] = gs.restore(
                row.member_list, row.joined_epoch, me,
                gs.Chain(own.last_seq, own.last_hash) if own else gs.NO_CHAIN,
                chains, gs.Status(row.state.value),
            )  # fmt: skip

    # -- who may have a session with us ----------------------------------------------

    def shares_active_group(self, key: bytes) -> bool:
        return any(
            s.status is gs.Status.ACTIVE and s.members.member(key) is not None
            for s in self._states.values()
        )

    # -- commands (NodeApi) ------------------------------------------------------------

    async def async_groups(self) -> list[GroupView]:
        return [self._view(s) for s in sorted(self._states.values(), key=_sort_key)]

    async def async_create(self, name: str, members: Sequence[str]) -> GroupView:
        if len(self._states) >= _max_groups():
            raise UserError(f"you are in {_max_groups()} groups already: the limit")
        picked: dict[bytes, Member] = {}
        for query in members:
            contact = self._contacts.resolve_accepted(query)
            picked[contact.public_key] = Member(
                MemberKind.LAN, contact.public_key, contact.display_name
            )
        try:
            sent = gs.create(
                self._core.identity.signing_key, self._core.name, name, list(picked.values())
            )
        except LocalGroupError as exc:
            raise UserError(f"cannot create group {name!r}: {exc}") from None
        self._commit_list(None, sent)
        self._core.emit(self._changed(sent.state, "created", None))
        return self._view(sent.state)

    async def async_add(self, group: str, member: str) -> GroupView:
        state = self._resolve(group)
        contact = self._contacts.resolve_accepted(member)
        if state.members.member(contact.public_key) is not None:
            raise UserError(f"{contact.display_name} is already in {state.name}")
        new = Member(MemberKind.LAN, contact.public_key, contact.display_name)
        try:
            sent = gs.add_member(state, self._core.identity.signing_key, new)
        except LocalGroupError as exc:
            raise UserError(f"cannot add to {state.name}: {exc}") from None
        self._commit_list(state, sent)
        self._core.emit(self._changed(sent.state, "member_added", new))
        return self._view(sent.state)

    async def async_remove(self, group: str, member: str) -> GroupView:
        from p2pchat.node.peer_match import resolve_peer

        state = self._resolve(group)
        others = [m for m in state.members.members if m.key != state.my_key]
        target = resolve_peer(
            member, others, name_of=lambda m: m.name, key_of=lambda m: m.key,
            kind="member", none_yet=f"{state.name} has no other members",
        )  # fmt: skip
        try:
            sent = gs.remove_member(state, self._core.identity.signing_key, target.key)
        except LocalGroupError as exc:
            raise UserError(f"cannot remove from {state.name}: {exc}") from None
        self._commit_list(state, sent, also=(target.key,))
        self._core.emit(self._changed(sent.state, "member_removed", target))
        return self._view(sent.state)

    async def async_leave(self, group: str) -> GroupView:
        state = self._resolve(group)
        try:
            sent = gs.leave(state, self._core.identity.signing_key, now_ms())
        except LocalGroupError as exc:
            raise UserError(f"cannot leave {state.name}: {exc}") from None
        self._commit_message(state, sent, text=None)
        self._core.emit(self._changed(sent.state, "you_left", None))
        return self._view(sent.state)

    # -- send (sending.py resolves the name; this stores and fans out) -----------------

    def targets(self) -> list[tuple[str, str, str]]:
        """(name, label, conversation) of each active group, for ``send``'s resolver."""
        return [
            (s.name, group_conversation_id(s.group_id), group_conversation_id(s.group_id))
            for s in self._states.values()
            if s.status is gs.Status.ACTIVE
        ]

    async def async_send(self, conversation: str, text: str) -> SentView:
        state = self._states.get(bytes.fromhex(conversation.removeprefix(GROUP_PREFIX)))
        if state is None:
            raise UserError("no such group")
        try:
            sent = gs.next_message(state, self._core.identity.signing_key, text, now_ms())
        except LocalGroupError as exc:
            raise UserError(f"cannot send to {state.name}: {exc}") from None
        stamp = _timestamp(sent.encoded)
        self._commit_message(state, sent, text=text)
        self._core.emit(
            MessageEvent(
                conversation=conversation, peer_id=self._core.identity.peer_id,
                sender=self._core.name, direction="out", message_id=sent.message_id.hex(),
                timestamp_ms=stamp, text=text, group_id=state.group_id.hex(),
                group_name=state.name, sender_id=self._core.identity.peer_id,
            )
        )  # fmt: skip
        online = [k for k in self._lan_members(sent.state) if self._open(k)]
        online += self.guests.open_keys(state.group_id)
        return SentView(conversation, sent.message_id.hex(), "sent" if online else "queued")

    # -- sessions ----------------------------------------------------------------------

    def on_session_open(self, link: PeerLink) -> None:
        """Membership first: every shared group's held list, before the outbox flush."""
        if not link.session.groups:
            return
        for state in self._states.values():
            if state.status is gs.Status.ACTIVE and state.members.member(link.peer_key):
                self._send_list_now(link, state)

    def on_frame(self, link: PeerLink, event: GroupFrameReceived, ref: ConversationRef) -> None:
        try:
            if event.kind == FrameType.GROUP_LIST:
                self._on_list(link, event)
            else:
                self._on_message(link, event, ref)
        except Exception as exc:  # a callback: nothing may escape it
            # StoreError (a full disk) or any other database error. No receipt for what
            # we could not store: the peer sends it again on the next session (as for
            # 1:1 text), so the session ends here.
            logger.warning("group frame from %s not stored: %s", ref.peer_label, exc)
            link.close(f"could not store a group frame: {exc}")

    # -- receipts for my copies ---------------------------------------------------

    def copy_delivered(self, link: PeerLink, frame_type: int, payload: bytes | None) -> None:
        """A member's receipt for its copy of a group frame I queued (core.py took it
        out of the outbox): for my own text message, it counts for that message, and the
        receipt event names the message as history holds it. A list's copy: nothing."""
        if frame_type != FrameType.GROUP_MESSAGE or not payload:
            return
        try:
            msg = decode_group_message(payload)
        except ProtocolError:
            return
        if msg.sender_key != self._core.identity.public_key or msg.kind is not MessageKind.TEXT:
            return  # a guest's message I forwarded, or my leave: no history row of mine
        state = self._states.get(msg.group_id)
        member = state.members.member(link.peer_key) if state else None
        if member is None or member.kind is not MemberKind.LAN:
            return  # a kept guest's copy (its link is keyed by its guest id): not counted
        self._core.marks.group_delivered(msg.message_id, link.peer_key)
        self._core.emit(
            ReceiptEvent(
                group_conversation_id(msg.group_id), self._label(link), msg.message_id.hex()
            )
        )

    # -- receiving: lists ----------------------------------------------------------------

    def _on_list(self, link: PeerLink, event: GroupFrameReceived) -> None:
        gid = group_id_of(event.payload)
        state = self._states.get(gid) if gid else None
        if state is None:
            sender = self._core.profile.get_contact(link.peer_key)
            if sender is None or sender.trust is not TrustState.ACCEPTED:
                outcome = gs.ListOutcome(None, gs.Verdict.REFUSED, code="group-join-not-admin",
                                         reason="a first list from someone not a contact")  # fmt: skip
            elif len(self._states) >= _max_groups():
                outcome = gs.ListOutcome(None, gs.Verdict.REFUSED, code="group-too-many",
                                         reason=f"already in {_max_groups()} groups")  # fmt: skip
            else:
                outcome = gs.join(event.payload, self._core.identity.public_key, link.peer_key)
        else:
            outcome = gs.receive_list(state, event.payload)
        if outcome.verdict is gs.Verdict.REFUSED or outcome.state is None:
            self._refused(gid, link, outcome.code, outcome.reason)
        elif outcome.verdict is gs.Verdict.ADOPTED:
            self._adopt(state, outcome)
        self._receipt(link, event.message_id)

    def _adopt(self, old: gs.GroupState | None, outcome: gs.ListOutcome) -> None:
        new = outcome.state
        assert new is not None
        released = [o for o in outcome.released if o.verdict is gs.Verdict.ACCEPTED]
        with self._core.profile.batch():
            self._store_state(old, new)
            for member in outcome.added:
                if member.kind is MemberKind.LAN and member.key != new.my_key:
                    self._core.profile.groups.pin_member(member.key, member.name,
                                                         pinned_at_ms=now_ms())  # fmt: skip
            stored = [self._store_received(new, o) for o in released]
        self._core.marks.index_later()
        if old is None:
            self._core.emit(self._changed(new, "joined", None))
        else:
            if old.status is gs.Status.ACTIVE and new.status is gs.Status.REMOVED:
                self._core.emit(self._changed(new, "you_were_removed", None))
            for m in outcome.added:
                self._core.emit(self._changed(new, "member_added", m))
            for m in outcome.removed:
                self._core.emit(self._changed(new, "member_removed", m))
        # A newcomer under one of my contacts' names but another key: say so at once.
        for key in self._name_clashes(outcome.added):
            self._core.emit(self._changed(new, "name_clash", new.members.member(key)))
        if old is None:
            self._adopt_orphans(new.group_id)
        for o, new_message in zip(released, stored, strict=True):
            assert o.message is not None
            held = self._held.pop(o.message.message_id, None)
            if held is not None:
                self._receipt(held.link, held.copy_id)
            if new_message:
                self._emit_received(new, o)
        for o in outcome.released:
            if o.verdict is gs.Verdict.REFUSED and o.message is not None:
                held = self._held.pop(o.message.message_id, None)
                if held is not None:
                    self._refused(new.group_id, held.link, o.code, o.reason)
                    self._receipt(held.link, held.copy_id)
        # Forward the newer list on open member sessions (before our next message), and
        # connect to members we did not know.
        for key in self._lan_members(new):
            link = self._core.links.get(key)
            if link is not None and link.state == "open" and link.session.groups:
                self._send_list_now(link, new)
            else:
                self._contacts.maybe_connect(key)

    # -- receiving: messages -------------------------------------------------------------

    def _on_message(self, link: PeerLink, event: GroupFrameReceived, ref: ConversationRef) -> None:
        gid = group_id_of(event.payload)
        state = self._states.get(gid) if gid else None
        if state is None:
            # Maybe its list is on its way (from the admin): keep it, unacknowledged.
            self._orphans = [o for o in self._orphans if o[0].state != "closed"]
            if gid is not None and len(self._orphans) < MAX_ORPHANS:
                self._orphans.append((link, event, ref))
            return
        mid = message_id_of(event.payload)
        if (
            event.message_id == copy_id_of(mid, state.my_key)
            and self._core.profile.get_message(mid) is not None
        ):  # my copy sent again (its receipt was lost): acknowledged, nothing new
            self._receipt(link, event.message_id)
            return
        # Anything else already held (a copy under another id: replayed) meets the chain.
        outcome = gs.receive_message(state, event.payload)
        if outcome.verdict is gs.Verdict.HELD:
            # No receipt until its list arrives: the sender keeps the copy queued.
            self._states[state.group_id] = outcome.state
            self._held[mid] = _Held(link, event.message_id)
            return
        if outcome.verdict is gs.Verdict.REFUSED:
            self._refused(state.group_id, link, outcome.code, outcome.reason)
            self._receipt(link, event.message_id)  # dealt with: it must not come back forever
            return
        if outcome.verdict is gs.Verdict.DUPLICATE:
            if mid in self._held:  # still held: acknowledged once stored, on this session
                self._held[mid] = _Held(link, event.message_id)
            else:
                self._receipt(link, event.message_id)
            return
        new = outcome.state
        msg = outcome.message
        assert msg is not None
        # A message my guest signed came over its session: I fan it out to the LAN
        # members (as my own) in the same commit that stores it.
        hosted = self.guests.hosts(msg.sender_key, link)
        fan_out = self._lan_members(new) if hosted else []
        if msg.kind is MessageKind.LEAVE:
            with self._core.profile.batch():
                self._store_state(state, new)
                self._enqueue(fan_out, msg.message_id, event.payload, FrameType.GROUP_MESSAGE)
            self.guests.forward(new, event.payload, skip=msg.sender_key)
            self._member_left(new, msg.sender_key)
        else:
            with self._core.profile.batch():
                self._store_state(state, new)
                stored = self._store_received(new, outcome)
                self._enqueue(fan_out, msg.message_id, event.payload, FrameType.GROUP_MESSAGE)
            self._core.marks.index_later()
            self.guests.forward(new, event.payload, skip=msg.sender_key)
            if stored:
                self._emit_received(new, outcome)
        self._flush(fan_out)
        self._receipt(link, event.message_id)

    def _adopt_orphans(self, group_id: bytes) -> None:
        mine = [o for o in self._orphans if group_id_of(o[1].payload) == group_id]
        self._orphans = [o for o in self._orphans if group_id_of(o[1].payload) != group_id]
        for link, event, ref in mine:
            if link.state == "open":
                self._on_message(link, event, ref)

    def _member_left(self, state: gs.GroupState, key: bytes) -> None:
        member = state.members.member(key)
        self._core.emit(self._changed(state, "member_left", member))
        if state.is_admin and member is not None:
            # The admin answers a leave with the list without that member.
            with contextlib.suppress(LocalGroupError):
                sent = gs.remove_member(state, self._core.identity.signing_key, key)
                self._commit_list(state, sent, also=(key,))
                self._core.emit(self._changed(sent.state, "member_removed", member))

    def _store_received(self, state: gs.GroupState, outcome: gs.MessageOutcome) -> bool:
        msg = outcome.message
        assert msg is not None
        if msg.kind is not MessageKind.TEXT:
            return False
        member = state.members.member(msg.sender_key)
        return self._core.profile.add_message(
            StoredMessage(
                message_id=msg.message_id, conversation_id=group_conversation_id(state.group_id),
                direction=MessageDirection.IN, sender=member.name if member else "?",
                timestamp_ms=msg.timestamp_ms, body=msg.text, delivery=DeliveryState.DELIVERED,
                sender_key=msg.sender_key,
            )
        )  # fmt: skip

    def _emit_received(self, state: gs.GroupState, outcome: gs.MessageOutcome) -> None:
        msg = outcome.message
        assert msg is not None
        member = state.members.member(msg.sender_key)
        sender_id = peer_id(msg.sender_key)
        self._core.emit(
            MessageEvent(
                conversation=group_conversation_id(state.group_id), peer_id=sender_id,
                sender=member.name if member else "?", direction="in",
                message_id=msg.message_id.hex(), timestamp_ms=msg.timestamp_ms, text=msg.text,
                group_id=state.group_id.hex(), group_name=state.name, sender_id=sender_id,
                missing_before=outcome.missing,
            )
        )  # fmt: skip

    def _refused(self, gid: bytes | None, link: PeerLink, code: str, reason: str) -> None:
        if code in _QUIET_CODES:
            logger.debug("group frame from %s refused (%s): %s", link.peer_key.hex(), code, reason)
            return
        who = self._label(link)
        logger.warning("group frame from %s refused (%s): %s", who, code, reason)
        self._core.emit(GroupMessageRefused(gid.hex() if gid else "", who, code, reason))

    def _label(self, link: PeerLink) -> str:
        """A contact's peer id; a guest's ``guest:<id>`` (its session is keyed by its id)."""
        if isinstance(link, GuestLink):
            return "guest:" + b64url_encode(link.peer_key)
        return peer_id(link.peer_key)

    # -- storing and fanning out ---------------------------------------------------------

    def _commit_list(
        self, old: gs.GroupState | None, sent: gs.Sent, also: Sequence[bytes] = ()
    ) -> None:
        """Store the new list and queue one copy per LAN member (and ``also``: the removed)."""
        new = sent.state
        list_id = message_id_of(sent.encoded)
        keys = [*self._lan_members(new), *also]
        try:
            with self._core.profile.batch():
                self._store_state(old, new)
                for key in keys:
                    self._core.profile.enqueue_outbox(
                        copy_id_of(list_id, key), contact_conversation_id(key), "",
                        created_ms=now_ms(), frame_type=FrameType.GROUP_LIST,
                        payload=sent.encoded,
                    )  # fmt: skip
        except StoreError as exc:
            raise UserError(exc.user_message) from None
        self._flush(keys)
        self.guests.list_changed(new)

    def _commit_message(self, old: gs.GroupState, sent: gs.Sent, *, text: str | None) -> None:
        """Store my message (history, my chain) and queue one copy per other LAN member."""
        new = sent.state
        keys = self._lan_members(old)
        stamp = _timestamp(sent.encoded)
        try:
            with self._core.profile.batch():
                self._store_state(old, new)
                if text is not None:
                    self._core.profile.add_message(
                        StoredMessage(
                            message_id=sent.message_id,
                            conversation_id=group_conversation_id(new.group_id),
                            direction=MessageDirection.OUT, sender=self._core.name,
                            timestamp_ms=stamp, body=text, delivery=DeliveryState.SENT,
                            sender_key=new.my_key,
                        )
                    )  # fmt: skip
                for key in keys:
                    self._core.profile.enqueue_outbox(
                        copy_id_of(sent.message_id, key), contact_conversation_id(key), "",
                        created_ms=stamp, frame_type=FrameType.GROUP_MESSAGE,
                        payload=sent.encoded,
                    )  # fmt: skip
        except StoreError as exc:
            raise UserError(exc.user_message) from None
        self._core.marks.index_later()
        self._flush(keys)
        self.guests.forward(new, sent.encoded, skip=None)

    def _store_state(self, old: gs.GroupState | None, new: gs.GroupState) -> None:
        """The rows that changed from ``old`` to ``new`` (inside the caller's batch)."""
        store = self._core.profile.groups
        if old is None or old.members.encoded != new.members.encoded:
            store.save(
                StoredGroup(
                    group_id=new.group_id, name=new.name, admin_key=new.admin_key,
                    epoch=new.epoch, member_list=new.members.encoded,
                    joined_epoch=new.joined_epoch, state=StoredState(new.status.value),
                    created_ms=now_ms(),
                )
            )  # fmt: skip
        elif old.status is not new.status:
            store.set_state(new.group_id, StoredState(new.status.value))
        if (old is None or old.own != new.own) and new.own.last_seq:
            store.set_chain(new.group_id, new.my_key, new.own.last_seq, new.own.last_hash)
        for key, chain in new.chains.items():
            if old is None or old.chains.get(key) != chain:
                store.set_chain(new.group_id, key, chain.last_seq, chain.last_hash)
        self._states[new.group_id] = new

    def _flush(self, keys: Sequence[bytes]) -> None:
        for key in keys:
            link = self._core.links.get(key)
            if link is not None and link.state == "open":
                self._core.flush_outbox_soon(link, contact_conversation_id(key))
            else:
                self._contacts.maybe_connect(key)

    def _enqueue(
        self, keys: Sequence[bytes], message_id: bytes, payload: bytes, frame: FrameType
    ) -> None:
        """One copy of a group frame per member in ``keys``'s 1:1 outbox (in a batch)."""
        for key in keys:
            self._core.profile.enqueue_outbox(
                copy_id_of(message_id, key), contact_conversation_id(key), "",
                created_ms=now_ms(), frame_type=frame, payload=payload,
            )  # fmt: skip

    def _send_list_now(
        self, link: PeerLink, state: gs.GroupState, key: bytes | None = None
    ) -> None:
        list_id = copy_id_of(message_id_of(state.members.encoded), key or link.peer_key)
        with contextlib.suppress(TransportError, ProtocolError):
            link.send(link.session.send_group_list(state.members.encoded, now_ms(),
                                                   message_id=list_id))  # fmt: skip

    def _receipt(self, link: PeerLink, copy_id: bytes) -> None:
        if link.state == "closed":
            return
        with contextlib.suppress(TransportError, ProtocolError):
            link.send(link.session.send_receipt(copy_id, now_ms()))

    # -- for group_guests.py (GroupsForGuests) -----------------------------------------

    def states(self) -> list[gs.GroupState]:
        return list(self._states.values())

    def state(self, group_id: bytes) -> gs.GroupState | None:
        return self._states.get(group_id)

    def resolve(self, query: str) -> gs.GroupState:
        return self._resolve(query)

    def commit_list(
        self, old: gs.GroupState | None, sent: gs.Sent, also: Sequence[bytes] = ()
    ) -> None:
        self._commit_list(old, sent, also)

    def send_list_now(self, link: PeerLink, state: gs.GroupState, key: bytes | None = None) -> None:
        self._send_list_now(link, state, key)

    def changed(self, state: gs.GroupState, change: str, member: Member | None) -> GroupChanged:
        return self._changed(state, change, member)

    def view(self, state: gs.GroupState) -> GroupView:
        return self._view(state)

    # -- helpers ---------------------------------------------------------------------

    def _lan_members(self, state: gs.GroupState) -> list[bytes]:
        """The other LAN members: who gets a copy (guests: a later step, via their host)."""
        return [m.key for m in state.members.lan_members if m.key != state.my_key]

    def _open(self, key: bytes) -> bool:
        link = self._core.links.get(key)
        return link is not None and link.state == "open" and link.session.groups

    def _resolve(self, query: str) -> gs.GroupState:
        from p2pchat.node.peer_match import resolve_peer

        states = list(self._states.values())
        if not states:
            raise UserError("you are in no groups yet (`p2pchat group create NAME MEMBER...`)")
        return resolve_peer(
            query, states, name_of=lambda s: s.name,
            key_of=lambda s: group_conversation_id(s.group_id),
            kind="group", none_yet="no group matches {query}",
            pick_one="use group:<id> (`p2pchat groups` lists the ids)",
        )  # fmt: skip

    def _changed(self, state: gs.GroupState, change: str, member: Member | None) -> GroupChanged:
        return GroupChanged(
            group_id=state.group_id.hex(), group_name=state.name, change=change,
            member_id=peer_id(member.key) if member else None,
            member_name=member.name if member else None, epoch=state.epoch,
        )  # fmt: skip

    def _view(self, state: gs.GroupState) -> GroupView:
        profile = self._core.profile
        members = []
        clashes = self._name_clashes(state.members.members)
        for m in state.members.members:
            contact = profile.get_contact(m.key)
            me = m.key == state.my_key
            link = self._core.links.get(m.key) if m.kind is MemberKind.LAN and not me else None
            members.append(
                GroupMemberView(
                    peer_id=peer_id(m.key), name=m.name,
                    kind="lan" if m.kind is MemberKind.LAN else "guest",
                    admin=m.key == state.admin_key, me=me,
                    online=me or self._open(m.key) or self.guests.is_open(m.key),
                    contact=bool(contact and contact.trust is TrustState.ACCEPTED),
                    needs_upgrade=bool(link and link.state == "open" and not link.session.groups),
                    not_contact=clashes.get(m.key),
                    kept=self.guests.is_kept(m.key),
                )
            )  # fmt: skip
        return GroupView(
            group_id=state.group_id.hex(), name=state.name,
            conversation=group_conversation_id(state.group_id), epoch=state.epoch,
            admin_id=peer_id(state.admin_key), am_admin=state.is_admin,
            state=state.status.value, members=members,
        )  # fmt: skip

    def _name_clashes(self, members: Sequence[Member]) -> dict[bytes, str]:
        """Members named as one of my accepted contacts is, under another key: key → the
        contact's name (a list's names are the admin's to choose; keys are what count)."""
        me = self._core.identity.public_key
        by_name: dict[str, list[tuple[bytes, str]]] = {}
        for c in self._core.profile.contacts():
            if c.trust is TrustState.ACCEPTED:
                by_name.setdefault(c.display_name.casefold(), []).append(
                    (c.public_key, c.display_name)
                )
        clashes: dict[bytes, str] = {}
        for m in members:
            named = by_name.get(m.name.casefold(), [])
            if m.key != me and named and all(key != m.key for key, _ in named):
                clashes[m.key] = named[0][1]
        return clashes


def _sort_key(state: gs.GroupState) -> tuple[str, bytes]:
    return state.name.casefold(), state.group_id


def _timestamp(encoded: bytes) -> int:
    from p2pchat.protocol.group_messages import decode_group_message

    return decode_group_message(encoded).timestamp_ms


def _max_groups() -> int:
    from p2pchat.store.groups import MAX_GROUPS

    return MAX_GROUPS
