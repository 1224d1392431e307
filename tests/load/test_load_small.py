"""Small load runs for CI (issue 6, part 3): correctness under load, never timing.

The figures (how fast, how much memory, where it degrades) come from
bench/bench_load.py; these tests use the same code at a size CI runs in seconds, and
assert only that everything was served and delivered: every guest socket connected and
got each of its messages echoed, once, in order; every queued message reached the
peer once, in order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bench.bench_load import ServerProcess, bench_store, echo_all, open_guests, raise_fd_limit
from tests.conftest import require_netns

GUESTS = 300
OUTBOX = 200


async def test_signaling_serves_every_guest() -> None:
    raise_fd_limit(2 * GUESTS + 256)
    async with (
        ServerProcess() as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        sockets, failed = await open_guests(http, server.url, GUESTS)
        try:
            assert failed == 0
            assert len(sockets) == GUESTS
            relay = await echo_all(sockets, per_guest=5)
            assert relay["failed"] == 0
            assert relay["wrong_echo"] == 0  # each echo is the message just sent
            assert relay["messages"] == GUESTS * 5
            assert all(not ws.closed for ws in sockets)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def test_profile_with_many_contacts_and_a_full_outbox() -> None:
    result = bench_store(contacts=300, outbox=1000, outbox_contacts=2)
    assert result["listed"] == 300
    assert result["outbox_bound_enforced"]  # the 1001st entry is refused (OutboxFull)


@pytest.mark.lan
def test_outbox_of_200_flushes_once_in_order(tmp_path: Path) -> None:
    require_netns()
    from bench.bench_load import outbox_flush

    result = outbox_flush(OUTBOX, timeout=300)  # asserts: each once, in order
    assert result["lost"] == 0
    assert result["messages"] == OUTBOX
