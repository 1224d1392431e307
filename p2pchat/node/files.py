"""File transfers with LAN contacts: offers through the outbox, blocks on the files channel.

Around the core like groups.py. The wire and the per-transfer state are sans-I/O
(protocol/file_wire.py, file_transfer.py); the disk side is file_io.py, called in a
thread. What is in the store (``Profile.files``) is what survives a restart:

* Sender: ``send-file`` hashes the file, stores the transfer, its history row and
  the offer's outbox entry (frame 8) in one commit. The receiver's ACCEPT(first)
  starts (or resumes) the blocks from ``first``, at most WINDOW_BLOCKS unacknowledged;
  each ACK moves the window; DONE ends it. At each session open the sender repeats
  the offer of every transfer the receiver has already had (not through the outbox):
  the receiver answers one it holds already with where it stands (DONE, CANCEL...),
  so an answer lost with a link is asked for again.
* Receiver: an offer is stored and receipted, then accepted at once (an accepted
  contact, small enough, room for it) or left for ``files accept``. Blocks are
  written and fsync'ed before their ACK; at each session open it truncates the
  partial file to what was verified and sends ACCEPT(verified): the resume point.
  The last block → the whole file rehashed → moved to its final name → DONE.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import mimetypes
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from p2pchat.control.api import FileView
from p2pchat.crypto.encoding import b64url_encode
from p2pchat.crypto.identity import peer_id as contact_peer_id
from p2pchat.errors import UserError
from p2pchat.node import file_io
from p2pchat.node.contacts import LanContacts
from p2pchat.node.core_protocol import ConversationRef, NodeCore
from p2pchat.node.events import FileCancelled, FileDone, FileFailed, FileOffered, FileProgress
from p2pchat.node.links import PeerLink, now_ms
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import FileFrameReceived
from p2pchat.protocol.file_names import sanitize_file_name
from p2pchat.protocol.file_transfer import BlockReady, IncomingTransfer, OutgoingTransfer
from p2pchat.protocol.file_wire import (
    BLOCK_BYTES,
    GROUP_OFFER_VERSION,
    MAX_FILE_BYTES,
    MAX_NAME_BYTES,
    MAX_REASON_BYTES,
    ControlKind,
    DirectPath,
    FileControl,
    FileOffer,
    FileWireError,
    decode_control,
    decode_offer,
)
from p2pchat.protocol.frames import FrameType
from p2pchat.store import StoreError, contact_conversation_id
from p2pchat.store.conversation_id import group_conversation_id, group_id_of
from p2pchat.store.records import (
    DeliveryState,
    Direction,
    MessageKind,
    StoredMessage,
    StoredTransfer,
    TransferState,
    TrustState,
)
from p2pchat.transport.direct_files import (
    DirectFilesListener,
    DirectFilesStream,
    async_open_direct,
)
from p2pchat.transport.errors import TransportError

logger = logging.getLogger(__name__)

ACTIVE_PER_PEER = 4  # transfers moving at once with one peer, each way; the rest wait
PROGRESS_EVERY_S = 0.25  # FileProgress at most this often per transfer
RATE_WINDOW_S = 5.0  # the rate is measured over this much of the recent past
LIST_LIMIT = 200  # `files` shows at most this many (newest first)
MIN_ID_PREFIX = 4
_NOT_HASHED = bytes(32)  # an outgoing transfer's hash until send-file has read the file
_IN_PROGRESS = (TransferState.ACCEPTED, TransferState.RECEIVING)
_PATH_NAMES = ("direct", "datachannel", "relay")  # what carried chunks: path_used
# The handshake info entry of a node that takes file chunks over a direct TCP path
# (FILE_CONTROL DIRECT, transport/direct_files.py): only such a peer is offered one.
DIRECT_CAPABILITY = ("fdirect", "1")
DIRECT_OPEN_TIMEOUT_S = 2.0  # the sender's connect + token; past it: the data channel
# The handshake info entry of a node that takes a group's file offer (version 2): to
# any other, such an offer waits in the outbox ("needs a newer p2pchat").
GROUP_FILES_CAPABILITY = ("gfiles", "1")
# No ACK for this long with the window sent over the direct stream (or a write to it
# blocked as long): the stream is taken as dead. A blackholed TCP stream never errors
# (TCP retries for ~15 min) while the session, on its own path, stays up.
DIRECT_STALL_S = 10.0
# A relay (a signaling server between a guest and the node) can alter a chunk but not
# forge one: a chunk that does not authenticate there, or whose cleartext header is
# wrong, is the relay's doing, and the transfer resumes from the last verified block
# (as after a broken direct stream). This many damaged chunks with no block verified
# in between (a burst within one window counts each), and it fails instead: the relay
# keeps damaging it.
RELAY_DAMAGE_RESUMES = 32
_RELAY_DAMAGE_CODES = frozenset(
    {"file-bad-ciphertext", "file-bad-chunk", "file-out-of-window", "file-malformed"}
)


class LanFiles:
    def __init__(self, core: NodeCore, contacts: LanContacts, downloads: Path | None) -> None:
        self._core = core
        self._contacts = contacts
        self._downloads = downloads  # --downloads; None: the setting, else the platform's
        self._senders: dict[bytes, _Sender] = {}  # transfer id → this run's sending side
        self._receivers: dict[bytes, _Receiver] = {}  # transfer id → receiving, this session
        self._slots: dict[bytes, asyncio.Semaphore] = {}  # peer key → ACTIVE_PER_PEER
        self._sent_total: dict[bytes, int] = {}  # transfer id → bytes put on the wire
        self._meters: dict[bytes, _Meter] = {}
        # A browser guest's live session and name by its 16-byte id (node/guests.py).
        self.guest_link: Callable[[bytes], PeerLink | None] = lambda key: None
        self.guest_name: Callable[[bytes], str | None] = lambda key: None
        # Where a LAN peer is, as its verified mDNS advert says: a DIRECT must name one of
        # these, so a contact cannot point our node at any other host and port.
        self.peer_addresses: Callable[[bytes], tuple[str, ...]] = self._advertised_addresses
        # A group's file offer (node/group_files.py): (sender key, group id) → the
        # member's name on my list, or GroupOfferRefused; and a group's name for views.
        self.check_group_offer: Callable[[bytes, bytes], str] = _no_groups
        self.group_name: Callable[[bytes], str | None] = lambda group_id: None
        # transfer id → its one finishing task (whole-file hash, final name, DONE/FAIL):
        # a session opened meanwhile waits for it instead of starting a second one.
        self._finishing: dict[bytes, asyncio.Task[None]] = {}
        self._hashing: dict[bytes, _Hashing] = {}  # send-file: read before it is offered
        # One room check + accept at a time: each counts the room the others took.
        self._accepting = asyncio.Lock()
        # The direct TCP path for chunks from native LAN peers (None: not listening).
        self._listener: DirectFilesListener | None = None
        # transfer id → bytes by path: [direct, data channel, relay] (_PATH_NAMES)
        self._path_bytes: dict[bytes, list[int]] = {}
        self.direct_stall_s = DIRECT_STALL_S

    # -- NodeApi ---------------------------------------------------------------------

    async def async_send_file(self, peer: str, path: str) -> FileView:
        """Answers at once ('hashing'): the transfer and its history row are stored,
        the hash (minutes for a huge file) runs in a task with progress events, then
        the offer is queued. Until then its hash is zeros and nothing is offered."""
        contact = self._contacts.resolve_accepted(peer)
        conversation = contact_conversation_id(contact.public_key)
        return await self.async_send_file_to(conversation, contact.public_key, path)

    async def async_send_file_to(self, conversation: str, peer_key: bytes, path: str) -> FileView:
        """``send-file`` to a resolved peer: a contact's key, or a guest's id."""
        (transfer,) = await _async_new_transfers(path, conversation, [peer_key])
        try:
            self._core.profile.files.add(transfer, sender=self._core.name)
        except StoreError as exc:
            raise UserError(str(exc.user_message)) from None
        self._core.marks.index_later()
        job = self._hashing[transfer.transfer_id] = _Hashing([transfer])
        self._core.spawn(self._async_hash_and_offer(job))
        return self._view(transfer)

    async def async_send_group_file(
        self, group_id: bytes, members: list[bytes], path: str
    ) -> list[FileView]:
        """A file to a group: one history row in the group's conversation, and one
        transfer per member in ``members`` (its own id and key, offered through that
        member's 1:1 outbox), all stored in one commit: past the unfinished-transfers
        bound with any member, nothing is. The file is read and hashed once."""
        conversation = group_conversation_id(group_id)
        transfers = await _async_new_transfers(path, conversation, members)
        name, stamp_ms = transfers[0].name, transfers[0].created_ms
        profile = self._core.profile
        me = self._core.identity.public_key
        try:
            with profile.batch():
                profile.add_message(
                    StoredMessage(
                        message_id=os.urandom(16), conversation_id=conversation,
                        direction=Direction.OUT, sender=self._core.name, timestamp_ms=stamp_ms,
                        body=name, delivery=DeliveryState.SENT, kind=MessageKind.FILE,
                        sender_key=me,
                    )
                )  # fmt: skip
                for transfer in transfers:  # no history row each: the group's is above
                    profile.files.add(transfer, sender=self._core.name, history=False)
        except StoreError as exc:
            raise UserError(str(exc.user_message)) from None
        self._core.marks.index_later()
        job = _Hashing(transfers)
        for transfer in transfers:
            self._hashing[transfer.transfer_id] = job
        self._core.spawn(self._async_hash_and_offer(job))
        return [self._view(t) for t in transfers]

    async def _async_hash_and_offer(self, job: _Hashing) -> None:
        transfer = job.transfers[0]  # a group's: every transfer is of the same file
        source, size = transfer.source_path, transfer.size
        assert source is not None
        loop = asyncio.get_running_loop()

        def progress(done: int) -> None:  # in the hashing thread
            if job.stopped:  # cancelled: the rest of the file is not read
                raise file_io.FileIoError("cancelled")
            loop.call_soon_threadsafe(self._hash_progress, job, done)

        try:
            file_hash = await asyncio.to_thread(
                file_io.hash_file, source, length=size, progress=progress
            )
            changed = await asyncio.to_thread(file_io.source_stamp, source) != transfer.source_stamp
        except OSError as exc:
            reason = f"cannot read {source}: {exc.strerror or exc}"
        else:
            # Its hash may be of bytes no longer there: offer nothing.
            reason = f"{source} changed while it was read: send it again" if changed else ""
        finally:
            for each in job.transfers:
                self._hashing.pop(each.transfer_id, None)
        live = [t for t in job.transfers if not self._ended(t.transfer_id)]  # not cancelled
        if reason:
            for each in live:
                self._end(each, TransferState.FAILED, reason)
                self._core.emit(self._failed(each, reason))
            return
        profile = self._core.profile
        offered: list[StoredTransfer] = []
        try:
            with profile.batch():  # its hash and the offers' outbox entries: one commit
                for each in live:
                    if not profile.files.set_file_hash(each.transfer_id, file_hash,
                                                       now_ms=now_ms()):  # fmt: skip
                        continue
                    profile.enqueue_outbox(
                        each.transfer_id, _outbox_conversation(each), "",
                        created_ms=each.created_ms, frame_type=FrameType.FILE_OFFER,
                        payload=_offer_of(each, file_hash).encode(),
                    )  # fmt: skip
                    offered.append(each)
        except StoreError as exc:
            for each in live:
                self._end(each, TransferState.FAILED, str(exc.user_message))
                self._core.emit(self._failed(each, str(exc.user_message)))
            return
        for each in offered:
            self._emit_progress(each, "queued", 0, self._meter(each.transfer_id),
                                time.monotonic())  # fmt: skip
            link = self._link(each.peer_key)
            if link is not None and link.state == "open":
                self._core.flush_outbox_soon(link, _outbox_conversation(each))
            elif group_id_of(each.conversation) is not None:
                self._contacts.maybe_connect(each.peer_key)  # a member: maybe not a contact

    def _hash_progress(self, job: _Hashing, done: int) -> None:
        now = time.monotonic()
        for transfer in job.transfers:
            tid = transfer.transfer_id
            if self._hashing.get(tid) is not job:
                continue
            meter = self._meter(tid)
            meter.add(now, done)
            if meter.due(now):
                self._emit_progress(transfer, "hashing", done, meter, now)

    async def async_files(self) -> list[FileView]:
        return [self._view(t) for t in self._core.profile.files.all(LIST_LIMIT)]

    async def async_accept(self, query: str, to: str | None) -> FileView:
        transfer = self._resolve(query)
        if transfer.direction is not Direction.IN or transfer.state is not TransferState.OFFERED:
            raise UserError(
                f"{_short(transfer)} is {transfer.state.value}: only a file offered to you"
                " and not accepted yet can be accepted"
            )
        downloads = Path(to) if to else self._downloads_dir()
        if not downloads.is_absolute():
            raise UserError(f"{to}: the directory must be an absolute path")
        async with self._accepting:
            await self._async_check_room(transfer, downloads)
            return await self._async_accept(transfer, downloads)

    async def async_cancel(self, query: str) -> FileView:
        transfer = self._resolve(query)
        if transfer.state.finished:
            raise UserError(f"{_short(transfer)} has ended already ({transfer.state.value})")
        declined = transfer.direction is Direction.IN and transfer.state is TransferState.OFFERED
        kind = ControlKind.DECLINE if declined else ControlKind.CANCEL
        self._send_control(transfer.peer_key, FileControl(kind, transfer.transfer_id, 0,
                                                           "cancelled by the user"))  # fmt: skip
        state = TransferState.DECLINED if declined else TransferState.CANCELLED
        self._end(transfer, state, "cancelled by you")
        self._core.emit(self._cancelled(transfer, "me", ""))
        return self._view(self._get(transfer.transfer_id) or transfer)

    # -- from the core ---------------------------------------------------------------

    def on_session_open(self, link: PeerLink, ref: ConversationRef) -> None:
        """Resume: ACCEPT(verified) for what we receive; the offer again for what we send."""
        if not link.session.files:
            return
        link.file_chunk_handler = self._on_chunk
        self._core.spawn(self._async_forget_direct(link))
        for receiver in self._receivers.values():  # an earlier session's: it records no more
            if receiver.link.peer_key == link.peer_key:
                receiver.stopped = True
        for transfer in self._core.profile.files.active_for(stored_key(link)):
            if transfer.direction is Direction.IN and transfer.state in _IN_PROGRESS:
                self._core.spawn(self._async_resume_receiving(link, ref, transfer))
            elif (
                transfer.direction is Direction.OUT
                and transfer.file_hash != _NOT_HASHED  # still being hashed: not offered yet
                and not self._core.profile.in_outbox(
                    transfer.transfer_id, _outbox_conversation(transfer)
                )
            ):
                self._send_offer(link, transfer)

    def on_frame(self, link: PeerLink, event: FileFrameReceived, ref: ConversationRef) -> None:
        if event.frame_type == FrameType.FILE_OFFER:
            self._on_offer(link, event, ref)
            return
        try:
            control = decode_control(event.payload)
        except FileWireError as exc:
            logger.warning("file control from %s refused (%s): %s", ref.peer_label, exc.code, exc)
            return
        transfer = self._get(control.transfer_id)
        if transfer is None or transfer.peer_key != stored_key(link):
            if control.kind is ControlKind.ACCEPT:  # a transfer we no longer know: stop it
                self._reply(link, ControlKind.CANCEL, control.transfer_id, "unknown transfer")
            return
        if transfer.direction is Direction.OUT:
            if control.kind is ControlKind.DIRECT:
                self._on_direct(link, transfer, control)
                return
            self._on_control_for_sender(link, ref, transfer, control)
        elif control.kind is ControlKind.CANCEL:
            self._on_cancel(transfer, control.reason)

    def fail_with_peer(self, peer_key: bytes, reason: str) -> None:
        """End every unfinished transfer with a peer that cannot come back (a guest
        whose page is gone with the node's run): failed, one line why."""
        for transfer in self._core.profile.files.active_for(peer_key):
            self._end(transfer, TransferState.FAILED, reason)
            self._core.emit(self._failed(transfer, reason))

    async def async_start(self) -> None:
        """Before any session: a send-file whose hashing a stop cut short fails; the
        partial files no unfinished transfer owns go (a cancel or failure whose unlink
        a crash cut short, a forgotten transfer)."""
        for transfer in self._core.profile.files.unfinished():
            if transfer.direction is Direction.OUT and transfer.file_hash == _NOT_HASHED:
                reason = "p2pchat stopped while it read the file: send it again"
                self._end(transfer, TransferState.FAILED, reason)
        keep: set[str] = set()
        directories = {self._downloads_dir() / file_io.PARTIAL_DIR_NAME}
        for transfer in self._core.profile.files.all(10_000):
            if transfer.partial_path is None:
                continue
            directories.add(transfer.partial_path.parent)
            if transfer.direction is Direction.IN and not transfer.state.finished:
                keep.add(transfer.partial_path.name)
        try:
            removed = await asyncio.to_thread(file_io.remove_orphan_partials, directories, keep)
        except OSError as exc:
            logger.warning("partial files not cleaned up: %s", exc)
            return
        if removed:
            logger.info("%d partial files of ended transfers deleted", removed)

    async def async_start_direct(self) -> None:
        """Listen for direct file streams on the node's LAN address; without one (no
        IPv4 address, the bind fails) every transfer uses the data channel."""
        from p2pchat.node.config import lan_address

        try:
            host = lan_address(self._core.config)
            self._listener = await DirectFilesListener.async_start(host)
        except (UserError, OSError, TransportError) as exc:
            logger.info("no direct path for files (the data channel carries them): %s", exc)

    async def async_stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.async_close()

    def stop(self) -> None:
        for job in self._hashing.values():
            job.stopped = True
        for sender in self._senders.values():
            if sender.task is not None:
                sender.task.cancel()
            sender.close_direct()

    # -- sending -----------------------------------------------------------------------

    def _send_offer(self, link: PeerLink, transfer: StoredTransfer) -> None:
        if transfer.file_key is None or transfer.file_hash == _NOT_HASHED:
            return
        offer = _offer_of(transfer, transfer.file_hash)
        with contextlib.suppress(TransportError, ProtocolError):
            link.send(
                link.session.send_file_offer(
                    offer.encode(), now_ms(), message_id=transfer.transfer_id
                )
            )

    def _on_control_for_sender(
        self, link: PeerLink, ref: ConversationRef, transfer: StoredTransfer, control: FileControl
    ) -> None:
        tid = transfer.transfer_id
        if transfer.state.finished:
            if control.kind is ControlKind.ACCEPT:  # cancelled here while they were away
                self._reply(link, ControlKind.CANCEL, tid, transfer.error or "cancelled")
            return
        sender = self._senders.get(tid)
        kind = control.kind
        if kind is ControlKind.ACCEPT:
            self._start_sending(link, ref, transfer, control.value)
        elif kind is ControlKind.ACK and sender is not None and sender.link is link:
            try:
                sender.transfer.on_ack(control.value)
            except FileWireError as exc:
                logger.warning("file ack from %s refused: %s", ref.peer_label, exc)
                return
            sender.wake.set()
            self._progress_out(sender)
        elif kind is ControlKind.DONE:
            self._finish_sending(transfer, sender, control.value)
        elif kind is ControlKind.FAIL:
            self._end(transfer, TransferState.FAILED, _one_line(control.reason) or "failed")
            self._core.emit(self._failed(transfer, f"{ref.name} could not save it: "
                                         + (_one_line(control.reason) or "no reason given")))  # fmt: skip
        elif kind in (ControlKind.CANCEL, ControlKind.DECLINE):
            self._on_cancel(transfer, control.reason, declined=kind is ControlKind.DECLINE)

    def _start_sending(
        self, link: PeerLink, ref: ConversationRef, transfer: StoredTransfer, first: int
    ) -> None:
        tid = transfer.transfer_id
        if self._absorbs(self._senders.get(tid), link, first):
            return
        old = self._senders.pop(tid, None)
        if old is not None:
            if old.task is not None:
                old.task.cancel()  # an earlier session's, or a repeated ACCEPT: from ``first``
            old.close_direct()  # a resume: the receiver offers a new path if it wants one
        if transfer.file_key is None or transfer.source_path is None:
            return
        if transfer.file_hash == _NOT_HASHED:
            return  # never offered: an ACCEPT for it is not the peer's to give
        outgoing = OutgoingTransfer(tid, transfer.file_key, transfer.size, transfer.block_bytes)
        if old is not None:  # ACKs of the earlier window may still come: they count
            outgoing.sent_high = old.transfer.sent_high
        try:
            outgoing.on_accept(first)
        except FileWireError as exc:
            logger.warning("file accept from %s refused: %s", ref.peer_label, exc)
            return
        sender = _Sender(transfer, outgoing, link, ref)
        self._senders[tid] = sender
        self._set_state(transfer, TransferState.ACCEPTED)  # SENDING once it has a slot
        self._meter(tid)
        sender.task = self._core.spawn(self._async_send_blocks(sender))

    def _absorbs(self, sender: _Sender | None, link: PeerLink, first: int) -> bool:
        """The receiver's ACCEPT for a direct stream the sender already restarted from
        (both ends see it end): on the same session and from at least that block, the
        ordered, reliable data channel already carries everything from there, so it is
        an ACK. Restarting again would send the window twice for one interruption."""
        if (
            sender is None or sender.link is not link or sender.restarted_from is None
            or first < sender.restarted_from or sender.task is None or sender.task.done()
        ):  # fmt: skip
            return False
        try:
            sender.transfer.on_ack(first)
        except FileWireError:
            return False  # past what it sent: a restart as before
        sender.restarted_from = None  # one ACCEPT per loss
        sender.wake.set()
        self._progress_out(sender)
        return True

    async def _async_send_blocks(self, sender: _Sender) -> None:
        slots = self._slots.setdefault(sender.link.peer_key, asyncio.Semaphore(ACTIVE_PER_PEER))
        stored = sender.stored
        source = stored.source_path
        assert source is not None
        async with slots:
            if sender.link.state != "open" or self._senders.get(stored.transfer_id) is not sender:
                return
            self._set_state(stored, TransferState.SENDING)
            fd: int | None = None
            try:
                # Opened once: each block comes from this inode, checked unchanged first.
                fd = await asyncio.to_thread(
                    file_io.open_source, source, stored.source_stamp, stored.size
                )
                while sender.link.state == "open" and not sender.transfer.done_sending:
                    blocks = sender.transfer.blocks_to_send()
                    if not blocks:
                        sender.wake.clear()
                        stall = self.direct_stall_s if sender.direct is not None else None
                        if not await _wait_either(sender.wake, sender.link, stall):
                            self._direct_stalled(sender, "no ACK")
                        continue
                    try:
                        for index in blocks:
                            chunks = await asyncio.to_thread(_chunks_of, sender, fd, index)
                            for chunk in chunks:
                                await self._async_send_chunk(sender, chunk)
                                total = self._sent_total.get(stored.transfer_id, 0) + len(chunk)
                                self._sent_total[stored.transfer_id] = total
                    except _DirectLost:
                        continue  # from the last ACK, on the data channel
                    except _DirectBroken:
                        await self._async_after_break(sender)
                        continue
            except file_io.FileIoError as exc:
                self._source_changed(sender, str(exc))
            except OSError as exc:
                self._source_changed(sender, f"cannot read the file: {exc.strerror or exc}")
            except TransportError:
                pass  # the link went: the receiver's next ACCEPT resumes it
            finally:
                if fd is not None:
                    os.close(fd)
                if sender.link.state != "open":
                    sender.close_direct()

    async def _async_send_chunk(self, sender: _Sender, chunk: bytes) -> None:
        """Over the direct stream while it works, else the data channel. A stream that
        stalls or fails is dropped, and the window comes again from the last ACK (or
        from the receiver's ACCEPT)."""
        if sender.link.state != "open":
            raise TransportError("the session with this peer closed")
        counts = self._path_bytes.setdefault(sender.stored.transfer_id, [0, 0, 0])
        if sender.opening:  # DIRECT came with the ACCEPT: the stream is ≤ 2 s away
            await sender.settled.wait()
        direct = sender.direct
        if direct is not None:
            try:
                async with asyncio.timeout(self.direct_stall_s):
                    await direct.async_send_file_chunk(chunk)
            except TimeoutError:
                self._direct_stalled(sender, "a write blocked")
                raise _DirectLost from None
            except TransportError as exc:
                # Reset or closed: what it had in flight is lost (``_async_after_break``).
                logger.info("direct file path to %s ended: %s", sender.ref.peer_label, exc)
                sender.close_direct()
                raise _DirectBroken from None
            counts[0] += len(chunk)
            return
        await sender.link.async_send_file_chunk(chunk)
        counts[_PATH_NAMES.index(sender.link.chunk_path)] += len(chunk)

    async def _async_after_break(self, sender: _Sender) -> None:
        """The direct stream failed under a write: nothing again until the receiver's
        ACCEPT (it sends one when its end of the stream ends; ``_start_sending`` then
        replaces this task), the session's end (the next session's ACCEPT resumes), or
        the stall time: then the window from the last ACK on the data channel. A reset
        is what a receiver SIGKILL brings, and its session is dead too: resending at
        once would fill that session's buffers, counted as sent, for nothing."""
        sender.restarted_from = None  # nothing resent: the next ACCEPT restarts
        never = asyncio.Event()  # only the session's end or the stall time
        if not await _wait_either(never, sender.link, self.direct_stall_s):
            logger.info(
                "no ACCEPT from %s %.0f s after the direct path ended: the data channel goes on",
                sender.ref.peer_label, self.direct_stall_s,
            )  # fmt: skip
            self._restart_on_channel(sender)

    def _direct_stalled(self, sender: _Sender, what: str) -> None:
        """The direct stream went silent: dropped (a reset, not a FIN behind data that
        cannot go), and the window again from the last ACK on the data channel."""
        logger.info(
            "direct file path to %s stalled (%s for %.0f s): the data channel goes on",
            sender.ref.peer_label, what, self.direct_stall_s,
        )  # fmt: skip
        direct, sender.direct = sender.direct, None
        if direct is not None:
            direct.abort()
        self._restart_on_channel(sender)

    @staticmethod
    def _restart_on_channel(sender: _Sender) -> None:
        """The window again from the last ACK, on the data channel (the direct stream is gone)."""
        sender.restarted_from = sender.transfer.acked
        sender.transfer.on_accept(sender.transfer.acked)

    def _on_direct(self, link: PeerLink, transfer: StoredTransfer, control: FileControl) -> None:
        """The receiver offers a direct TCP path for a transfer we are sending."""
        sender = self._senders.get(transfer.transfer_id)
        direct = control.direct
        if (
            sender is None or sender.link is not link or direct is None
            or sender.direct is not None or sender.opening
        ):  # fmt: skip
            return  # not sending it on this session (or a path already): ignored
        if not _is_one_of(direct.address, self.peer_addresses(link.peer_key)):
            logger.info(
                "direct file path from %s ignored: %s is not an address it advertises",
                sender.ref.peer_label, direct.address,
            )  # fmt: skip
            return  # the data channel carries it
        sender.opening = True
        sender.settled.clear()
        self._core.spawn(self._async_open_direct(sender, direct))

    def _advertised_addresses(self, key: bytes) -> tuple[str, ...]:
        peer = self._contacts.lan.get(key)
        return peer.addresses if peer is not None else ()

    async def _async_open_direct(self, sender: _Sender, path: DirectPath) -> None:
        try:
            stream = await async_open_direct(
                str(path.address), path.port, path.token, timeout=DIRECT_OPEN_TIMEOUT_S
            )
        except TransportError as exc:
            logger.info("no direct file path to %s: %s", sender.ref.peer_label, exc)
            return
        finally:
            sender.opening = False
            sender.settled.set()
        if (
            self._senders.get(sender.stored.transfer_id) is not sender
            or sender.link.state != "open"
        ):
            await stream.async_close()  # ended or resumed meanwhile
            return
        sender.direct = stream
        sender.restarted_from = None  # an ACCEPT from now on may be for this stream

    async def _async_forget_direct(self, link: PeerLink) -> None:
        """A session ends: its direct streams and tokens go (unless a newer one is up)."""
        await link.async_wait_closed()
        current = self._core.links.get(link.peer_key)
        if self._listener is not None and (current is None or current is link
                                           or current.state != "open"):  # fmt: skip
            self._listener.close_peer(link.peer_key, "the session ended")

    def _source_changed(self, sender: _Sender, reason: str) -> None:
        stored = sender.stored
        self._reply(sender.link, ControlKind.CANCEL, stored.transfer_id, reason)
        self._end(stored, TransferState.FAILED, reason)
        self._core.emit(self._failed(stored, reason))

    def _finish_sending(self, transfer: StoredTransfer, sender: _Sender | None, size: int) -> None:
        if size != transfer.size:
            logger.warning("file done with size %d, offered %d", size, transfer.size)
        try:
            self._core.profile.files.update_progress(
                transfer.transfer_id, transfer.block_count, now_ms=now_ms()
            )
        except StoreError as exc:  # only the count: the end below is what matters
            logger.warning("file progress not stored: %s", exc)
        self._end(transfer, TransferState.DONE, None)
        self._core.emit(
            FileDone(
                transfer.transfer_id.hex(), transfer.conversation, peer_id(transfer.peer_key),
                "out", transfer.name, transfer.size, str(transfer.source_path or ""),
                self._sent_total.get(transfer.transfer_id, 0),
                path_used=self._path_used(transfer.transfer_id),
            )
        )  # fmt: skip

    def _progress_out(self, sender: _Sender) -> None:
        tid = sender.stored.transfer_id
        acked = sender.transfer.acked
        done = min(acked * sender.stored.block_bytes, sender.stored.size)
        meter = self._meter(tid)
        now = time.monotonic()
        meter.add(now, done)
        last = acked == sender.transfer.blocks
        if meter.due(now) or last:
            # Written behind: a lost ACK count only means a resend of at most a window.
            with contextlib.suppress(StoreError, ValueError):
                self._core.profile.files.update_progress(tid, acked, now_ms=now_ms())
            self._emit_progress(sender.stored, "sending", done, meter, now)

    # -- receiving --------------------------------------------------------------------

    def _on_offer(self, link: PeerLink, event: FileFrameReceived, ref: ConversationRef) -> None:
        tid = event.message_id
        try:
            offer = decode_offer(event.payload)
        except FileWireError as exc:
            logger.warning("file offer from %s refused (%s): %s", ref.peer_label, exc.code, exc)
            self._receipt(link, tid)  # not sent again: it would be refused again
            return
        held = self._get(tid)
        if held is not None:  # the offer again: where we stand with it
            self._receipt(link, tid)
            if held.peer_key == stored_key(link) and held.direction is Direction.IN:
                self._answer_repeat(link, held)
            return
        sender_key: bytes | None = None
        if offer.group_id is not None:  # filed under the group, if it is one of ours
            try:
                member = self.check_group_offer(link.peer_key, offer.group_id)
            except GroupOfferRefused as exc:
                logger.info("group file from %s declined: %s", ref.peer_label, exc)
                self._receipt(link, tid)
                self._reply(link, ControlKind.DECLINE, tid, f"{exc.code}: {exc}")
                return
            ref = ConversationRef(group_conversation_id(offer.group_id), ref.peer_label, member)
            sender_key = link.peer_key
        stamp = now_ms()
        transfer = StoredTransfer(
            transfer_id=tid, conversation=ref.conversation_id, peer_key=stored_key(link),
            direction=Direction.IN, name=sanitize_file_name(offer.name), size=offer.size,
            block_bytes=offer.block_bytes, file_hash=offer.file_hash, file_key=offer.file_key,
            mime=offer.mime, state=TransferState.OFFERED, verified_blocks=0, source_path=None,
            partial_path=None, final_path=None, error=None, created_ms=stamp, updated_ms=stamp,
        )  # fmt: skip
        try:
            added = self._core.profile.files.add(transfer, sender=ref.name, sender_key=sender_key)
        except StoreError as exc:  # too many unfinished with this peer, or the disk
            self._receipt(link, tid)
            self._reply(link, ControlKind.DECLINE, tid, str(exc.user_message))
            return
        except ValueError as exc:
            self._receipt(link, tid)
            self._reply(link, ControlKind.DECLINE, tid, f"refused: {exc}")
            return
        self._core.marks.index_later()
        self._receipt(link, tid)
        if added:
            self._core.spawn(self._async_offer_arrived(transfer, ref))

    async def _async_offer_arrived(self, transfer: StoredTransfer, ref: ConversationRef) -> None:
        """Accepted by itself (disk checks in threads), or told to the user."""
        tid = transfer.transfer_id
        downloads = self._downloads_dir()
        async with self._accepting:
            reason = await self._async_auto_accept_refusal(transfer, downloads)
            if reason is None:
                try:
                    await self._async_accept(transfer, downloads)
                    return
                except UserError as exc:
                    reason = str(exc)
        if self._ended(tid):
            return
        self._core.emit(
            FileOffered(
                tid.hex(), ref.conversation_id, ref.peer_label, ref.name, transfer.name,
                transfer.size, reason,
            )
        )  # fmt: skip

    def _answer_repeat(self, link: PeerLink, held: StoredTransfer) -> None:
        tid = held.transfer_id
        if held.state is TransferState.DONE:
            self._reply(link, ControlKind.DONE, tid, "", value=held.size)
        elif held.state is TransferState.FAILED:
            self._reply(link, ControlKind.FAIL, tid, held.error or "failed")
        elif held.state is TransferState.DECLINED:
            self._reply(link, ControlKind.DECLINE, tid, held.error or "declined")
        elif held.state is TransferState.CANCELLED:
            self._reply(link, ControlKind.CANCEL, tid, held.error or "cancelled")
        # offered: waits for the user; accepted/receiving: ACCEPT went at session open

    async def _async_auto_accept_refusal(
        self, transfer: StoredTransfer, downloads: Path
    ) -> str | None:
        if is_guest_key(transfer.peer_key):  # a guest's files always wait
            return "from a guest: accept it with `p2pchat files accept ID`"
        contact = self._core.profile.get_contact(transfer.peer_key)
        if contact is None or contact.trust is not TrustState.ACCEPTED:
            return "not from a contact: accept it with `p2pchat files accept ID`"
        limit = self._core.profile.settings.auto_accept_bytes
        if transfer.size > limit:
            return f"over the auto-accept size ({_size(limit)}): `p2pchat files accept ID`"
        try:
            await self._async_check_room(transfer, downloads)
        except UserError as exc:
            return str(exc)
        return None

    async def _async_check_room(self, transfer: StoredTransfer, downloads: Path) -> None:
        # What the accepted transfers still to finish will write is spoken for already.
        reserved = sum(
            max(0, t.size - t.verified_blocks * t.block_bytes)
            for t in self._core.profile.files.unfinished()
            if t.direction is Direction.IN and t.state in _IN_PROGRESS
            and t.transfer_id != transfer.transfer_id
        )  # fmt: skip
        try:
            free = await asyncio.to_thread(file_io.free_bytes, downloads)
        except OSError as exc:
            raise UserError(f"cannot use {downloads}: {exc.strerror or exc}") from None
        if free < transfer.size + reserved + file_io.FREE_SPACE_MARGIN:
            waiting = f", {_size(reserved)} for files still arriving" if reserved else ""
            raise UserError(
                f"not enough space in {downloads} for {transfer.name} ({_size(transfer.size)},"
                f" {_size(free)} free{waiting}, {_size(file_io.FREE_SPACE_MARGIN)} kept spare):"
                " free some space, or accept it elsewhere with `files accept ID --to DIR`"
            )

    async def _async_accept(self, transfer: StoredTransfer, downloads: Path) -> FileView:
        try:
            partial = await asyncio.to_thread(_make_partial, downloads, transfer.transfer_id)
        except OSError as exc:
            raise UserError(f"cannot write in {downloads}: {exc.strerror or exc}") from None
        files = self._core.profile.files
        try:
            placed = files.set_partial_path(transfer.transfer_id, partial, now_ms=now_ms())
            if placed:
                files.set_state(transfer.transfer_id, TransferState.ACCEPTED, now_ms=now_ms())
        except StoreError as exc:
            placed, error = False, str(exc.user_message)
        else:
            error = f"{_short(transfer)} has ended meanwhile"
        if not placed:  # ended (or not stored) while its file was made: not kept
            await asyncio.to_thread(file_io.remove_partial, partial)
            raise UserError(error)
        accepted = self._get(transfer.transfer_id) or transfer
        link = self._link(transfer.peer_key)
        if link is not None and link.state == "open" and link.session.files:
            ref = ConversationRef(transfer.conversation, peer_id(transfer.peer_key),
                                  self._peer_name(transfer.peer_key))  # fmt: skip
            self._core.spawn(self._async_resume_receiving(link, ref, accepted))
        return self._view(accepted)

    async def _async_resume_receiving(
        self, link: PeerLink, ref: ConversationRef, transfer: StoredTransfer
    ) -> None:
        """ACCEPT(verified), after cutting the partial file to what was verified."""
        finishing = self._finishing.get(transfer.transfer_id)
        if finishing is not None:  # every block is in: answer as it ends, on this link
            await asyncio.wait([finishing])
            ended = self._get(transfer.transfer_id)
            if ended is None or ended.state.finished:
                if ended is not None and link.state == "open":
                    self._answer_repeat(link, ended)
                return
            transfer = ended  # it stopped short (cancelled): resumed as stored now
        partial, key = transfer.partial_path, transfer.file_key
        if partial is None or key is None:
            return
        offer = FileOffer(transfer.size, transfer.block_bytes, transfer.file_hash, key,
                          transfer.mime, transfer.name)  # fmt: skip
        incoming = IncomingTransfer(
            transfer.transfer_id, offer, verified_blocks=transfer.verified_blocks
        )
        length = min(transfer.verified_blocks * transfer.block_bytes, transfer.size)
        final = transfer.final_path
        try:
            placed = (
                final is not None
                and not await asyncio.to_thread(file_io.exists, partial)
                and await asyncio.to_thread(file_io.exists, final)
            )
            if placed and final is not None:  # renamed into place, then a crash
                self._done_receiving(link, transfer, final)
                return
            held = await asyncio.to_thread(
                file_io.resume_partial, partial, length, transfer.block_bytes
            )
        except OSError as exc:
            self._fail_receiving(link, transfer, f"cannot write the partial file: {exc}")
            return
        now = self._get(transfer.transfer_id)
        if now is None or now.state.finished:  # ended meanwhile (cancelled): nothing left
            await asyncio.to_thread(file_io.remove_partial, partial)
            return
        if held < length:  # the partial file lost data: resume from what it still has
            logger.warning("partial file %s holds %d of %d verified bytes", partial, held, length)
            incoming = IncomingTransfer(
                transfer.transfer_id, offer, verified_blocks=held // transfer.block_bytes
            )
            try:
                self._core.profile.files.update_progress(
                    transfer.transfer_id, incoming.verified, now_ms=now_ms()
                )
            except StoreError as exc:
                logger.warning("file progress not stored: %s", exc)
                return
            length = held
        if link.state != "open":
            return
        old = self._receivers.get(transfer.transfer_id)
        if old is not None and old.link is link and not old.stopped:
            return  # already moving on this link
        if self._receiving_with(link) >= ACTIVE_PER_PEER:
            return  # stays accepted: ACCEPT goes when one of the 4 ends (_start_waiting)
        receiver = _Receiver(transfer, incoming, link, ref, partial)
        if old is not None:
            old.stopped = True
        self._receivers[transfer.transfer_id] = receiver
        self._meter(transfer.transfer_id).add(time.monotonic(), length)
        self._send(link, incoming.accept())
        if incoming.complete:  # an empty file, or every block was in before a restart
            receiver.writer = self._finish_receiving(receiver)
        else:
            self._offer_direct(receiver)

    def _offer_direct(self, receiver: _Receiver) -> None:
        """DIRECT(address, port, token) after the ACCEPT, to a peer that announced it;
        its chunks then come over TCP too, to the same handler as the data channel's."""
        link, listener = receiver.link, self._listener
        key, value = DIRECT_CAPABILITY
        if listener is None or link.session.peer_info.get(key) != value:
            return
        try:
            address = ipaddress.ip_address(listener.host)
            token = listener.issue_token(
                link.peer_key,
                lambda data: self._on_direct_chunk(receiver, data),
                lambda reason: self._on_direct_closed(receiver, reason),
            )
            path = DirectPath(address, listener.port, token)
        except (TransportError, ValueError) as exc:  # bounds: the data channel it is
            logger.info("no direct path offered: %s", exc)
            return
        self._send(link, FileControl.offer_direct(receiver.stored.transfer_id, path))

    def _on_direct_chunk(self, receiver: _Receiver, data: bytes) -> None:
        """A chunk from the direct stream. A bad one raises: the listener closes that
        stream (a LAN attacker can inject bytes into TCP), and ``_on_direct_closed``
        resumes the transfer; it does not fail it as a bad chunk inside DTLS does."""
        tid = receiver.stored.transfer_id
        if self._receivers.get(tid) is not receiver or receiver.stopped:
            return  # ended or resumed elsewhere: dropped
        if receiver.link.state != "open":
            return
        self._take_chunk(receiver, data)
        self._path_bytes.setdefault(tid, [0, 0, 0])[0] += len(data)

    def _on_direct_closed(self, receiver: _Receiver, reason: str) -> None:
        """The direct stream ended: unless the transfer did, ACCEPT(verified) again, and
        the sender goes on from there on the data channel."""
        tid = receiver.stored.transfer_id
        if (
            self._receivers.get(tid) is not receiver or receiver.stopped
            or receiver.link.state != "open" or receiver.incoming.complete
        ):  # fmt: skip
            return
        logger.info("direct file stream closed (%s): resuming on the data channel", reason)
        # Not incoming.accept(): blocks being written stay ready; their chunks come
        # again as duplicates.
        self._send(receiver.link,
                   FileControl(ControlKind.ACCEPT, tid, receiver.incoming.verified))  # fmt: skip

    def _receiving_with(self, link: PeerLink) -> int:
        return sum(1 for r in self._receivers.values() if r.link is link and not r.stopped)

    def _start_waiting(self, peer_key: bytes) -> None:
        """A receiving slot with this peer is free: ACCEPT the next accepted transfers."""
        link = self._link(peer_key)
        if link is None or link.state != "open" or not link.session.files:
            return
        free = ACTIVE_PER_PEER - self._receiving_with(link)
        for transfer in self._core.profile.files.active_for(peer_key):
            if free <= 0:
                return
            moving = self._receivers.get(transfer.transfer_id)
            if (
                transfer.direction is Direction.IN
                and transfer.state in _IN_PROGRESS
                and (moving is None or (moving.stopped and moving.link is not link))
                and transfer.transfer_id not in self._finishing
            ):
                free -= 1
                ref = ConversationRef(transfer.conversation, peer_id(peer_key),
                                      self._peer_name(peer_key))  # fmt: skip
                self._core.spawn(self._async_resume_receiving(link, ref, transfer))

    def _on_chunk(self, link: PeerLink, data: bytes) -> None:
        receiver = self._receivers.get(data[1:17])
        if receiver is None or receiver.link is not link or receiver.stopped:
            return  # a transfer not accepted in this session (or cancelled): dropped
        try:
            self._take_chunk(receiver, data)
        except FileWireError as exc:
            on_relay = link.chunk_path == "relay" and exc.code in _RELAY_DAMAGE_CODES
            if on_relay and self._resume_after_damage(receiver, exc):
                return
            who = "the relay kept damaging the file" if on_relay else "bad data from the sender"
            self._fail_receiving(link, receiver.stored, f"{who} ({exc.code})")
            return
        counts = self._path_bytes.setdefault(receiver.stored.transfer_id, [0, 0, 0])
        counts[_PATH_NAMES.index(link.chunk_path)] += len(data)

    def _resume_after_damage(self, receiver: _Receiver, exc: FileWireError) -> bool:
        """A chunk damaged on the relay: ACCEPT(verified) again, and the sender resends
        from there (partial blocks stay: their chunks authenticated). False once the
        relay has damaged RELAY_DAMAGE_RESUMES in a row. (A block whose chunks all
        authenticated but whose hash fails is the sender's doing: not resumed.)"""
        verified = receiver.incoming.verified
        if receiver.damage_mark != verified:
            receiver.damage_mark, receiver.damaged = verified, 0
        receiver.damaged += 1
        if receiver.damaged > RELAY_DAMAGE_RESUMES:
            return False
        tid = receiver.stored.transfer_id
        logger.warning("a file chunk was damaged on the relay (%s): resuming from block %d",
                       exc.code, verified)  # fmt: skip
        self._send(receiver.link, FileControl(ControlKind.ACCEPT, tid, verified))
        return True

    def _take_chunk(self, receiver: _Receiver, data: bytes) -> None:
        """One chunk into its transfer (raises FileWireError); a whole block is written."""
        outcome = receiver.incoming.receive_chunk(data)
        if isinstance(outcome, BlockReady):
            receiver.ready.append(outcome)
            if receiver.writer is None or receiver.writer.done():
                receiver.writer = self._core.spawn(self._async_write_blocks(receiver))

    async def _async_write_blocks(self, receiver: _Receiver) -> None:
        stored = receiver.stored
        while receiver.ready and not receiver.stopped:
            block = receiver.ready.popleft()
            try:
                await asyncio.to_thread(
                    file_io.write_block, receiver.partial, block.index * stored.block_bytes,
                    block.data,
                )  # fmt: skip
            except OSError as exc:
                if receiver.stopped:  # cancelled meanwhile: its partial file is gone
                    return
                self._fail_receiving(receiver.link, stored, f"cannot write: {exc.strerror or exc}")
                return
            if receiver.stopped or receiver.link.state == "closed":
                return  # written, not recorded: the next session truncates it away
            ack = receiver.incoming.block_written(block.index)
            verified = receiver.incoming.verified
            try:
                files = self._core.profile.files
                if stored.state is TransferState.ACCEPTED:
                    files.set_state(stored.transfer_id, TransferState.RECEIVING, now_ms=now_ms())
                    stored = receiver.stored = _with_state(stored, TransferState.RECEIVING)
                files.update_progress(stored.transfer_id, verified, now_ms=now_ms())
            except StoreError as exc:
                # Not recorded: no ACK either; the next session resumes from what was.
                logger.warning("file progress not stored: %s", exc)
                receiver.link.close(f"could not store a file's progress: {exc}")
                return
            self._send(receiver.link, ack)
            done = min(verified * stored.block_bytes, stored.size)
            meter = self._meter(stored.transfer_id)
            now = time.monotonic()
            meter.add(now, done)
            if meter.due(now):
                self._emit_progress(stored, "receiving", done, meter, now)
        if receiver.incoming.complete and not receiver.stopped:
            self._finish_receiving(receiver)

    def _finish_receiving(self, receiver: _Receiver) -> asyncio.Task[None]:
        """The one finishing task of this transfer (started now, or the running one)."""
        tid = receiver.stored.transfer_id
        task = self._finishing.get(tid)
        if task is None:
            receiver.stopped = True  # nothing more comes for it
            task = self._finishing[tid] = self._core.spawn(self._async_finish_receiving(receiver))
            task.add_done_callback(lambda _: self._finishing.pop(tid, None))
            self._start_waiting(receiver.stored.peer_key)  # its slot is free
        return task

    async def _async_finish_receiving(self, receiver: _Receiver) -> None:
        # After each await: a cancel meanwhile has ended it (CANCEL sent, partial file
        # removed); nothing more is said or saved for it then.
        stored = receiver.stored
        tid = stored.transfer_id
        receiver.stopped = True  # nothing more comes for it
        self._emit_progress(stored, "verifying", stored.size, self._meter(tid),
                            time.monotonic())  # fmt: skip
        try:
            digest = await asyncio.to_thread(file_io.hash_file, receiver.partial)
        except OSError as exc:
            if not self._ended(tid):
                reason = f"cannot read back: {exc.strerror or exc}"
                self._fail_receiving(receiver.link, stored, reason)
            return
        if self._ended(tid):
            return
        if not receiver.incoming.whole_hash_ok(digest):
            await asyncio.to_thread(file_io.remove_partial, receiver.partial)
            if not self._ended(tid):
                self._fail_receiving(receiver.link, stored, "the whole file's hash does not match")
            return
        final_dir = receiver.partial.parent.parent  # the partial dir sits in the downloads dir
        earlier = self._get(tid)
        final: Path | None = None
        try:
            final = await asyncio.to_thread(
                file_io.claim_final_name, final_dir, stored.name,
                earlier=None if earlier is None else earlier.final_path,
            )  # fmt: skip
            # Stored before the rename: a crash after it resumes as DONE, not as a
            # transfer whose partial file is gone.
            if self._core.profile.files.set_state(
                tid, TransferState.RECEIVING, now_ms=now_ms(), final_path=final
            ):
                await asyncio.to_thread(file_io.place, receiver.partial, final)
        except (OSError, StoreError) as exc:
            if final is not None:  # still our empty placeholder: os.replace is atomic
                await asyncio.to_thread(file_io.remove_partial, final)
            if not self._ended(tid):
                why = exc.strerror if isinstance(exc, OSError) else None
                self._fail_receiving(receiver.link, stored, f"cannot save it: {why or exc}")
            return
        if self._ended(tid):  # cancelled by the user meanwhile: no file stays
            await asyncio.to_thread(file_io.remove_partial, final)
            return
        self._done_receiving(receiver.link, stored, final)

    def _ended(self, tid: bytes) -> bool:
        held = self._get(tid)
        return held is None or held.state.finished

    def _done_receiving(self, link: PeerLink, stored: StoredTransfer, final: Path) -> None:
        self._receivers.pop(stored.transfer_id, None)
        self._end(stored, TransferState.DONE, None, final_path=final)
        self._reply(link, ControlKind.DONE, stored.transfer_id, "", value=stored.size)
        self._core.emit(
            FileDone(
                stored.transfer_id.hex(), stored.conversation, peer_id(stored.peer_key), "in",
                stored.name, stored.size, str(final),
                path_used=self._path_used(stored.transfer_id),
            )
        )  # fmt: skip

    def _fail_receiving(self, link: PeerLink, transfer: StoredTransfer, reason: str) -> None:
        receiver = self._receivers.pop(transfer.transfer_id, None)
        if receiver is not None:
            receiver.stopped = True
        self._reply(link, ControlKind.FAIL, transfer.transfer_id, reason)
        self._end(transfer, TransferState.FAILED, reason)
        self._core.emit(self._failed(transfer, reason))

    # -- either side ------------------------------------------------------------------

    def _on_cancel(self, transfer: StoredTransfer, reason: str, *, declined: bool = False) -> None:
        reason = _one_line(reason)
        state = TransferState.DECLINED if declined else TransferState.CANCELLED
        self._end(transfer, state, f"{'declined' if declined else 'cancelled'} by the peer"
                  + (f": {reason}" if reason else ""))  # fmt: skip
        self._core.emit(self._cancelled(transfer, "peer", reason))

    def _end(
        self,
        transfer: StoredTransfer,
        state: TransferState,
        error: str | None,
        *,
        final_path: Path | None = None,
    ) -> None:
        """The transfer ends: stored, its tasks stopped, its partial data gone."""
        tid = transfer.transfer_id
        sender = self._senders.pop(tid, None)
        if sender is not None:
            if sender.task is not None and sender.task is not _current():
                sender.task.cancel()
            sender.close_direct()  # DONE, CANCEL or FAIL: the direct stream goes too
        receiver = self._receivers.pop(tid, None)
        if receiver is not None:
            receiver.stopped = True
        hashing = self._hashing.pop(tid, None)
        if hashing is not None:  # a group's file is read on while one member's goes on
            hashing.stopped = not any(t.transfer_id in self._hashing for t in hashing.transfers)
        if state is not TransferState.DONE and transfer.partial_path is not None:
            # In a thread: a multi-GB unlink takes a while; nothing writes it again
            # (only an accept creates a partial file).
            self._core.spawn(asyncio.to_thread(file_io.remove_partial, transfer.partial_path))
        profile = self._core.profile
        try:
            with profile.batch():
                profile.files.set_state(
                    tid, state, now_ms=now_ms(),
                    error=None if error is None else _one_line(error)[:500],
                    final_path=final_path,
                )  # fmt: skip
                if transfer.direction is Direction.OUT:
                    profile.remove_outbox(tid, _outbox_conversation(transfer))  # its offer goes
        except StoreError as exc:
            logger.warning("file transfer end not stored: %s", exc)
        self._meters.pop(tid, None)
        if transfer.direction is Direction.IN:
            self._start_waiting(transfer.peer_key)  # its receiving slot, if it had one

    def _set_state(self, transfer: StoredTransfer, state: TransferState) -> None:
        with contextlib.suppress(StoreError):
            self._core.profile.files.set_state(transfer.transfer_id, state, now_ms=now_ms())

    def _send(self, link: PeerLink, control: FileControl) -> None:
        with contextlib.suppress(TransportError, ProtocolError):
            link.send(link.session.send_file_control(control.encode(), now_ms()))

    def _reply(
        self, link: PeerLink, kind: ControlKind, tid: bytes, reason: str, *, value: int = 0
    ) -> None:
        self._send(link, FileControl(kind, tid, value, _reason(reason)))

    def _send_control(self, peer_key: bytes, control: FileControl) -> None:
        link = self._link(peer_key)
        if link is not None and link.state == "open" and link.session.files:
            self._send(link, control)

    def _receipt(self, link: PeerLink, message_id: bytes) -> None:
        with contextlib.suppress(TransportError, ProtocolError):
            link.send(link.session.send_receipt(message_id, now_ms()))

    def _downloads_dir(self) -> Path:
        if self._downloads is not None:
            return self._downloads
        setting = self._core.profile.settings.downloads_dir
        return setting if setting is not None else file_io.default_downloads_dir()

    def _get(self, tid: bytes) -> StoredTransfer | None:
        return self._core.profile.files.get(tid)

    def _resolve(self, query: str) -> StoredTransfer:
        wanted = query.strip().lower()
        if len(wanted) < MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in wanted):
            raise UserError(
                f"{query!r} is not a transfer id: give its first {MIN_ID_PREFIX}+ hex digits"
                " (`p2pchat files` lists them)"
            )
        found = [t for t in self._core.profile.files.all(10_000)
                 if t.transfer_id.hex().startswith(wanted)]  # fmt: skip
        if not found:
            raise UserError(f"no file transfer {wanted}: `p2pchat files` lists them")
        if len(found) > 1:
            raise UserError(f"{wanted} matches {len(found)} transfers: give more of its id")
        return found[0]

    def _peer_name(self, key: bytes) -> str:
        if is_guest_key(key):
            return self.guest_name(key[len(GUEST_KEY_PREFIX) :]) or peer_id(key)
        contact = self._core.profile.get_contact(key)
        return contact.display_name if contact is not None else peer_id(key)

    def _link(self, key: bytes) -> PeerLink | None:
        if is_guest_key(key):
            return self.guest_link(key[len(GUEST_KEY_PREFIX) :])
        return self._core.links.get(key)

    def _meter(self, tid: bytes) -> _Meter:
        meter = self._meters.get(tid)
        if meter is None:
            meter = self._meters[tid] = _Meter()
        return meter

    def _emit_progress(
        self, transfer: StoredTransfer, state: str, done: int, meter: _Meter, now: float
    ) -> None:
        meter.emitted(now)
        rate = meter.rate()
        left = transfer.size - done
        self._core.emit(
            FileProgress(
                transfer.transfer_id.hex(), transfer.conversation, peer_id(transfer.peer_key),
                transfer.direction.value, transfer.name, state, done, transfer.size, rate,
                (left + rate - 1) // rate if rate > 0 else None,
                self._sent_total.get(transfer.transfer_id, 0),
            )
        )  # fmt: skip

    def _view(self, transfer: StoredTransfer) -> FileView:
        tid = transfer.transfer_id
        done = min(transfer.verified_blocks * transfer.block_bytes, transfer.size)
        if transfer.state is TransferState.DONE:
            done = transfer.size
        path = transfer.source_path if transfer.direction is Direction.OUT else transfer.final_path
        state = transfer.state.value
        if transfer.state is TransferState.QUEUED and tid in self._hashing:
            state = "hashing"  # send-file is reading it: offered once hashed
        return FileView(
            transfer_id=tid.hex(), conversation=transfer.conversation,
            peer_id=peer_id(transfer.peer_key), peer_name=self._peer_name(transfer.peer_key),
            direction=transfer.direction.value, name=transfer.name, size=transfer.size,
            bytes_done=done, state=state,
            path=None if path is None else str(path), error=transfer.error,
            bytes_sent_total=self._sent_total.get(tid, 0), path_used=self._path_used(tid),
            group=self._group_of(transfer),
        )  # fmt: skip

    def _group_of(self, transfer: StoredTransfer) -> str | None:
        """The group's name for a group's file (its id if the group is gone), else None."""
        group_id = group_id_of(transfer.conversation)
        if group_id is None:
            return None
        return self.group_name(group_id) or transfer.conversation

    def _path_used(self, tid: bytes) -> str:
        """Which path carried this run's chunks of it: "direct", "datachannel", "relay"
        (a guest's socket), "mixed" or "" (none yet)."""
        used = [
            name for name, n in zip(_PATH_NAMES, self._path_bytes.get(tid, ()), strict=False) if n
        ]
        return "mixed" if len(used) > 1 else used[0] if used else ""

    def _failed(self, transfer: StoredTransfer, reason: str) -> FileFailed:
        return FileFailed(
            transfer.transfer_id.hex(), transfer.conversation, peer_id(transfer.peer_key),
            transfer.direction.value, transfer.name, _one_line(reason),
        )  # fmt: skip

    def _cancelled(self, transfer: StoredTransfer, by: str, reason: str) -> FileCancelled:
        return FileCancelled(
            transfer.transfer_id.hex(), transfer.conversation, peer_id(transfer.peer_key),
            transfer.direction.value, transfer.name, by, reason,
        )  # fmt: skip


# -- the state of one transfer in this run ------------------------------------------


@dataclass
class _Hashing:
    """A ``send-file`` whose file is being hashed (stored; offered once hashed): one
    transfer, or a group's file (one per member, the same file read once)."""

    transfers: list[StoredTransfer]
    stopped: bool = False  # all cancelled: read by the hashing thread


@dataclass
class _Sender:
    stored: StoredTransfer
    transfer: OutgoingTransfer
    link: PeerLink
    ref: ConversationRef
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # an ACK came
    task: asyncio.Task[None] | None = None
    direct: DirectFilesStream | None = None  # the receiver's direct TCP path, once open
    opening: bool = False  # async_open_direct is running
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # set when not opening
    # The block it restarted from on the data channel after losing the direct stream,
    # until the receiver's ACCEPT for that loss comes (see ``_absorbs``).
    restarted_from: int | None = None

    def close_direct(self) -> None:
        direct, self.direct = self.direct, None
        if direct is not None:
            direct.close()  # FIN after what is buffered


class _DirectLost(Exception):
    """The direct stream stalled under a send: the window starts again from the last ACK."""


class _DirectBroken(Exception):
    """A write to the direct stream failed (reset, closed): see ``_async_after_break``."""


@dataclass
class _Receiver:
    stored: StoredTransfer
    incoming: IncomingTransfer
    link: PeerLink
    ref: ConversationRef
    partial: Path
    ready: collections.deque[BlockReady] = field(default_factory=collections.deque)
    writer: asyncio.Task[None] | None = None
    stopped: bool = False
    # Resumes after chunks damaged on the relay since block ``damage_mark`` was the
    # next one needed (RELAY_DAMAGE_RESUMES).
    damaged: int = 0
    damage_mark: int = -1


class _Meter:
    """Bytes over time: the recent rate, and whether a progress event is due."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self._last_emit = 0.0

    def add(self, now: float, done: int) -> None:
        self._samples.append((now, done))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()

    def due(self, now: float) -> bool:
        return now - self._last_emit >= PROGRESS_EVERY_S

    def emitted(self, now: float) -> None:
        self._last_emit = now

    def rate(self) -> int:
        if len(self._samples) < 2:
            return 0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return int((b1 - b0) / (t1 - t0)) if t1 > t0 and b1 > b0 else 0


# -- helpers --------------------------------------------------------------------------

# A browser guest has no key: the store keeps its transfers under this prefix and its
# 16-byte id (32 bytes, as a contact's key; no Ed25519 key starts so, short of 2^128 tries).
GUEST_KEY_PREFIX = b"p2pchat guest id"
GUEST_ID_BYTES = 16


def guest_key(guest_id: bytes) -> bytes:
    return GUEST_KEY_PREFIX + guest_id


def is_guest_key(key: bytes) -> bool:
    return len(key) == len(GUEST_KEY_PREFIX) + GUEST_ID_BYTES and key.startswith(GUEST_KEY_PREFIX)


def stored_key(link: PeerLink) -> bytes:
    """The peer's key as transfers are stored: a contact's key, or a guest's stand-in."""
    key = link.peer_key
    return guest_key(key) if len(key) == GUEST_ID_BYTES else key


def peer_id(key: bytes) -> str:
    """How events and views name the peer: a contact's peer id, a guest's guest:<id>."""
    if is_guest_key(key):
        return "guest:" + b64url_encode(key[len(GUEST_KEY_PREFIX) :])
    return contact_peer_id(key)


def takes_file_offer(peer_info: Mapping[str, str], payload: bytes) -> bool:
    """Whether a peer that announced ``peer_info`` takes this queued offer now."""
    key, value = GROUP_FILES_CAPABILITY
    return payload[:1] != bytes([GROUP_OFFER_VERSION]) or peer_info.get(key) == value


class GroupOfferRefused(Exception):
    """A group's file offer this node does not file under that group: ``code`` says why
    (``group-unknown``, ``group-not-in``, ``group-not-member``: docs/protocol.md)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _no_groups(sender_key: bytes, group_id: bytes) -> str:
    raise GroupOfferRefused("group-unknown", "this node holds no such group")


def _outbox_conversation(transfer: StoredTransfer) -> str:
    """Where its offer queues: the peer's 1:1 outbox, for a group's file too."""
    if group_id_of(transfer.conversation) is not None:
        return contact_conversation_id(transfer.peer_key)
    return transfer.conversation


def _offer_of(transfer: StoredTransfer, file_hash: bytes) -> FileOffer:
    """The offer of an outgoing transfer: version 2 with the group's id for a group's."""
    assert transfer.file_key is not None
    return FileOffer(
        transfer.size, transfer.block_bytes, file_hash, transfer.file_key, transfer.mime,
        transfer.name, group_id_of(transfer.conversation),
    )  # fmt: skip


async def _async_new_transfers(
    path: str, conversation: str, peer_keys: list[bytes]
) -> list[StoredTransfer]:
    """``send-file``'s outgoing transfers of the file at ``path``, one per peer, each
    with its own id and key (not stored yet); the file checked once (a clear line)."""
    source = Path(path)
    if not source.is_absolute():
        raise UserError(f"{path}: the path must be absolute")
    stamp = await asyncio.to_thread(_check_source, source)
    name = _wire_name(source.name)
    stamp_ms = now_ms()
    return [
        StoredTransfer(
            transfer_id=os.urandom(16), conversation=conversation, peer_key=key,
            direction=Direction.OUT, name=name, size=stamp[3],
            block_bytes=BLOCK_BYTES, file_hash=_NOT_HASHED, file_key=os.urandom(32),
            mime=_mime_of(name), state=TransferState.QUEUED, verified_blocks=0,
            source_path=source, partial_path=None, final_path=None, error=None,
            created_ms=stamp_ms, updated_ms=stamp_ms, source_stamp=stamp,
        )
        for key in peer_keys
    ]  # fmt: skip


def _check_source(source: Path) -> file_io.SourceStamp:
    try:
        info = source.stat()
    except FileNotFoundError:
        raise UserError(f"{source}: no such file") from None
    except OSError as exc:
        raise UserError(f"{source}: {exc.strerror or exc}") from None
    import stat as stat_module

    if not stat_module.S_ISREG(info.st_mode):
        raise UserError(f"{source} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise UserError(f"{source} is {_size(info.st_size)}, over the limit of 1 TiB")
    if not os.access(source, os.R_OK):
        raise UserError(f"{source}: permission denied")
    return file_io.stamp_of(info)


def _wire_name(name: str) -> str:
    """The name as offered: as it is when it fits the wire, else made to fit."""
    try:
        fits = 0 < len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:  # a file name that is not UTF-8 on disk
        fits = False
    return name if fits else sanitize_file_name(name.encode("utf-8", "replace").decode())


def _mime_of(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed and len(guessed) <= 255 and guessed.isascii() and guessed.isprintable():
        return guessed
    return "application/octet-stream"


def _make_partial(downloads: Path, transfer_id: bytes) -> Path:
    # In a thread: mkdir, chmod, open and fsync.
    partial = file_io.partial_path(downloads, transfer_id)
    file_io.truncate_partial(partial, 0)
    return partial


def _chunks_of(sender: _Sender, fd: int, index: int) -> list[bytes]:
    # In a thread: the read, the block hash and the encryption stay off the event loop.
    transfer, stored = sender.transfer, sender.stored
    data = file_io.read_source_block(
        fd, stored.source_stamp, stored.size, index * transfer.block_bytes,
        transfer.block_len(index),
    )  # fmt: skip
    return transfer.chunks_of(index, data)


async def _wait_either(event: asyncio.Event, link: PeerLink, timeout: float | None) -> bool:
    """Until ``event`` is set or ``link`` closes: True; False if ``timeout`` s passed first."""
    waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(link.async_wait_closed())}
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return bool(done)


def _with_state(transfer: StoredTransfer, state: TransferState) -> StoredTransfer:
    import dataclasses

    return dataclasses.replace(transfer, state=state)


def _current() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _one_line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _reason(text: str) -> str:
    """A reason as the wire takes it: one line, ≤ MAX_REASON_BYTES of UTF-8."""
    raw = _one_line(text).encode("utf-8")[:MAX_REASON_BYTES]
    return raw.decode("utf-8", "ignore")


def _short(transfer: StoredTransfer) -> str:
    return f"{transfer.name} ({transfer.transfer_id.hex()[:8]})"


def _size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _is_one_of(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, known: tuple[str, ...]
) -> bool:
    """Whether ``address`` is one of ``known`` (mDNS addresses; IPv6 ones may carry %scope)."""
    for text in known:
        try:
            if ipaddress.ip_address(text.split("%", 1)[0]) == address:
                return True
        except ValueError:
            continue
    return False
