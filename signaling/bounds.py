"""Bounds shared by the server and the owner client: token buckets and a bounded
outgoing queue per WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one token per event."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._stamp = float(burst), now

    def take(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class ByteBudget:
    """``rate`` bytes a second, at most ``burst`` saved up. A message is never refused:
    :meth:`take` says how long to wait before reading on, so a sender past the budget
    is slowed down (TCP backpressure), never cut off in the middle of a transfer."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._stamp = float(burst), now

    def take(self, size: int, now: float) -> float:
        """Spend ``size`` bytes; the seconds to wait until the budget is back at zero."""
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class AddressBuckets:
    """A token bucket per client address, at most ``max_addresses`` of them (the one
    heard from least recently is forgotten first)."""

    def __init__(self, rate: float, burst: int, max_addresses: int) -> None:
        self._rate, self._burst, self._max = rate, burst, max_addresses
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, address: str, now: float) -> bool:
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, now)
        if len(self._buckets) >= self._max:
            self._buckets.popitem(last=False)
        self._buckets[address] = bucket
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)


class Socket(Protocol):
    """What :class:`Outbox` needs of a WebSocket (server or client side)."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class Outbox:
    """Messages waiting for one WebSocket, at most ``max_bytes`` and ``max_items``.

    Drained in order by a task that exists only while something is queued, so an idle
    socket costs no task. :meth:`close` queues a close after what is queued.
    """

    __slots__ = (
        "_bytes",
        "_items",
        "_max_bytes",
        "_max_items",
        "_on_sent",
        "_task",
        "_waiters",
        "_ws",
    )

    def __init__(
        self,
        ws: Socket,
        max_bytes: int,
        max_items: int,
        *,
        on_sent: Callable[[bytes | str], None] | None = None,
    ) -> None:
        """``on_sent(item)``: an item was written to the socket (flow control)."""
        self._ws = ws
        self._on_sent = on_sent
        self._max_bytes, self._max_items = max_bytes, max_items
        self._items: deque[bytes | str | _Close] = deque()
        self._bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def push(self, item: bytes | str, *, force: bool = False) -> bool:
        """Queue ``item``; False (nothing queued) when over the bounds. ``force``
        ignores the bounds: only for small control messages sent once per peer."""
        over = self._bytes + len(item) > self._max_bytes or len(self._items) >= self._max_items
        if over and not force:
            return False
        self._items.append(item)
        self._bytes += len(item)
        self._kick()
        return True

    def close(self, code: int, reason: str, *, drop_queued: bool = False) -> None:
        if drop_queued:
            self.clear()
        self._items.append(_Close(code, reason))
        self._kick()

    def clear(self) -> None:
        """Drop what is queued; a send in progress finishes."""
        self._items.clear()
        self._bytes = 0
        self._wake()

    async def async_wait_below(self, limit: int) -> None:
        """Return once at most ``limit`` bytes are queued (or the queue was dropped):
        a bulk sender waits here instead of filling the queue to its bound."""
        if self._bytes <= limit:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((limit, waiter))
        try:
            await waiter
        finally:
            if not waiter.done():  # cancelled: forget it
                self._waiters = [w for w in self._waiters if w[1] is not waiter]

    def cancel(self) -> None:
        """Drop what is queued and stop a send in progress."""
        self.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def _kick(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._items:
                item = self._items.popleft()
                if isinstance(item, _Close):
                    self.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await self._ws.close(code=item.code, message=item.reason.encode()[:123])
                    return
                self._bytes -= len(item)
                if isinstance(item, bytes):
                    await self._ws.send_bytes(item)
                else:
                    await self._ws.send_str(item)
                if self._on_sent is not None:
                    self._on_sent(item)
                self._wake()
        except (ConnectionError, RuntimeError):
            self.clear()  # the socket is going away; its reader cleans up
        finally:
            self._task = None
            self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for limit, waiter in self._waiters:
            if waiter.done():
                continue
            if self._bytes <= limit:
                waiter.set_result(None)
            else:
                keep.append((limit, waiter))
        self._waiters = keep
