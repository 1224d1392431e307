"""The node's events from before it starts, for a screen that comes up later.

The main screen is mounted a moment after the node has started, and a
contact's queued messages often arrive in between (their outbox empties as
soon as they see us). EventFeed subscribes before the node starts and keeps
what comes, bounded, until the screen reads it: none of those messages goes
uncounted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from p2pchat.node.events import NodeEvent

#: Events kept for a reader that has not come yet. Past it the feed stops reading,
#: and the node's own bound applies (the reader then gets events_dropped and the
#: present state).
MAX_BACKLOG = 1000


class EventFeed:
    def __init__(self, source: AsyncIterator[NodeEvent]) -> None:
        self._source = source
        self._queue: asyncio.Queue[NodeEvent] = asyncio.Queue(MAX_BACKLOG)
        self._task: asyncio.Task[None] | None = None

    async def async_start(self) -> None:
        """Subscribed once this returns: the pump has run up to its first wait."""
        self._task = asyncio.get_running_loop().create_task(self._pump())
        await asyncio.sleep(0)

    async def async_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def events(self) -> AsyncIterator[NodeEvent]:
        while True:
            yield await self._queue.get()

    async def _pump(self) -> None:
        async for event in self._source:
            await self._queue.put(event)
