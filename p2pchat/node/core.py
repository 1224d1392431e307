"""The running node's core: its life, its tasks, events out, the links, the store.

It owns the tasks and the profile; front ends talk to it through ``NodeApi``
(the control socket) and see what happens through ``subscribe()``. The work is
done by the modules around it, each given the core as ``NodeCore``
(core_protocol.py): ``contacts`` (discovery, LAN signaling, contact sessions),
``guests`` (invites, browser guests), ``sending`` (``send``). Whatever a session
tells us (a contact's or a guest's) comes back through ``on_session_event``: the
core stores incoming messages, flushes the outbox when a session opens, and
passes receipts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from p2pchat.control.api import (
    ContactView,
    FileView,
    GroupView,
    GuestView,
    InviteView,
    KnownGuestView,
    PeerView,
    SafetyView,
    SentFilesView,
    SentView,
    ServerView,
    StatusView,
)
from p2pchat.crypto.envelope import ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.discovery.mdns import LanDiscovery
from p2pchat.discovery.txt import PeerAdvert
from p2pchat.errors import UserError
from p2pchat.node.config import NodeConfig
from p2pchat.node.contacts import LanContacts
from p2pchat.node.core_protocol import ConversationRef
from p2pchat.node.delivery_marks import DeliveryMarks
from p2pchat.node.events import (
    EventsDropped,
    MessageEvent,
    NodeEvent,
    ReceiptEvent,
    SessionChanged,
)
from p2pchat.node.files import LanFiles, takes_file_offer
from p2pchat.node.group_files import GroupFiles
from p2pchat.node.groups import LanGroups
from p2pchat.node.guests import GuestHost
from p2pchat.node.invite_server import check_server_token, parse_server_url
from p2pchat.node.links import PeerLink, now_ms
from p2pchat.node.sending import Sending
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import (
    Event,
    FileFrameReceived,
    GroupFrameReceived,
    MessageReceived,
    ReceiptReceived,
    SessionOpened,
)
from p2pchat.protocol.frames import FrameType
from p2pchat.store import Profile
from p2pchat.store.checkpointer import BackgroundCheckpointer
from p2pchat.store.conversation_id import GROUP_PREFIX
from p2pchat.store.records import TEXT_FRAME_TYPE, Contact, DeliveryState, StoredMessage
from p2pchat.store.records import Direction as MessageDirection
from p2pchat.transport.errors import TransportError
from p2pchat.transport.lan_signaling import LanSignalingServer
from signaling.open_files import raise_open_file_limit

logger = logging.getLogger(__name__)

MAX_SUBSCRIBER_BACKLOG = 10_000


class Node:
    def __init__(self, profile: Profile, config: NodeConfig) -> None:
        self.profile = profile
        self.config = config
        self.identity = Identity(profile.identity.seed)
        self.name = profile.identity.name
        self.links: dict[bytes, PeerLink] = {}
        self.marks = DeliveryMarks(profile)
        self.stopping = False
        self._incoming: list[tuple[PeerLink, MessageReceived, ConversationRef]] = []
        self._subscribers: set[asyncio.Queue[NodeEvent | None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.contacts = LanContacts(self)
        self._signaling = LanSignalingServer(
            self.contacts.async_handle_envelope, hosts=_bind_hosts(config), port=config.port
        )
        self._discovery: LanDiscovery | None = None
        self._checkpointer: BackgroundCheckpointer | None = None
        self.guests = GuestHost(self)
        self.groups = LanGroups(self, self.contacts)
        self.guests.groups = self.groups.guests
        self.sending = Sending(self, self.contacts, self.guests, self.groups)
        self.files = LanFiles(self, self.contacts, config.downloads)
        self.guests.files = self.files  # a 1:1 guest's files run there, keyed by its id
        self.files.guest_link = self.guests.link_by_key
        self.files.guest_name = self.guests.name_by_key
        self.group_files = GroupFiles(self.groups, self.files)  # files to a group's members

    # -- life ----------------------------------------------------------------------

    async def async_start(self) -> None:
        # Before any server starts: their connection caps are sized from the limit.
        raise_open_file_limit()
        await self._signaling.async_start()
        self.groups.guests.drop_stale_guests()  # their sessions ended with our last run
        self.guests.fail_files()  # so did their transfers
        await self.files.async_start()  # partial files of ended transfers go
        await self.files.async_start_direct()
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
            self.contacts.on_discovery_event,
            interfaces=self.config.interfaces,
            peer_id_of=None,
        )
        await self._discovery.async_start()

    async def async_stop(self) -> None:
        self.stopping = True
        self.contacts.stop()
        self.files.stop()
        await self.guests.async_stop()
        for link in list(self.links.values()):
            link.close("node stopping")
        await self.files.async_stop()
        for task in list(self._tasks):
            task.cancel()
        if self._discovery is not None:
            await self._discovery.async_stop()
        await self._signaling.async_stop()
        self.marks.flush()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        for queue in self._subscribers:
            if queue.full():  # room for the end-of-stream mark; the reader is gone anyway
                queue.get_nowait()
            queue.put_nowait(None)

    @property
    def port(self) -> int:
        return self._signaling.port

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    # -- NodeApi: the core's own, then the modules' --------------------------------

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
        return await self.contacts.async_peers()

    async def async_contacts(self) -> list[ContactView]:
        return await self.contacts.async_contacts()

    async def async_add_contact(self, peer: str) -> ContactView:
        return await self.contacts.async_add_contact(peer)

    async def async_requests(self) -> list[ContactView]:
        return await self.contacts.async_requests()

    async def async_accept(self, peer: str) -> ContactView:
        return await self.contacts.async_accept(peer)

    async def async_reject(self, peer: str) -> ContactView:
        return await self.contacts.async_reject(peer)

    async def async_verify(self, peer: str, *, mark_verified: bool) -> SafetyView:
        return await self.contacts.async_verify(peer, mark_verified=mark_verified)

    async def async_send(self, peer: str, text: str) -> SentView:
        return await self.sending.async_send(peer, text)

    async def async_send_many(self, sends: Sequence[tuple[str, str]]) -> list[SentView | UserError]:
        return await self.sending.async_send_many(sends)

    async def async_groups(self) -> list[GroupView]:
        return await self.groups.async_groups()

    async def async_group_create(self, name: str, members: Sequence[str]) -> GroupView:
        return await self.groups.async_create(name, members)

    async def async_group_add(self, group: str, member: str) -> GroupView:
        return await self.groups.async_add(group, member)

    async def async_group_remove(self, group: str, member: str) -> GroupView:
        return await self.groups.async_remove(group, member)

    async def async_group_keep(self, group: str, guest: str) -> GroupView:
        return await self.groups.guests.async_keep(group, guest)

    async def async_group_leave(self, group: str) -> GroupView:
        return await self.groups.async_leave(group)

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
        password: bytes | None = None,
    ) -> InviteView:
        group_id = self.groups.guests.invite_group(group) if group else None
        settings = self.profile.settings
        if server is None and settings.invite_server is not None:  # the saved default
            server, server_token = settings.invite_server, settings.invite_server_token
        url = parse_server_url(server) if server is not None else None
        token = check_server_token(server_token) if server_token is not None else None
        return await self.guests.async_invite(
            expires_s=expires_s, uses=uses, label=label, approve=approve, group_id=group_id,
            server=url, server_token=token,
            password=password,
        )  # fmt: skip

    async def async_server(self) -> ServerView:
        settings = self.profile.settings
        url = settings.invite_server
        state = self.guests.server_state(url) if url is not None else None
        return ServerView(url, settings.invite_server_token is not None, state)

    async def async_server_set(self, url: str, token: str | None) -> ServerView:
        base = parse_server_url(url).base
        self.profile.set_invite_server(base, check_server_token(token) if token else None)
        return await self.async_server()

    async def async_server_clear(self) -> ServerView:
        self.profile.set_invite_server(None, None)
        return await self.async_server()

    async def async_invites(self) -> list[InviteView]:
        return self.guests.invites()

    async def async_revoke(self, invite_id: str) -> InviteView:
        return self.guests.revoke(invite_id)

    async def async_admit(self, guest: str, *, admit: bool) -> GuestView:
        return await self.guests.async_admit_named(guest, admit=admit)

    async def async_guests(self) -> list[KnownGuestView]:
        return self.guests.known_guests()

    async def async_send_file(self, peer: str, path: str) -> FileView:
        if peer.strip().lower().startswith("guest:"):
            return await self.guests.async_send_file(peer, path)
        return await self.files.async_send_file(peer, path)

    async def async_send_files(self, peer: str, path: str) -> SentFilesView:
        """``send-file PEER|GROUP PATH``: a group's members each get the file; anyone
        else as ``async_send_file`` (whose errors a name that is no group keeps)."""
        try:
            ref = self.sending.resolve_target(peer)
        except UserError:
            wanted = peer.strip().casefold()
            if any(wanted in (name.casefold(), cid) for name, _, cid in self.groups.targets()):
                raise  # it names a group, and something else too: said as `send` says it
            ref = None
        if ref is not None and ref.conversation_id.startswith(GROUP_PREFIX):
            return await self.group_files.async_send(ref.conversation_id, path)
        return SentFilesView([await self.async_send_file(peer, path)])

    async def async_files(self) -> list[FileView]:
        return await self.files.async_files()

    async def async_file_accept(self, transfer: str, to: str | None = None) -> FileView:
        return await self.files.async_accept(transfer, to)

    async def async_file_cancel(self, transfer: str) -> FileView:
        return await self.files.async_cancel(transfer)

    # -- events out ----------------------------------------------------------------

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
                for warning in self.contacts.open_key_warnings():
                    queue.put_nowait(warning)

    def _put_snapshot(self, queue: asyncio.Queue[NodeEvent | None]) -> None:
        for event in self.contacts.snapshot():
            queue.put_nowait(event)

    # -- sessions: what they tell us -----------------------------------------------

    def on_session_event(self, link: PeerLink, event: Event, ref: ConversationRef) -> None:
        """What a session (a contact's or a guest's) tells us, stored and passed on."""
        if isinstance(event, SessionOpened):
            self.emit(SessionChanged(ref.peer_label, ref.name, "open"))
            self.groups.on_session_open(link)  # membership first, then the outbox
            self.files.on_session_open(link, ref)  # resumes: ACCEPT(verified), offers again
            self.spawn(self._async_flush_outbox(link, ref.conversation_id))
        elif isinstance(event, GroupFrameReceived):
            if link.state != "closed":
                self.groups.on_frame(link, event, ref)
        elif isinstance(event, FileFrameReceived):
            if link.state != "closed":
                self.files.on_frame(link, event, ref)
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
        elif isinstance(event, ReceiptReceived):
            frame = self._receipt(link, event, ref)
            if frame is not None and frame[0] == TEXT_FRAME_TYPE:
                self.emit(ReceiptEvent(ref.conversation_id, ref.peer_label, event.message_id.hex()))
            elif frame is not None:  # a member's copy of a group frame: the group's to count
                self.groups.copy_delivered(link, frame[0], frame[1])

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
            self.marks.index_later()
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

    def _receipt(
        self, link: PeerLink, event: ReceiptReceived, ref: ConversationRef
    ) -> tuple[int, bytes | None] | None:
        link.sent_ids.discard(event.message_id)
        return self.marks.take_receipt(event.message_id, ref.conversation_id)

    def flush_outbox_soon(self, link: PeerLink, conversation: str) -> None:
        self.spawn(self._async_flush_outbox(link, conversation))

    async def _async_flush_outbox(self, link: PeerLink, conversation: str) -> None:
        async with link.send_lock:
            self.marks.flush()  # receipts still queued must not send their messages again
            for entry in self.profile.pending_outbox(conversation):
                if link.state != "open":
                    return
                if entry.message_id in link.sent_ids:
                    continue  # this session had it already (a flush asked for again)
                try:
                    if entry.frame_type == FrameType.TEXT:
                        _, data = link.session.send_text(
                            entry.body, entry.created_ms, message_id=entry.message_id
                        )
                    elif entry.frame_type == FrameType.FILE_OFFER:
                        if not link.session.files or entry.payload is None:
                            continue  # waits for a peer that announced files
                        if not takes_file_offer(link.session.peer_info, entry.payload):
                            continue  # a group's file: waits for a peer that takes those
                        data = link.session.send_file_offer(
                            entry.payload, entry.created_ms, message_id=entry.message_id
                        )
                    elif not link.session.groups or entry.payload is None:
                        continue  # waits for a peer that announced groups (a newer p2pchat)
                    elif entry.frame_type == FrameType.GROUP_MESSAGE:
                        data = link.session.send_group_message(
                            entry.payload, entry.created_ms, message_id=entry.message_id
                        )
                    elif entry.frame_type == FrameType.GROUP_LIST:
                        data = link.session.send_group_list(
                            entry.payload, entry.created_ms, message_id=entry.message_id
                        )
                    else:
                        continue
                    link.send(data)
                    link.sent_ids.add(entry.message_id)
                    await link.async_drain()
                except (TransportError, ProtocolError):
                    return
                self.marks.mark_sent(entry.message_id)

    # -- for tests that reach into the LAN side (tests/integration/test_node_bounds.py)

    async def _async_handle_envelope(self, data: bytes, remote: str) -> bytes | None:
        return await self.contacts.async_handle_envelope(data, remote)

    @property
    def _stranger_guard(self) -> ReplayGuard:
        return self.contacts.stranger_guard

    @property
    def _contact_guards(self) -> dict[bytes, ReplayGuard]:
        return self.contacts.contact_guards

    def _warn_key_change(
        self, contact: Contact, offending_key: bytes, address: str, source: str
    ) -> None:
        self.contacts.warn_key_change(contact, offending_key, address, source)


def _bind_hosts(config: NodeConfig) -> list[str]:
    if not config.interfaces:
        return []
    from p2pchat.discovery.interfaces import interface_addresses

    # IPv4 only: a link-local IPv6 bind needs a scope per address; peers on
    # the chosen interface reach us over IPv4 (documented in docs/architecture.md).
    return interface_addresses(config.interfaces, "v4").advertised


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background task's exception is a bug: logged when it happens, not at GC."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=exc)
