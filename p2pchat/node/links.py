"""One live chat session with one peer: a channel plus the sans-I/O Session.

The adapter loop of DESIGN.md: channel bytes → ``Session.receive_data`` → events
→ the node; the node's sends → ``Session`` → channel. Pings keep a quiet link
honest: ICE consent takes ~30 s to notice a cut cable, a missed pong takes
``PING_TIMEOUT``.

Two ways to start the streams:

* LAN peers (:meth:`PeerLink.attach`): both sides send their stream header as
  soon as the data channel opens.
* Browser guests (:class:`GuestLink`): the guest picks the path (the data
  channel, or the WebSocket relay when no direct connection comes up) by sending
  its header on it; the owner answers with its own header on the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from p2pchat.protocol.batch import Batcher
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import Event, PingReceived, PongReceived, SessionOpened
from p2pchat.protocol.session import Session, SessionState
from p2pchat.transport.errors import TransportError
from p2pchat.transport.webrtc import DataChannelLink

logger = logging.getLogger(__name__)

PING_INTERVAL = 2.0
PING_TIMEOUT = 7.0
OPEN_TIMEOUT = 15.0
GUEST_HEADER_TIMEOUT = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Channel(Protocol):
    """What a session runs over: a data channel, or the guest relay."""

    @property
    def close_reason(self) -> str | None: ...
    def send(self, data: bytes) -> None: ...
    async def async_drain(self) -> None: ...
    async def async_close(self) -> None: ...


class PeerLink:
    """``state``: "connecting", "open" or "closed" (final)."""

    def __init__(
        self,
        peer_ref: bytes,
        session: Session,
        *,
        on_event: Callable[[PeerLink, Event], None],
        on_closed: Callable[[PeerLink, str], None],
    ) -> None:
        self.peer_ref = peer_ref  # a contact's public key, or a guest's id
        self.session = session
        self.state = "connecting"
        self.opened = False  # ever open: its closing is worth telling
        self.close_reason: str | None = None
        self.send_lock = asyncio.Lock()  # keeps outbox flushes and new sends in order
        # Outbox entries sent on this session and not yet acknowledged: a flush asked
        # for again (a new group copy) sends only what this session has not had yet.
        self.sent_ids: set[bytes] = set()
        self._on_event = on_event
        self._on_closed = on_closed
        self._channel: Channel | None = None
        self._batcher = Batcher()  # sealed messages of this loop turn, when batching
        self._flush_armed = False
        self._last_heard = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        # LAN only: the files channel (node/files.py sets the handler once the session opens).
        self._lan: DataChannelLink | None = None
        self.file_chunk_handler: Callable[[PeerLink, bytes], None] | None = None
        self._closed = asyncio.Event()

    @property
    def peer_key(self) -> bytes:
        return self.peer_ref

    @property
    def chunk_path(self) -> str:
        """What carries this session's file chunks (a transfer's ``path_used``)."""
        return "datachannel"

    # -- wiring ----------------------------------------------------------------

    def attach(self, link: DataChannelLink) -> None:
        """LAN: send our header once the channel opens, then keep the link alive."""
        self._channel = self._lan = link
        link.on_file_chunk = self._on_file_chunk
        self._spawn(self._async_open_lan(link))

    def feed(self, data: bytes) -> None:
        """The channel's ``on_message`` callback."""
        if self.state == "closed":
            return
        self._last_heard = time.monotonic()
        try:
            events = self.session.receive_data(data, now_ms())
        except ProtocolError as exc:
            self.close(f"peer sent bad data ({exc.code}): {exc}")
            return
        for event in events:  # a batch: several, in order
            if self.state == "closed":  # an event before closed the link (a store failure)
                return
            if isinstance(event, SessionOpened):
                self._mark_open()
            elif isinstance(event, PingReceived):
                self.send(self.session.pong(event.ping_id, now_ms()))
            elif not isinstance(event, PongReceived):
                self._on_event(self, event)

    def link_closed(self) -> None:
        """The channel's ``on_closed`` callback."""
        reason = (self._channel.close_reason if self._channel else None) or "the link closed"
        self.close(reason)

    # -- use ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send one sealed message; with batches, at the end of this loop turn at the latest."""
        if self._channel is None or self.state == "closed":
            raise TransportError("no open link to this peer")
        if not self.session.batching:
            self._channel.send(data)
            return
        for batch in self._batcher.add(data):  # the batch before this one is full
            self._send_batch(self._channel, batch)
        if not self._flush_armed:
            # The first message of a turn asks for the flush: a lone one waits no
            # timer, only for what the current callback still queues.
            self._flush_armed = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def async_drain(self) -> None:
        if self._channel is not None:
            await self._channel.async_drain()

    async def async_send_file_chunk(self, data: bytes) -> None:
        """One file chunk on the files channel, once it has room (TransportError: gone)."""
        if self._lan is None or self.state != "open":
            raise TransportError("no open link to this peer")
        await self._lan.async_send_file_chunk(data)

    async def async_wait_closed(self) -> None:
        await self._closed.wait()

    def close(self, reason: str) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.close_reason = reason
        self._closed.set()
        self.file_chunk_handler = None
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for channel in self._channels():
            if self.session.state is SessionState.OPEN and channel is self._channel:
                with contextlib.suppress(Exception):
                    self._send_last(channel, self.session.close(now_ms()))
            asyncio.get_running_loop().create_task(channel.async_close())
        self._on_closed(self, reason)

    # -- private -----------------------------------------------------------------

    def _channels(self) -> list[Channel]:
        return [self._channel] if self._channel is not None else []

    def _on_file_chunk(self, data: bytes) -> None:
        handler = self.file_chunk_handler
        if handler is not None and self.state == "open":
            self._last_heard = time.monotonic()
            handler(self, data)

    def _flush(self) -> None:
        self._flush_armed = False
        batch = self._batcher.flush()
        if batch is None or self._channel is None or self.state == "closed":
            return
        try:
            self._channel.send(batch)
        except TransportError as exc:
            self.close(f"could not send: {exc}")

    def _send_batch(self, channel: Channel, batch: bytes) -> None:
        try:
            channel.send(batch)
        except TransportError as exc:
            # The stream moved past what was lost: nothing after it would open.
            self.close(f"could not send: {exc}")
            raise

    def _send_last(self, channel: Channel, close_frame: bytes) -> None:
        """What is still queued, then the CLOSE frame: last, as the stream requires."""
        if not self.session.batching:
            channel.send(close_frame)
            return
        for batch in self._batcher.add(close_frame):
            channel.send(batch)
        last = self._batcher.flush()
        assert last is not None
        channel.send(last)

    def _mark_open(self) -> None:
        if self.state == "connecting":
            self.state = "open"
            self.opened = True
            self._on_event(self, SessionOpened())

    async def _async_open_lan(self, link: DataChannelLink) -> None:
        try:
            await link.async_wait_open(OPEN_TIMEOUT)
            link.send(self.session.stream_header())  # never batched: it starts the stream
            if self.session.state is SessionState.OPEN:
                self._mark_open()
            await self._async_keep_alive()
        except (TransportError, ProtocolError) as exc:
            self.close(str(exc))

    async def _async_keep_alive(self) -> None:
        while self.state != "closed":
            await asyncio.sleep(PING_INTERVAL)
            if time.monotonic() - self._last_heard > PING_TIMEOUT:
                self.close("peer stopped answering")
                return
            if self.session.state is SessionState.OPEN:
                _, ping = self.session.send_ping(now_ms())
                self.send(ping)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class RelayFiles(Channel, Protocol):
    """The guest relay also carries file chunks (FILE messages beside RELAY ones)."""

    async def async_send_file_chunk(self, data: bytes) -> None: ...


