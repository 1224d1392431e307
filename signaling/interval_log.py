"""A warning that a flood (refused connections, failed Redis writes) turns into one
line per interval instead of one per event."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class IntervalLog:
    """A warning logged at most once per ``interval`` seconds; the ones held back are
    counted into the next."""

    def __init__(
        self,
        interval: float,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._logger = logger
        self._clock = clock
        self._next: float | None = None
        self._held_back = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._held_back += 1
            return
        if self._held_back:
            message += f" ({self._held_back} more in the last {self._interval:g} s)"
        self._logger.warning(message, *args)
        self._held_back = 0
        self._next = now + self._interval
