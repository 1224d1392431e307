"""Three in-process signaling instances sharing a real ``redis-server`` on loopback:
guests and owners on different instances, re-claims, the cluster-wide guest cap, a
Redis restart and an instance that dies."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from signaling.app import Limits, relay_of
from signaling.owner_client import OwnerClient
from signaling.redis_store import RedisRoomStore, connect
from tests.integration.redis_fixtures import (
    TIMINGS,
    Instance,
    RedisProcess,
    start_instance,
    stop_instance,
)
from tests.integration.signaling_fakes import (
    FakeOwner,
    claim_token,
    close_of,
    new_room_id,
    until_not_valid,
    ws_url,
)

# Many test guests share 127.0.0.1: the per-address bound is not what is tested here.
LIMITS = Limits(connections_per_address=256, guest_sweep=0.2, owner_hello_timeout=2.0)


@pytest.fixture
def redis_process(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    process = RedisProcess(tmp_path)
    process.start()
    yield process
    process.kill()


@pytest.fixture
async def cluster(redis_process: RedisProcess) -> AsyncIterator[list[Instance]]:
    instances = [await start_instance(redis_process.url, LIMITS) for _ in range(3)]
    yield instances
    for instance in instances:
        await stop_instance(instance)


async def settled(predicate: Callable[[], bool]) -> None:
    """Wait (up to 10 s) until ``predicate()`` holds."""
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never settled")


async def raw_owner(
    http: aiohttp.ClientSession, instance: Instance, room: str, claim: str | None
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, object]]:
    """An owner socket after its hello: (socket, the server's first reply)."""
    ws = await http.ws_connect(ws_url(instance, f"/owner/{room}"))
    hello: dict[str, object] = {"expires_at": time.time() + 600}
    if claim is not None:
        hello["claim"] = claim
    await ws.send_str(json.dumps(hello))
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return ws, json.loads(msg.data)


async def test_guest_and_owner_on_different_instances_talk_both_ways(
    cluster: list[Instance], http: aiohttp.ClientSession
) -> None:
    a, b, _ = cluster
    hooks = FakeOwner()
    owner = OwnerClient(a.base_url, hooks)
    room = new_room_id()
    try:
        await owner.async_open_room(room, expires_at=time.time() + 600)
        async with http.get(f"{b.base_url}/c/{room}") as page:
            assert page.status == 503  # live on B too (no page installed in tests)
        async with http.ws_connect(ws_url(b, f"/ws/{room}")) as guest_ws:
            await guest_ws.send_bytes(b"\x01offer")
            await hooks.wait_for(lambda: len(hooks.messages) == 1)
            room_id, guest, data = hooks.messages[0]
            assert (room_id, data, guest.remote) == (room, b"\x01offer", "127.0.0.1")
            for i in range(20):  # order kept both ways
                guest.send(b"\x02to-guest-%d" % i)
                await guest_ws.send_bytes(b"\x02to-owner-%d" % i)
            for i in range(20):
                assert (await guest_ws.receive_bytes(timeout=5)) == b"\x02to-guest-%d" % i
            await hooks.wait_for(lambda: len(hooks.messages) == 21)
            assert [m[2] for m in hooks.messages[1:]] == [b"\x02to-owner-%d" % i for i in range(20)]
            guest.close(4000, "session over")
            assert await close_of(guest_ws) == 4000
        await hooks.wait_for(lambda: len(hooks.closed) == 1)

        # The owner leaves: a guest on another instance is told and closed.
        async with http.ws_connect(ws_url(b, f"/ws/{room}")) as guest_ws:
            await guest_ws.send_bytes(b"\x01again")
            await hooks.wait_for(lambda: len(hooks.messages) == 22)
            await owner.async_leave_room(room)
            texts = []
            async with asyncio.timeout(10):
                while (msg := await guest_ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    texts.append(json.loads(msg.data))
            assert {"type": "owner_left"} in texts
            assert guest_ws.close_code == 1001
        async with http.ws_connect(ws_url(b, f"/ws/{room}")) as late:
            assert await close_of(late) == 4404
    finally:
        await owner.async_close()


async def test_the_same_claim_reclaims_on_another_instance(
    cluster: list[Instance], http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster
    room, claim = new_room_id(), claim_token()
    first, ready = await raw_owner(http, a, room, claim)
    assert ready["type"] == "ready"
    assert ready["reclaimed"] is False
    # A guest of the first connection, on a third instance.
    guest_ws = await http.ws_connect(ws_url(c, f"/ws/{room}"))
    await guest_ws.send_bytes(b"\x01hi")
    frame = await first.receive_bytes(timeout=10)
    assert frame[0] == 0x10  # GUEST_OPENED

    rival, refused = await raw_owner(http, b, room, claim_token())
    assert refused["type"] == "error"
    assert await close_of(rival) == 4409
    anonymous, refused = await raw_owner(http, b, room, None)
    assert await close_of(anonymous) == 4409

    second, ready = await raw_owner(http, b, room, claim)
    assert ready["type"] == "ready"
    assert ready["reclaimed"] is True
    assert await close_of(first) == 4409  # the older connection loses the room
    assert await close_of(guest_ws) == 1012  # its guests reconnect at once...
    async with http.ws_connect(ws_url(a, f"/ws/{room}")) as again:  # ...to the new one
        await again.send_bytes(b"\x01back")
        opened = await second.receive_bytes(timeout=10)
        assert opened[0] == 0x10
        data = await second.receive_bytes(timeout=10)
        assert data[:1] + data[9:] == b"\x01back"
        await second.send_bytes(b"\x01" + data[1:9] + b"answer")
        assert (await again.receive_bytes(timeout=10)) == b"\x01answer"
    await second.close()
    await guest_ws.close()


async def test_the_guest_cap_holds_across_instances(
    cluster: list[Instance], http: aiohttp.ClientSession
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    hooks = FakeOwner(echo=True)
    owner = OwnerClient(cluster[0].base_url, hooks)
    room = new_room_id()
    await owner.async_open_room(room, expires_at=time.time() + 600)
    order = [rng.randrange(3) for _ in range(100)]
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def join(i: int) -> bool:
        """True if this guest reached the owner (its message came back)."""
        ws = await http.ws_connect(ws_url(cluster[order[i]], f"/ws/{room}"))
        sockets.append(ws)
        await ws.send_bytes(b"\x01hello")
        msg = await ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return True
        assert msg.type is aiohttp.WSMsgType.TEXT, f"seed {seed}"  # the refusal's notice
        assert await close_of(ws) == 1008, f"seed {seed}"
        return False

    try:
        reached = await asyncio.gather(*(join(i) for i in range(100)))
        assert 1 <= sum(reached) <= 8, f"seed {seed}"
        assert len({guest.id for _, guest, _ in hooks.messages}) == sum(reached)
    finally:
        for ws in sockets:
            await ws.close()
        await owner.async_close()
    # Every refused or closed socket gave its place back.
    await hooks.wait_for(lambda: len(hooks.closed) == sum(reached))
    relays = [relay_of(instance.server.app) for instance in cluster]
    await settled(lambda: not any(r.guest_count or r.guests for r in relays))


async def test_rooms_come_back_after_a_redis_restart(
    cluster: list[Instance], redis_process: RedisProcess, http: aiohttp.ClientSession
) -> None:
    a, b, _ = cluster
    hooks = FakeOwner(echo=True)
    owner = OwnerClient(a.base_url, hooks)
    room = new_room_id()
    await owner.async_open_room(room, expires_at=time.time() + 600)
    redis_process.restart()  # SIGKILL: every key is gone

    # The owner does not reconnect; its instance re-writes the room. Meanwhile a guest
    # may be told to retry (1013): a correct answer, so the test retries too.
    async with asyncio.timeout(30):
        while True:
            async with http.ws_connect(ws_url(b, f"/ws/{room}")) as guest_ws:
                await guest_ws.send_bytes(b"\x01after restart")
                msg = await guest_ws.receive(timeout=10)
                if msg.type is aiohttp.WSMsgType.BINARY:
                    assert msg.data == b"\x01after restart"
                    break
                assert msg.type is aiohttp.WSMsgType.TEXT  # the refusal's notice
                assert await close_of(guest_ws) == 1013
            await asyncio.sleep(0.2)
    assert owner.rooms  # the owner's socket stayed open all along
    assert a.store.restores >= 1
    await owner.async_close()


async def test_an_instance_that_dies_takes_its_guests_with_it(
    cluster: list[Instance], http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster
    hooks = FakeOwner()
    owner = OwnerClient(a.base_url, hooks)
    room = new_room_id()
    await owner.async_open_room(room, expires_at=time.time() + 600)
    on_b = await http.ws_connect(ws_url(b, f"/ws/{room}"))
    on_c = await http.ws_connect(ws_url(c, f"/ws/{room}"))
    await on_b.send_bytes(b"\x01from b")
    await on_c.send_bytes(b"\x01from c")
    await hooks.wait_for(lambda: len(hooks.messages) == 2)
    guests = {data: guest for _, guest, data in hooks.messages}
    await b.async_kill()

    # Nobody sends: the owner's instance notices B's heartbeat has stopped.
    await hooks.wait_for(lambda: len(hooks.closed) == 1, timeout=20)
    assert hooks.closed[0][1] is guests[b"\x01from b"]
    # Frames for a guest of a dead instance go nowhere; C's guest is untouched.
    guests[b"\x01from b"].send(b"\x02lost")
    guests[b"\x01from c"].send(b"\x02still here")
    assert (await on_c.receive_bytes(timeout=10)) == b"\x02still here"
    assert len(hooks.closed) == 1
    await on_b.close()
    await on_c.close()
    await owner.async_close()


def run_cli(*args: str, block_redis: bool = False) -> subprocess.CompletedProcess[str]:
    code = "import sys\n"
    if block_redis:  # as if the `server` extra were not installed
        code += "sys.modules['redis'] = None\n"
    code += "from signaling.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, "--insecure-http", "--host", "127.0.0.1", "--port", "0",
         *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_signal_server_says_in_one_line_when_redis_cannot_be_used(
    redis_process: RedisProcess,
) -> None:
    dead_port = redis_process.port
    redis_process.kill()  # a port where nothing listens now
    cases = {
        f"redis://127.0.0.1:{dead_port}/0": "cannot reach Redis",
        "http://127.0.0.1/0": "bad --redis URL",
    }
    for url, message in cases.items():
        result = run_cli("--redis", url)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr  # no traceback
        assert message in result.stderr
    result = run_cli("--redis", redis_process.url, block_redis=True)
    assert result.returncode == 2
    assert (
        result.stderr == "p2pchat: --redis needs the redis package: pip install 'p2pchat[server]'\n"
    )


def test_signal_server_runs_with_redis(redis_process: RedisProcess) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "signaling.cli", "--insecure-http", "--host", "127.0.0.1",
         "--port", "0", "--redis", redis_process.url, "--instance-name", "test-1",
         "--guests-per-room", "3", "--max-guests", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert "listening on http://127.0.0.1:" in lines[0], lines
        assert "instance test-1: rooms shared through Redis" in lines[1]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


async def test_an_owner_that_drops_off_finds_its_room_kept_for_it(
    cluster: list[Instance], http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster
    room, claim = new_room_id(), claim_token()
    first, _ = await raw_owner(http, a, room, claim)
    await first.close(code=1001)  # going away, not goodbye (1000)
    for instance in (a, b):  # "try again", not "not valid"
        async with http.ws_connect(ws_url(instance, f"/ws/{room}")) as guest_ws:
            assert await close_of(guest_ws) == 1013
    second, ready = await raw_owner(http, c, room, claim)
    assert ready["reclaimed"] is True
    async with http.ws_connect(ws_url(b, f"/ws/{room}")) as guest_ws:
        await guest_ws.send_bytes(b"\x01hi")
        assert (await second.receive_bytes(timeout=10))[0] == 0x10  # GUEST_OPENED
    await second.close()  # goodbye: the room goes
    await until_not_valid(http, ws_url(b, f"/ws/{room}"))


async def test_a_room_forgotten_through_a_newer_connection_stays_gone(
    redis_process: RedisProcess,
) -> None:
    """The owner re-claims on B and says goodbye before A's next tick: A's refresh must
    not bring the room back for its stale connection (guests would hear 1013 until
    expiry instead of "not valid")."""
    clients = [connect(redis_process.url) for _ in range(2)]
    slow = replace(TIMINGS, tick_s=3600.0)  # A ticks only when kicked
    a, b = (RedisRoomStore(client, timings=slow) for client in clients)
    moved: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    a.set_moved_callback(lambda room_id, conn: moved.put_nowait((room_id, conn)))
    try:
        for store in (a, b):
            await store.async_start()
        room, now = new_room_id(), time.time()
        for store, conn in ((a, "a1"), (b, "b1")):
            claim = await store.claim(
                room, conn=conn, claim_hash="h", expires_at=now + 600, now=now
            )
            assert claim.outcome == "ready"
        await b.forget(room, conn="b1")
        a.kick()
        async with asyncio.timeout(10):
            assert await moved.get() == (room, "a1")
        assert not await clients[0].exists(f"p2pchat:room:{room}")
        assert (await a.join(room, cap=8, now=time.time())).outcome == "not-valid"
    finally:
        for store in (a, b):
            await store.async_stop()
        for client in clients:
            await client.aclose()
