"""Guest counts in a real ``redis-server`` cannot drift: hundreds of guests closing at
once, a leave that fails while Redis hangs, and a Redis restart all end with each
instance's count in Redis equal to its guest sockets (the room cap holds). A room
state change or a FORGET that failed reaches Redis once it answers again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from redis.exceptions import RedisError

from signaling.app import Limits, relay_of
from signaling.connection_caps import ConnectionCaps
from signaling.owner_client import OwnerClient
from signaling.redis_store import RedisRoomStore, connect
from tests.integration.redis_fixtures import (
    TIMINGS,
    Instance,
    RedisProcess,
    start_instance,
    stop_instance,
)
from tests.integration.signaling_fakes import FakeOwner, close_of, new_room_id, ws_url

# Every test guest and owner is on 127.0.0.1: the per-address bounds are not tested here.
LIMITS = Limits(
    connections_per_address=1024,
    total_connections=1024,
    owners_per_address=64,
    connections_per_room=8,
    guest_sweep=0.2,
    owner_hello_timeout=2.0,
    tcp=ConnectionCaps(per_address=1024, total=1024),
    request_burst=1024,
)


@pytest.fixture
def redis_process(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    process = RedisProcess(tmp_path)
    process.start()
    yield process
    if process.proc is not None:  # a test may have stopped it (SIGSTOP)
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.proc.pid, signal.SIGCONT)
    process.kill()


@pytest.fixture
async def pair(redis_process: RedisProcess) -> AsyncIterator[list[Instance]]:
    """Owners on the first instance, guests on the second."""
    instances = [await start_instance(redis_process.url, LIMITS) for _ in range(2)]
    yield instances
    for instance in instances:
        await stop_instance(instance)


@pytest.fixture
async def many() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session without aiohttp's 100-connection limit."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait until ``check()`` holds (a bound, not a timing threshold: it fails a hang)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("never happened")
        await asyncio.sleep(0.05)


async def counts_in_redis(url: str, rooms: list[str], iid: str) -> list[int]:
    client = connect(url)
    try:
        values = [await client.hget(f"p2pchat:room:{room}:g", iid) for room in rooms]
    finally:
        await client.aclose()
    return [int(v) if v is not None else 0 for v in values]


async def guest_in(
    http: aiohttp.ClientSession, instance: Instance, room: str
) -> aiohttp.ClientWebSocketResponse:
    """A guest that reached the owner (an echo came back)."""
    ws = await http.ws_connect(ws_url(instance, f"/ws/{room}"))
    await ws.send_bytes(b"\x01hi")
    assert (await ws.receive_bytes(timeout=10)) == b"\x01hi"
    return ws


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info is not None]


async def test_hundreds_of_guests_closing_at_once_leave_no_count_behind(
    pair: list[Instance],
    redis_process: RedisProcess,
    many: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    a, b = pair
    hooks = FakeOwner(echo=True)
    owner = OwnerClient(a.base_url, hooks)
    rooms = [new_room_id() for _ in range(50)]
    for room in rooms:
        await owner.async_open_room(room, expires_at=time.time() + 600)
    # 300 guests over 50 rooms (at most 8 a room), all on B.
    order = [rooms[i % 50] for i in range(300)]
    rng.shuffle(order)
    caplog.set_level(logging.WARNING)
    guests = await asyncio.gather(*(guest_in(many, b, room) for room in order))
    expected = [order.count(room) for room in rooms]
    assert await counts_in_redis(redis_process.url, rooms, b.store.instance_id) == expected

    await asyncio.gather(*(ws.close() for ws in guests))

    relay = relay_of(b.server.app)

    async def all_zero() -> bool:
        counts = await counts_in_redis(redis_process.url, rooms, b.store.instance_id)
        return relay.guest_count == 0 and not any(counts)

    await eventually(all_zero)
    assert no_tracebacks(caplog) == [], f"seed {seed}"
    await owner.async_close()


async def test_a_leave_that_failed_is_repaired_once_redis_answers(
    pair: list[Instance], redis_process: RedisProcess, http: aiohttp.ClientSession
) -> None:
    _, b = pair
    hooks = FakeOwner(echo=True)
    owner = OwnerClient(b.base_url, hooks)  # its guests do not depend on its lease
    room = new_room_id()
    await owner.async_open_room(room, expires_at=time.time() + 600)
    first = await guest_in(http, b, room)
    second = await guest_in(http, b, room)
    iid = b.store.instance_id
    assert await counts_in_redis(redis_process.url, [room], iid) == [2]

    assert redis_process.proc is not None
    os.kill(redis_process.proc.pid, signal.SIGSTOP)  # Redis hangs: keeps its keys
    relay = relay_of(b.server.app)
    try:
        await first.close()

        async def leave_over() -> bool:  # failed, after its timeouts and retries
            return relay.guest_count == 1

        await eventually(leave_over, timeout=60)
    finally:
        os.kill(redis_process.proc.pid, signal.SIGCONT)

    async def repaired() -> bool:  # whatever B did meanwhile, Redis says what B has
        there = len(relay.guests.get(room, {}))
        return await counts_in_redis(redis_process.url, [room], iid) == [there]

    await eventually(repaired)
    await second.close()
    await owner.async_close()


async def test_after_a_redis_restart_a_full_room_stays_full(
    pair: list[Instance], redis_process: RedisProcess, http: aiohttp.ClientSession
) -> None:
    _, b = pair
    hooks = FakeOwner(echo=True)
    owner = OwnerClient(b.base_url, hooks)  # so no sweep closes its guests meanwhile
    room = new_room_id()
    await owner.async_open_room(room, expires_at=time.time() + 600)
    guests = [await guest_in(http, b, room) for _ in range(LIMITS.connections_per_room)]
    redis_process.restart()  # SIGKILL: every key is gone

    async def rewritten() -> bool:
        try:
            counts = await counts_in_redis(redis_process.url, [room], b.store.instance_id)
        except Exception:  # not back yet
            return False
        return counts == [LIMITS.connections_per_room]

    await eventually(rewritten)
    # One more guest: "try again" (1013) while the room is being restored, then full.
    async with asyncio.timeout(30):
        while True:
            async with http.ws_connect(ws_url(b, f"/ws/{room}")) as extra:
                code = await close_of(extra)
            if code == 1008:
                break
            assert code == 1013, code
            await asyncio.sleep(0.2)
    assert len({guest.id for _, guest, _ in hooks.messages}) == LIMITS.connections_per_room
    for ws in guests:
        await ws.close()
    await owner.async_close()


@contextlib.asynccontextmanager
async def redis_refusing(url: str) -> AsyncIterator[None]:
    """Redis keeps its keys but refuses every other client's commands (a password
    they do not have): a command fails at once and is surely not applied."""
    admin = connect(url, single_connection=True)
    try:
        await admin.config_set("requirepass", "not-theirs-0123456789")
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        yield
    finally:
        await admin.config_set("requirepass", "")
        await admin.aclose()


@pytest.fixture
async def store(redis_process: RedisProcess) -> AsyncIterator[RedisRoomStore]:
    client = connect(redis_process.url)
    room_store = RedisRoomStore(client, timings=TIMINGS)
    await room_store.async_start()
    yield room_store
    await room_store.async_stop()
    await client.aclose()


async def test_a_state_change_that_failed_reaches_redis_later(
    store: RedisRoomStore, redis_process: RedisProcess
) -> None:
    room, conn = new_room_id(), "c1"
    now = time.time()
    claim = await store.claim(room, conn=conn, claim_hash="h", expires_at=now + 600, now=now)
    assert claim.outcome == "ready"
    async with redis_refusing(redis_process.url):
        with pytest.raises(RedisError):
            await store.set_state(room, conn=conn, state="used-up")
    admin = connect(redis_process.url)

    async def used_up() -> bool:
        return await admin.hget(f"p2pchat:room:{room}", "state") == b"used-up"

    try:
        await eventually(used_up)
    finally:
        await admin.aclose()


async def test_a_room_whose_forget_failed_is_forgotten_later(
    store: RedisRoomStore, redis_process: RedisProcess
) -> None:
    room, conn = new_room_id(), "c1"
    now = time.time()
    claim = await store.claim(room, conn=conn, claim_hash="h", expires_at=now + 600, now=now)
    assert claim.outcome == "ready"
    async with redis_refusing(redis_process.url):
        with pytest.raises(RedisError):
            await store.forget(room, conn=conn)
    admin = connect(redis_process.url)

    async def gone() -> bool:
        return not await admin.exists(f"p2pchat:room:{room}")

    try:
        await eventually(gone)
    finally:
        await admin.aclose()
