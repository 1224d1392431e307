"""WAL checkpoints between messages, not inside one.

SQLite checkpoints the WAL inside the commit that takes it past 1000 pages: that
commit then copies ~4 MB of pages into the database file and syncs it, several ms
in the middle of a message's send or its receipt (the LAN RTT's slowest 1 %). The
node turns that off on its own connection and checkpoints once it has written
nothing for ``IDLE_S``, or after ``MAX_WRITES`` commits without a pause, so the WAL
stays bounded under a stream that never pauses. Other
connections (``p2pchat history`` while the node runs) keep SQLite's default.
"""

from __future__ import annotations

import asyncio
import logging

from p2pchat.store import Profile

logger = logging.getLogger(__name__)

IDLE_S = 0.5
# Commits between two checkpoints at most. A message's commit writes a few pages; a
# group commit or a flush, a few more: some thousands of pages, ~10 MB of WAL.
MAX_WRITES = 500


class WalCheckpoints:
    def __init__(self, profile: Profile, *, idle_s: float = IDLE_S) -> None:
        self._profile = profile
        self._idle_s = idle_s
        self._last_write = 0.0
        self._writes = 0  # commits since the last checkpoint
        self._timer: asyncio.TimerHandle | None = None
        profile.checkpoint_on_commit(False)

    def wrote(self) -> None:
        """The node committed something: checkpoint once it has been idle a while, or
        now after too many commits without a pause."""
        loop = asyncio.get_running_loop()
        self._last_write = loop.time()
        self._writes += 1
        if self._writes == MAX_WRITES:  # after what is running now (a message on its way)
            loop.call_soon(self.checkpoint)
        elif self._timer is None:
            self._timer = loop.call_later(self._idle_s, self._on_timer)

    def checkpoint(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writes = 0
        try:
            self._profile.checkpoint()
        except Exception as exc:  # a callback: nothing may escape it (a busy reader)
            logger.debug("WAL checkpoint skipped: %s", exc)

    def _on_timer(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        idle_for = loop.time() - self._last_write
        if idle_for >= self._idle_s:
            self.checkpoint()
        else:  # written to since: wait until it has been idle that long
            self._timer = loop.call_later(self._idle_s - idle_for, self._on_timer)
