"""signaling/interval_log.py: one warning per interval, counting the ones held back."""

from __future__ import annotations

import logging

import pytest

from signaling.interval_log import IntervalLog


def test_a_flood_is_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = IntervalLog(10.0, logging.getLogger("test.interval"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.interval"):
        for _ in range(5):
            log.warning("refused %s", "x")
        now[0] += 10.0
        log.warning("refused %s", "y")
        log.warning("refused %s", "z")
    assert [r.getMessage() for r in caplog.records] == [
        "refused x",
        "refused y (4 more in the last 10 s)",
    ]
