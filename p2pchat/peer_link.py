"""One live chat session with one peer: a data channel plus the sans-I/O Session.

The adapter loop of DESIGN.md: channel bytes → ``Session.receive_data`` → events
→ the node; the node's sends → ``Session`` → channel. Pings keep a quiet link
honest: ICE consent takes ~30 s to notice a cut cable, a missed pong takes
``ping_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.events import Event, PingReceived, PongReceived, SessionOpened
from p2pchat.protocol.session import Session, SessionState
from p2pchat.transport.errors import TransportError
from p2pchat.transport.webrtc import DataChannelLink

logger = logging.getLogger(__name__)

PING_INTERVAL = 2.0
PING_TIMEOUT = 7.0
OPEN_TIMEOUT = 15.0


def now_ms() -> int:
    return int(time.time() * 1000)


class PeerLink:
    """``state``: "connecting", "open" or "closed" (final)."""

    def __init__(
        self,
        peer_key: bytes,
        session: Session,
        *,
        on_event: Callable[[PeerLink, Event], None],
        on_closed: Callable[[PeerLink, str], None],
    ) -> None:
        self.peer_key = peer_key
        self.session = session
        self.state = "connecting"
        self.opened = False  # ever open: its closing is worth telling
        self.close_reason: str | None = None
        self.send_lock = asyncio.Lock()  # keeps outbox flushes and new sends in order
        self._on_event = on_event
        self._on_closed = on_closed
        self._link: DataChannelLink | None = None
        self._last_heard = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- wiring ----------------------------------------------------------------

    def attach(self, link: DataChannelLink) -> None:
        self._link = link
        self._spawn(self._async_open_and_keep_alive())

    def feed(self, data: bytes) -> None:
        """The data channel's ``on_message`` callback."""
        if self.state == "closed":
            return
        self._last_heard = time.monotonic()
        try:
            events = self.session.receive_data(data, now_ms())
        except ProtocolError as exc:
            self.close(f"peer sent bad data ({exc.code}): {exc}")
            return
        for event in events:
            if isinstance(event, SessionOpened):
                self.state = "open"
                self.opened = True
            if isinstance(event, PingReceived):
                self.send(self.session.pong(event.ping_id, now_ms()))
            elif not isinstance(event, PongReceived):
                self._on_event(self, event)

    def link_closed(self) -> None:
        """The data channel's ``on_closed`` callback."""
        reason = (self._link.close_reason if self._link else None) or "the link closed"
        self.close(reason)

    # -- use ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self._link is None or self.state == "closed":
            raise TransportError("no open link to this peer")
        self._link.send(data)

    async def async_drain(self) -> None:
        if self._link is not None:
            await self._link.async_drain()

    def close(self, reason: str) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.close_reason = reason
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self._link is not None:
            link = self._link
            if self.session.state is SessionState.OPEN:
                with contextlib.suppress(Exception):
                    link.send(self.session.close(now_ms()))
            asyncio.get_running_loop().create_task(link.async_close())
        self._on_closed(self, reason)

    # -- private -----------------------------------------------------------------

    async def _async_open_and_keep_alive(self) -> None:
        assert self._link is not None
        try:
            await self._link.async_wait_open(OPEN_TIMEOUT)
            self.send(self.session.stream_header())
            if self.session.state is SessionState.OPEN and self.state != "open":
                self.state = "open"
                self.opened = True
                self._on_event(self, SessionOpened())
            while self.state != "closed":
                await asyncio.sleep(PING_INTERVAL)
                if time.monotonic() - self._last_heard > PING_TIMEOUT:
                    self.close("peer stopped answering")
                    return
                if self.session.state is SessionState.OPEN:
                    _, ping = self.session.send_ping(now_ms())
                    self.send(ping)
        except (TransportError, ProtocolError) as exc:
            self.close(str(exc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