class GuestLink(PeerLink):
    """A browser guest's session: the guest's header picks the path (direct or relay).
    On the relay, file chunks go as their own socket messages (FILE), apart from the
    secret stream (RELAY)."""

    def __init__(
        self,
        guest_ref: bytes,
        session: Session,
        relay: RelayFiles,
        *,
        on_event: Callable[[PeerLink, Event], None],
        on_closed: Callable[[PeerLink, str], None],
    ) -> None:
        super().__init__(guest_ref, session, on_event=on_event, on_closed=on_closed)
        self.relay = relay
        self.direct: DataChannelLink | None = None
        self.path: str | None = None  # "direct" | "relay", once the guest chose
        self.relay_reason = ""  # why the owner offered no direct path, if it did not

    def start(self, direct: DataChannelLink | None) -> None:
        """Wait for the guest's header, on ``direct`` or the relay (``None``: relay only)."""
        self.direct = direct
        if direct is not None:  # file chunks count only once the guest picks this path
            direct.on_file_chunk = self._on_file_chunk
        self._spawn(self._async_await_header())

    def feed_direct(self, data: bytes) -> None:
        if self.direct is not None:
            self._feed_via(self.direct, "direct", data)

    def feed_relay(self, data: bytes) -> None:
        self._feed_via(self.relay, "relay", data)

    def feed_relay_file(self, data: bytes) -> None:
        """A FILE message from the guest's socket: a chunk, if the session is there."""
        if self.path == "relay":
            self._on_file_chunk(data)

    @property
    def chunk_path(self) -> str:
        return "relay" if self.path == "relay" else "datachannel"

    async def async_send_file_chunk(self, data: bytes) -> None:
        if self.path != "relay":
            await super().async_send_file_chunk(data)
            return
        if self.state != "open":
            raise TransportError("no open link to this guest")
        await self.relay.async_send_file_chunk(data)
        if self.state != "open":  # the socket went while we waited for room
            raise TransportError("the guest's connection closed")

    def direct_closed(self) -> None:
        if self.path == "direct":
            self.link_closed()

    def _feed_via(self, channel: Channel, path: str, data: bytes) -> None:
        if self.path is None:
            self.path = path
            self._channel = channel
            if path == "direct":
                self._lan = self.direct  # its files channel carries the chunks
            self.feed(data)  # the guest's stream header
            if self.state == "closed":
                return
            try:
                channel.send(self.session.stream_header())  # never batched
            except (TransportError, ProtocolError) as exc:
                self.close(str(exc))
                return
            if self.session.state is SessionState.OPEN:
                self._mark_open()
                self._spawn(self._async_keep_alive())
            elif self.session.awaiting_confirmation:
                # A password link opens on the guest's first authenticated frame
                # (feed reports it); till then a silent guest ends by the keep-alive.
                self._spawn(self._async_keep_alive())
            if path == "relay" and self.direct is not None:
                # ICE may still be trying (it waits for the browser's checks as long
                # as it lives): the session stays on the relay, so let its sockets go.
                direct, self.direct = self.direct, None
                asyncio.get_running_loop().create_task(direct.async_close())
        elif path == self.path:
            self.feed(data)
        # Data on the path not chosen is ignored: the session lives on one path.

    def _channels(self) -> list[Channel]:
        channels: list[Channel] = [self.relay]
        if self.direct is not None:
            channels.append(self.direct)
        # The chosen path first, so the CLOSE frame goes where the guest listens.
        return sorted(channels, key=lambda c: c is not self._channel)

    async def _async_await_header(self) -> None:
        await asyncio.sleep(GUEST_HEADER_TIMEOUT)
        if self.path is None:
            self.close("the guest never started the session")
