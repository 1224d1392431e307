"""``send``: who a PEER argument means, the message stored, then sent if a session is up.

A message is stored (outbox and history, one commit) before anything goes out:
whatever happens next, nothing is lost; one that cannot be stored is not sent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from p2pchat.control.api import SentView
from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node.contacts import LanContacts
from p2pchat.node.core_protocol import ConversationRef, NodeCore
from p2pchat.node.events import MessageEvent
from p2pchat.node.groups import LanGroups
from p2pchat.node.guests import GuestHost
from p2pchat.node.links import now_ms
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.frames import MAX_BODY_BYTES
from p2pchat.store import StoreError, contact_conversation_id, contact_key_of
from p2pchat.store.conversation_id import GROUP_PREFIX
from p2pchat.store.records import DeliveryState, StoredMessage, TrustState
from p2pchat.store.records import Direction as MessageDirection
from p2pchat.transport.errors import TransportError


@dataclass(frozen=True)
class _Target:
    """Someone ``send`` can write to: a contact, a guest with its state, or a group."""

    ref: ConversationRef
    guest_state: str | None = None  # None: a contact (or a group)
    group: bool = False

    def kind(self) -> str:
        if self.group:
            return "group"
        return "contact" if self.guest_state is None else "guest"

    def is_past(self) -> bool:
        return self.guest_state == "past"

    def describe(self) -> str:
        from p2pchat.node.peer_match import printable

        who = f"{printable(self.ref.name)} ({printable(self.ref.peer_label)}"
        if self.guest_state is None or self.group:
            return who + ")"
        return f"{who}, {self.guest_state})"


class _StagedSend:
    """A message ``send`` resolved, on its way to the store (and then to the peer)."""

    def __init__(self, ref: ConversationRef, text: str) -> None:
        self.ref = ref
        self.text = text
        self.message_id, self.stamp = os.urandom(16), now_ms()
        self.error: UserError | None = UserError("not stored")  # until it is


class Sending:
    def __init__(
        self, core: NodeCore, contacts: LanContacts, guests: GuestHost, groups: LanGroups
    ) -> None:
        self._core = core
        self._contacts = contacts
        self._guests = guests
        self._groups = groups

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
        to_store = [
            item
            for item in staged
            if isinstance(item, _StagedSend)
            and not item.ref.conversation_id.startswith(GROUP_PREFIX)
        ]
        if not self._store_sends(to_store):
            # One of them failed (e.g. its conversation's outbox is full): each on its own,
            # so that only that one fails.
            for item in to_store:
                self._store_sends([item])
        if any(item.error is None for item in to_store):
            self._core.marks.index_later()
        return [
            item if isinstance(item, UserError) else await self._send_one(item) for item in staged
        ]

    async def _send_one(self, item: _StagedSend) -> SentView | UserError:
        if not item.ref.conversation_id.startswith(GROUP_PREFIX):
            return await self._send_stored(item)
        try:  # a group message: stored (history, my chain, one copy per member) and fanned out
            return await self._groups.async_send(item.ref.conversation_id, item.text)
        except UserError as exc:
            return exc

    def _send_targets(self) -> list[_Target]:
        # Contacts, and this run's guests: a live one is who "Dana" means, not the
        # Danas who left (past ones are still reachable by their guest:<id> label).
        targets = [
            _Target(
                ConversationRef(
                    contact_conversation_id(c.public_key), peer_id(c.public_key), c.display_name
                )
            )
            for c in self._core.profile.contacts()
            if c.trust is TrustState.ACCEPTED
        ]
        targets += [
            _Target(ConversationRef(cid, label, name), guest_state=state)
            for name, label, cid, state in self._guests.conversations()
        ]
        targets += [
            _Target(ConversationRef(cid, label, name), group=True)
            for name, label, cid in self._groups.targets()
        ]
        return targets

    def resolve_target(self, peer: str) -> ConversationRef:
        """The contact, guest or group ``peer`` names, as ``send`` resolves it."""
        return self._resolve(peer, self._send_targets())

    def _resolve_send(self, peer: str, text: str, targets: list[_Target]) -> ConversationRef:
        if not text:
            raise UserError("the message is empty")
        if len(text.encode("utf-8")) > MAX_BODY_BYTES:
            raise UserError(f"the message is over {MAX_BODY_BYTES} bytes: split it")
        return self._resolve(peer, targets)

    def _resolve(self, peer: str, targets: list[_Target]) -> ConversationRef:
        from p2pchat.node.peer_match import resolve_peer

        return resolve_peer(
            peer, targets, name_of=lambda t: t.ref.name, key_of=lambda t: t.ref.peer_label,
            kind="contact, guest or group", kind_of=_Target.kind, past=_Target.is_past,
            describe=_Target.describe,
            pick_one="use more of the peer id, a guest's guest:ID (`p2pchat guests` lists them)"
            " or a group's group:ID (`p2pchat groups`)",
            none_yet="no contact or guest matches {query}: no contacts yet (`p2pchat add PEER`)"
            " and no guests (`p2pchat invite`)",
        ).ref  # fmt: skip

    def _store_sends(self, items: Sequence[_StagedSend]) -> bool:
        """Store ``items`` in one transaction; False (each item told why) if it failed."""
        if not items:
            return True
        profile = self._core.profile
        try:
            with profile.batch():
                for item in items:
                    profile.enqueue_outbox(
                        item.message_id,
                        item.ref.conversation_id,
                        item.text,
                        created_ms=item.stamp,
                    )
                    profile.add_message(
                        StoredMessage(
                            message_id=item.message_id,
                            conversation_id=item.ref.conversation_id,
                            direction=MessageDirection.OUT,
                            sender=self._core.name,
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
        self._core.emit(
            MessageEvent(
                conversation=ref.conversation_id, peer_id=ref.peer_label, sender=self._core.name,
                direction="out", message_id=message_id.hex(), timestamp_ms=stamp, text=text,
            )
        )  # fmt: skip
        key = contact_key_of(ref.conversation_id)
        link = self._core.links.get(key) if key else self._guests.link_for(ref.peer_label)
        if link is None or link.state != "open":
            if key:
                self._contacts.maybe_connect(key)
            return SentView(ref.conversation_id, message_id.hex(), "queued")
        async with link.send_lock:
            try:
                link.send(link.session.send_text(text, stamp, message_id=message_id)[1])
                link.sent_ids.add(message_id)
            except (TransportError, ProtocolError):
                return SentView(ref.conversation_id, message_id.hex(), "queued")
        self._core.marks.mark_sent(message_id)
        return SentView(ref.conversation_id, message_id.hex(), "sent")
