"""The WebRTC data channels between two peers, over aiortc.

The link only produces and consumes complete SDP strings; carrying them (encrypted and
authenticated) is the signaling layer's job. There is no trickle ICE: aiortc gathers all
candidates inside ``setLocalDescription``, so every SDP we hand out is complete, and we
accept only complete SDP from the peer.

Usage, initiator and responder::

    link, offer = await DataChannelLink.async_create_offer(on_message=handle)
    # ... offer -> signaling -> peer ...
    peer, answer = await DataChannelLink.async_accept_offer(offer, on_message=handle)
    # ... answer -> signaling -> initiator ...
    await link.async_apply_answer(answer)
    await link.async_wait_open(timeout=10)
    link.send(b"frame")

Incoming messages are delivered by the ``on_message`` callback given at construction,
called in the event loop once per message, in order: it must be quick and must not
block (hand the bytes to the sans-I/O protocol and return). ``on_closed`` is called
exactly once when the link reaches ``CLOSED`` or ``FAILED``, whatever the cause
(``async_close``, the peer closing, a failed connection, a bad message from the peer);
``close_reason`` then says why. Callbacks, unlike a queue, add no per-message task
switch, and a queue would need a bound that aiortc could not push back on anyway.

Files: a native LAN link also carries a second channel, ``p2pchat-files`` (stream id 2),
which both sides create with ``negotiated=True`` before the offer/answer, so it needs no
in-band DCEP and a peer cannot open any other. File chunks go there through
``async_send_file_chunk`` and arrive through ``on_file_chunk``. aiortc's SCTP sends the
messages of all channels from one FIFO, a message at a time, so a chat message waits
behind what the files channel has queued: ``async_send_file_chunk`` keeps that to
``FILES_LOW_WATER`` plus one message, which bounds the chat latency a transfer adds.
A browser guest's link (``files_channel=False``) has the chat channel only.

Failure detection: a peer that closes sends an SCTP ABORT and is noticed at once. A cut
link (cable out, peer frozen or killed without ICMP) is noticed only by ICE consent
freshness (RFC 7675): aioice sends a consent check every 4-6 s and gives up after 6
misses in a row, so a cut link goes ``FAILED`` after about 25-35 s (measured 29.7-32.7 s
with the peer process frozen by SIGSTOP or killed by SIGKILL, link idle or carrying one
message a second; see ``bench/bench_raw_aiortc.py --cut-detection``); neither SCTP
retransmissions nor ICMP port-unreachable end the association sooner. Faster detection belongs in the chat protocol (pings). aiortc has
no "disconnected" state and reports such a loss as a close; we tell the two apart by
whether DTLS was still up when the channel closed (an orderly close is an SCTP ABORT
or stream reset over a live DTLS session).

Browsers: their offers carry ``<uuid>.local`` mDNS host candidates, which aioice cannot
resolve in time (Firefox answers mDNS only once ICE checks start; dnspython refuses
Chromium's answers) and waits 1 s for each (aioice#77). ``async_accept_offer`` drops
them (``drop_mdns_candidates``) and answers at once; the browser's checks reach our
candidates and ICE completes over peer-reflexive candidates.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from typing import Final

from aioice.ice import CandidatePair
from aiortc import (
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

from p2pchat.transport.errors import (
    LinkClosedError,
    LinkFailedError,
    LinkTimeoutError,
    LocalTransportError,
    MessageTooLargeError,
    RemoteSdpError,
    SendBufferFullError,
)
from p2pchat.transport.host_addresses import addresses_of_interfaces, restricted_host_addresses
from p2pchat.transport.ice_config import IceConfig, rtc_configuration
from p2pchat.transport.sctp_bounds import bound_sctp_transport
from p2pchat.transport.sdp import check_remote_sdp, drop_mdns_candidates, set_max_message_size
from p2pchat.transport.stun_bounds import install as _bound_stun_parser

__all__ = [
    "CHANNEL_LABEL",
    "DEFAULT_LOW_WATER",
    "FILES_CHANNEL_ID",
    "FILES_CHANNEL_LABEL",
    "FILES_LOW_WATER",
    "MAX_BUFFERED_AMOUNT",
    "MAX_MESSAGE_SIZE",
    "DataChannelLink",
    "LinkState",
]

_bound_stun_parser()  # aioice's STUN parser: a cut attribute is junk, not a traceback
_IN_PROGRESS: Final = CandidatePair.State.IN_PROGRESS
_WAITING: Final = CandidatePair.State.WAITING
logger = logging.getLogger(__name__)

#: Label of the chat data channel, the one channel a peer opens in-band (DCEP); a peer
#: opening any other is rejected.
CHANNEL_LABEL: Final = "p2pchat"

#: Label and stream id of the files channel, pre-agreed (``negotiated=True``) by both sides.
FILES_CHANNEL_LABEL: Final = "p2pchat-files"
FILES_CHANNEL_ID: Final = 2

#: ``async_send_file_chunk`` sends only once the files channel holds at most this many
#: bytes. aiortc queues every channel's messages in ONE FIFO per association, so a chat
#: message waits behind what the files channel holds: 64 KiB (+ one chunk) keeps that
#: under one block's time, and is still ~5x a LAN's bandwidth-delay product (~12 KB).
#: Measured (bench_files' chat part, A/B in the same hour): chat p50 during a data-channel
#: transfer 50 -> 20 ms and 36 -> 26 ms against 256 KiB, file rate not lower (9.7 -> 9.9,
#: 11.8 -> 15.1 MB/s).
FILES_LOW_WATER: Final = 64 * 1024

#: Largest message, in bytes, sent or accepted: a 64 KiB chat frame plus room for its
#: header and AEAD tag. Advertised to the peer as ``a=max-message-size``.
MAX_MESSAGE_SIZE: Final = 64 * 1024 + 1024

#: Hard bound on bytes queued for sending; ``send`` refuses to go past it.
MAX_BUFFERED_AMOUNT: Final = 8 * 1024 * 1024

#: Default level ``async_drain`` waits for.
DEFAULT_LOW_WATER: Final = 256 * 1024


_CONNECTION_LOST: Final = "the connection was lost (ICE consent expired or DTLS ended)"


class LinkState(enum.Enum):
    """Where a link is in its life; ``CLOSED`` and ``FAILED`` are final."""

    NEW = "new"  # offer made, answer not applied yet
    CONNECTING = "connecting"  # both SDPs applied: ICE, DTLS, SCTP under way
    OPEN = "open"  # the data channel carries messages
    CLOSED = "closed"  # closed by either side in an orderly way
    FAILED = "failed"  # could not connect, connection lost, or peer misbehaved


_FINAL_STATES: Final = frozenset({LinkState.CLOSED, LinkState.FAILED})

_TRANSITIONS: Final[dict[LinkState, frozenset[LinkState]]] = {
    LinkState.NEW: frozenset({LinkState.CONNECTING, *_FINAL_STATES}),
    LinkState.CONNECTING: frozenset({LinkState.OPEN, *_FINAL_STATES}),
    LinkState.OPEN: _FINAL_STATES,
    LinkState.CLOSED: frozenset(),
    LinkState.FAILED: frozenset(),
}


class DataChannelLink:
    """One ordered, reliable, binary WebRTC chat channel to one peer, and on LAN links
    a second one for file chunks.

    Build it with ``async_create_offer`` (initiator) or ``async_accept_offer``
    (responder), never directly. The owner sets ``on_file_chunk`` to receive file chunks;
    while it is ``None`` they are dropped.
    """

    #: Called once per message received on the files channel (in order, in the event
    #: loop; quick, like ``on_message``).
    on_file_chunk: Callable[[bytes], None] | None

    def __init__(
        self,
        peer_connection: RTCPeerConnection,
        *,
        is_offerer: bool,
        on_message: Callable[[bytes], None],
        on_closed: Callable[[], None] | None,
    ) -> None:
        self._pc = peer_connection
        self._is_offerer = is_offerer
        self._on_message = on_message
        self._on_closed = on_closed
        self._channel: RTCDataChannel | None = None
        self._files_channel: RTCDataChannel | None = None
        self.on_file_chunk = None
        self._state = LinkState.NEW
        self._close_reason: str | None = None
        self._answer_applied = False
        loop = asyncio.get_running_loop()
        # Resolved when the link opens or ends; async_wait_open awaits it.
        self._settled: asyncio.Future[None] = loop.create_future()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._files_waiters: list[asyncio.Future[None]] = []
        self._pc_close_task: asyncio.Task[None] | None = None
        peer_connection.on("connectionstatechange", self._on_connection_state_change)

    # -- construction ---------------------------------------------------------------

    @classmethod
    async def async_create_offer(
        cls,
        *,
        on_message: Callable[[bytes], None],
        on_closed: Callable[[], None] | None = None,
        interfaces: Sequence[str] | None = None,
        files_channel: bool = True,
        ice: IceConfig | None = None,
    ) -> tuple[DataChannelLink, str]:
        """Initiator: create the link and its data channels; return it and a complete offer.

        ``interfaces`` limits ICE host candidates to those interfaces' addresses
        (``["lo"]`` is allowed, for tests); ``None`` uses every non-loopback address.
        ``files_channel`` adds the pre-agreed files channel (the peer must add it too).
        ``ice``: the STUN/TURN servers a standalone signaling server offered; ``None``
        (the LAN) uses none at all.
        """
        addresses = None if interfaces is None else addresses_of_interfaces(interfaces)
        pc = RTCPeerConnection(rtc_configuration(ice))
        link = cls(pc, is_offerer=True, on_message=on_message, on_closed=on_closed)
        try:
            link._attach_channel(pc.createDataChannel(CHANNEL_LABEL, ordered=True))
            if files_channel:
                link._add_files_channel()
            link._bound_sctp()
            with restricted_host_addresses(addresses):
                await pc.setLocalDescription(await pc.createOffer())
            offer = link._local_sdp()
        except BaseException:
            await link._async_abandon("could not create an offer")
            raise
        return link, offer

    @classmethod
    async def async_accept_offer(
        cls,
        offer_sdp: str,
        *,
        on_message: Callable[[bytes], None],
        on_closed: Callable[[], None] | None = None,
        interfaces: Sequence[str] | None = None,
        files_channel: bool = True,
        ice: IceConfig | None = None,
    ) -> tuple[DataChannelLink, str]:
        """Responder: create the link from the peer's offer; return it and a complete answer.

        ``files_channel`` adds the pre-agreed files channel (``False`` for a browser guest,
        which has none yet); ``ice`` as for ``async_create_offer``. Raises
        ``RemoteSdpError`` if the offer is oversized,
        malformed or not a single data channel.
        """
        check_remote_sdp(offer_sdp, "offer")
        offer_sdp = drop_mdns_candidates(offer_sdp)
        addresses = None if interfaces is None else addresses_of_interfaces(interfaces)
        pc = RTCPeerConnection(rtc_configuration(ice))
        link = cls(pc, is_offerer=False, on_message=on_message, on_closed=on_closed)
        pc.on("datachannel", link._on_datachannel)
        try:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            except Exception as exc:
                raise RemoteSdpError(f"SDP offer refused by aiortc: {_one_line(exc)}") from exc
            if files_channel:
                link._add_files_channel()  # before the association starts: no DCEP
            link._bound_sctp()
            with restricted_host_addresses(addresses):
                await pc.setLocalDescription(await pc.createAnswer())
            answer = link._local_sdp()
        except BaseException:
            await link._async_abandon("could not answer the offer")
            raise
        link._set_state(LinkState.CONNECTING)
        return link, answer

    async def async_apply_answer(self, answer_sdp: str) -> None:
        """Initiator: apply the peer's answer; connecting starts at once.

        An answer that fails the checks raises ``RemoteSdpError`` and leaves the link
        waiting for a good one; an answer aiortc refuses fails the link.
        """
        if not self._is_offerer:
            raise LocalTransportError("only the link that made the offer can apply an answer")
        if self._answer_applied:
            raise LocalTransportError("an answer was already applied to this link")
        self._raise_if_final()
        check_remote_sdp(answer_sdp, "answer")
        self._answer_applied = True
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        except Exception as exc:
            reason = f"SDP answer refused by aiortc: {_one_line(exc)}"
            self._finish(LinkState.FAILED, reason)
            raise RemoteSdpError(reason) from exc
        self._set_state(LinkState.CONNECTING)

    # -- use ------------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def close_reason(self) -> str | None:
        """Why the link closed or failed; ``None`` while it is alive."""
        return self._close_reason

    @property
    def selected_path(self) -> str | None:
        """``"turn"`` if the nominated ICE pair has a relayed candidate on either side,
        ``"direct"`` for any other pair, ``None`` before ICE nominated one."""
        try:
            # aioice keeps the nominated pair per component; a data channel uses component 1.
            connection = self._pc.sctp.transport.transport._connection  # type: ignore[union-attr]
            pair = connection._nominated.get(1)
        except AttributeError:
            return None
        if pair is None:
            return None
        relayed = "relay" in (pair.local_candidate.type, pair.remote_candidate.type)
        return "turn" if relayed else "direct"

    def take_late_nomination(self) -> None:
        """Re-check the pairs the remote peer nominated after ICE completed.

        aioice 0.13 cancels every check still running when ICE completes (``connect``)
        and leaves those pairs in progress for good, so a pair the browser nominates
        later (Chromium starts on the first pair that answers, often a TURN one, and
        moves to a better one a moment after) is never checked again and aioice keeps
        sending on the first pair. A fresh check of such a pair succeeds, and its
        success takes the browser's nomination (RFC 8445 7.3.1.5): both ends then use
        the same pair. Cheap; call it now and then on an open link.
        """
        try:
            connection = self._pc.sctp.transport.transport._connection  # type: ignore[union-attr]
            pairs = list(connection._check_list)
        except AttributeError:
            return
        for pair in pairs:
            stalled = pair.task is None or pair.task.done()
            if pair.remote_nominated and pair.state is _IN_PROGRESS and stalled:
                pair.task = None
                connection.check_state(pair, _WAITING)
                connection.check_start_task(pair)

    @property
    def buffered_amount(self) -> int:
        """Bytes handed to ``send`` and not yet passed to SCTP (the send buffer)."""
        return 0 if self._channel is None else self._channel.bufferedAmount

    # The timeout is a parameter, not left to the caller's asyncio.timeout, because
    # running out of it also fails and releases the link.
    async def async_wait_open(self, timeout: float) -> None:
        """Wait until the link is open.

        Raises ``LinkTimeoutError`` after ``timeout`` seconds (the link is then failed and
        released) and ``LinkFailedError`` / ``LinkClosedError`` if it ended first.
        """
        if self._state is LinkState.OPEN:
            return
        self._raise_if_final()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._settled)
        except TimeoutError:
            if self._settled.done():  # opened or ended just as time ran out
                self._raise_if_final()
                return
            reason = f"the link did not open within {timeout:g} s"
            self._finish(LinkState.FAILED, reason)
            raise LinkTimeoutError(reason) from None
        self._raise_if_final()

    def send(self, data: bytes) -> None:
        """Queue one binary message; it arrives whole, in order, exactly once.

        Raises ``MessageTooLargeError`` over ``MAX_MESSAGE_SIZE``, ``SendBufferFullError``
        if the send buffer would pass ``MAX_BUFFERED_AMOUNT`` (use ``async_drain``),
        ``LinkClosedError`` if the link has ended and ``LocalTransportError`` if it is not
        open yet.
        """
        channel = self._channel
        if self._state is not LinkState.OPEN or channel is None:
            self._raise_if_final()
            raise LocalTransportError("the link is not open yet")
        if type(data) is not bytes:
            raise TypeError(f"messages must be bytes, not {type(data).__name__}")
        size = len(data)
        if size > MAX_MESSAGE_SIZE:
            raise MessageTooLargeError(
                f"message of {size} bytes is over the {MAX_MESSAGE_SIZE}-byte limit"
            )
        if channel.bufferedAmount + size > MAX_BUFFERED_AMOUNT:
            raise SendBufferFullError(
                f"send buffer is full ({channel.bufferedAmount} bytes queued); "
                "await async_drain() between sends"
            )
        channel.send(data)

    async def async_drain(self, low_water: int = DEFAULT_LOW_WATER) -> None:
        """Wait until at most ``low_water`` bytes wait in the send buffer.

        A sender of many messages awaits this every so often (or whenever
        ``buffered_amount`` is over ``low_water``) so memory stays bounded. Uses the
        data channel's ``bufferedamountlow`` event, no polling. Raises
        ``LinkClosedError`` if the link ends while waiting.
        """
        if low_water < 0:
            raise LocalTransportError("low_water must be >= 0")
        await self._async_wait_buffered(
            lambda: self._channel, self._drain_waiters, low_water, "data channel"
        )

    @property
    def files_buffered_amount(self) -> int:
        """Bytes of file chunks handed to ``async_send_file_chunk`` and not yet passed to SCTP."""
        return 0 if self._files_channel is None else self._files_channel.bufferedAmount

    async def async_send_file_chunk(self, data: bytes) -> None:
        """Send one message on the files channel once it holds at most ``FILES_LOW_WATER``.

        Waits (on the channel's ``bufferedamountlow`` event, no polling) and then queues
        ``data`` in the same step, so at each send the channel holds at most
        ``FILES_LOW_WATER`` plus this message, however many callers wait. Raises
        ``MessageTooLargeError`` over ``MAX_MESSAGE_SIZE``, ``LinkClosedError`` /
        ``LinkFailedError`` if the link ends (also while waiting) and
        ``LocalTransportError`` if it is not open yet or has no files channel.
        """
        if type(data) is not bytes:
            raise TypeError(f"messages must be bytes, not {type(data).__name__}")
        if len(data) > MAX_MESSAGE_SIZE:
            raise MessageTooLargeError(
                f"file chunk of {len(data)} bytes is over the {MAX_MESSAGE_SIZE}-byte limit"
            )
        channel = await self._async_wait_buffered(
            lambda: self._files_channel, self._files_waiters, FILES_LOW_WATER, "files channel"
        )
        channel.send(data)

    async def async_close(self) -> None:
        """Close the link and release its sockets; idempotent.

        The peer sees the close at once (SCTP ABORT); ``on_closed`` runs if it has not.
        """
        self._finish(LinkState.CLOSED, "closed locally")
        if self._pc_close_task is not None:
            await asyncio.shield(self._pc_close_task)

    # -- private --------------------------------------------------------------------

    def _local_sdp(self) -> str:
        description = self._pc.localDescription
        if description is None or "a=candidate:" not in description.sdp:
            raise LinkFailedError(
                "ICE found no usable local address (no network interface is up, "
                "or the chosen interfaces have no address)"
            )
        return set_max_message_size(description.sdp, MAX_MESSAGE_SIZE)

    def _bound_sctp(self) -> None:
        # aiortc's SCTP would reassemble any amount of data before _on_channel_message
        # sees it; a peer that breaks a bound is cut off there, with the reason.
        sctp = self._pc.sctp
        if sctp is None:
            raise LinkFailedError("aiortc made no SCTP transport for the data channel")
        bound_sctp_transport(
            sctp, max_message_size=MAX_MESSAGE_SIZE, on_violation=self._fail_remote
        )

    async def _async_wait_buffered(
        self,
        get_channel: Callable[[], RTCDataChannel | None],
        waiters: list[asyncio.Future[None]],
        low_water: int,
        what: str,
    ) -> RTCDataChannel:
        """Wait until the channel holds at most ``low_water`` bytes; return it, open.

        The caller may send on it at once: nothing else runs between the check and that.
        """
        loop = asyncio.get_running_loop()
        while True:
            channel = get_channel()
            if self._state is not LinkState.OPEN:
                self._raise_if_final()
                raise LocalTransportError("the link is not open yet")
            if channel is None:
                raise LocalTransportError(f"this link has no {what}")
            if channel.readyState in ("closing", "closed"):  # the link ends with it
                raise LinkClosedError(f"the {what} is closed")
            if channel.readyState != "open":
                raise LocalTransportError(f"the {what} is not open yet")
            if channel.bufferedAmount <= low_water:
                return channel
            # The event fires when the amount falls from above the threshold to at or
            # below it; with several waiters the last threshold set wins and the others
            # re-check when woken, so each returns once its own level is reached.
            channel.bufferedAmountLowThreshold = low_water
            waiter: asyncio.Future[None] = loop.create_future()
            waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in waiters:
                    waiters.remove(waiter)

    def _add_files_channel(self) -> None:
        channel = self._pc.createDataChannel(
            FILES_CHANNEL_LABEL, ordered=True, negotiated=True, id=FILES_CHANNEL_ID
        )
        self._files_channel = channel
        channel.on("message", self._on_files_message)
        channel.on("close", self._on_channel_close)
        channel.on("bufferedamountlow", self._wake_files_waiters)

    def _attach_channel(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        channel.on("message", self._on_channel_message)
        channel.on("open", self._on_channel_open)
        channel.on("close", self._on_channel_close)
        channel.on("bufferedamountlow", self._wake_drain_waiters)
        if channel.readyState == "open":
            self._on_channel_open()

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        # The files channel is pre-agreed, so it never comes this way: the peer may open
        # the chat channel, once, and nothing else.
        if self._channel is not None:
            channel.close()
            self._fail_remote(
                f"the peer opened another data channel {channel.label[:40]!r} "
                f"(only {CHANNEL_LABEL!r} may be opened, once)"
            )
        elif (
            channel.label != CHANNEL_LABEL
            or not channel.ordered
            or channel.maxRetransmits is not None
            or channel.maxPacketLifeTime is not None
        ):
            channel.close()
            self._fail_remote(
                f"the peer opened an unexpected data channel {channel.label[:40]!r} "
                f"(want {CHANNEL_LABEL!r}, ordered and reliable)"
            )
        else:
            self._attach_channel(channel)

    def _on_channel_message(self, data: bytes | str) -> None:
        # Hot path: keep it to a type check, a length check and the callback.
        if type(data) is not bytes:
            self._fail_remote("the peer sent a text message; only binary ones are allowed")
        elif len(data) > MAX_MESSAGE_SIZE:
            self._fail_remote(f"the peer sent a message over {MAX_MESSAGE_SIZE} bytes")
        elif self._state is LinkState.OPEN:
            try:
                self._on_message(data)
            except Exception:
                # Raising into aiortc would break its SCTP receive loop.
                logger.exception("on_message callback raised; message dropped")

    def _on_files_message(self, data: bytes | str) -> None:
        # Hot path, as _on_channel_message. The SCTP bounds already cap the size; the
        # check here keeps this channel's rule in one place.
        if type(data) is not bytes:
            self._fail_remote(
                "the peer sent a text message on the files channel; only binary ones are allowed"
            )
        elif len(data) > MAX_MESSAGE_SIZE:
            self._fail_remote(f"the peer sent a file chunk over {MAX_MESSAGE_SIZE} bytes")
        elif self._state is LinkState.OPEN and self.on_file_chunk is not None:
            try:
                self.on_file_chunk(data)
            except Exception:
                logger.exception("on_file_chunk callback raised; chunk dropped")

    def _on_channel_open(self) -> None:
        if self._state in (LinkState.NEW, LinkState.CONNECTING):
            self._set_state(LinkState.OPEN)

    def _on_channel_close(self) -> None:
        # aiortc reports a lost connection as a close, never as "failed": when ICE
        # consent expires, aioice closes, DTLS sees a ConnectionError, and the channel
        # and then the peer connection close. An orderly close by the peer instead
        # arrives as an SCTP ABORT or stream reset while DTLS is still connected.
        sctp = self._pc.sctp
        if sctp is not None and sctp.transport.state == "connected":
            self._finish(LinkState.CLOSED, "the peer closed the link")
        else:
            self._finish(LinkState.FAILED, _CONNECTION_LOST)

    def _on_connection_state_change(self) -> None:
        connection_state = self._pc.connectionState
        if connection_state == "failed":
            self._finish(LinkState.FAILED, "the connection failed (ICE or DTLS)")
        elif connection_state == "closed":
            # Not closed by us (that would have finished the link first): aiortc closes
            # the peer connection itself once DTLS has ended.
            self._finish(LinkState.FAILED, _CONNECTION_LOST)

    def _wake_drain_waiters(self) -> None:
        _wake(self._drain_waiters)

    def _wake_files_waiters(self) -> None:
        _wake(self._files_waiters)

    def _fail_remote(self, reason: str) -> None:
        logger.warning("closing data channel link: %s", reason)
        self._finish(LinkState.FAILED, reason)

    def _raise_if_final(self) -> None:
        if self._state is LinkState.FAILED:
            raise LinkFailedError(f"the link failed: {self._close_reason}")
        if self._state is LinkState.CLOSED:
            raise LinkClosedError(f"the link is closed: {self._close_reason}")

    def _set_state(self, new: LinkState) -> None:
        if new is self._state:
            return
        if new not in _TRANSITIONS[self._state]:
            raise AssertionError(f"bad link transition {self._state.value} -> {new.value}")
        self._state = new
        if (new is LinkState.OPEN or new in _FINAL_STATES) and not self._settled.done():
            self._settled.set_result(None)

    def _finish(self, state: LinkState, reason: str) -> None:
        """Move to a final state (once), release aiortc, tell the owner."""
        if self._state in _FINAL_STATES:
            return
        self._close_reason = reason
        self._set_state(state)
        self._wake_drain_waiters()
        self._wake_files_waiters()
        if self._pc_close_task is None:
            self._pc_close_task = asyncio.ensure_future(self._pc.close())
        if self._on_closed is not None:
            try:
                self._on_closed()
            except Exception:
                logger.exception("on_closed callback raised")

    async def _async_abandon(self, reason: str) -> None:
        """Release a link that failed during construction, without calling on_closed."""
        self._on_closed = None
        self._finish(LinkState.FAILED, reason)
        if self._pc_close_task is not None:
            await asyncio.shield(self._pc_close_task)


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    # Emptied in place: _async_wait_buffered holds this very list.
    woken = waiters[:]
    waiters.clear()
    for waiter in woken:
        if not waiter.done():
            waiter.set_result(None)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else "") or type(exc).__name__
