"""The standalone signaling server as an operator runs it (plain HTTP behind the TLS
proxy), beside a bare aiohttp WebSocket server measured in the same run.

Each server runs in its own subprocess on 127.0.0.1 (so its RSS is its own):

* ``signaling``: ``SignalingServer`` in standalone mode (owners over ``/owner/``), with
  the per-address and total bounds raised (every client here comes from 127.0.0.1)
  but the default 8 guests per room;
* ``plain``: a bare aiohttp WebSocket handler that echoes, with the same socket
  settings (``max_msg_size``, no compression, heartbeat 20 s): the baseline.

Parts:

``idle_sockets`` / ``idle_sockets_per_gib``
    One instance: rooms claimed by ``OwnerClient``s (N/8 of them, 64 a client, before
    the baseline), then N idle guest WebSockets (default 10,000) spread over them; RSS
    before and after → KiB per socket and sockets per GiB (goal ≥ 50,000). The same N
    idle sockets to the plain server. Then 3 instances on one ``redis-server`` (each
    its own process, as ``signal-server --redis``), 3 x 5,000 idle guest sockets, a
    room's guests spread over the instances: the RSS growth of all four processes,
    Redis included (same goal).
``relay_rtt_ms``
    Round trips of 200-byte RELAY frames, guest → server → owner (an echoing
    ``OwnerClient``) → server → guest, one at a time, p50/p99 over 2,000 each, columns
    interleaved trip by trip (a change in the machine's load hits them alike): the
    standalone server (``same_instance``); a cluster of two instances on one Redis with
    the owner on A and the guest on A (``cluster_same_instance``) or on B
    (``cross_instance``: two pub/sub hops a round trip; goal: p99 ≤ same + 5 ms); the
    plain server's direct echo (``plain_echo``).
``reconnect_after_kill_ms``
    SIGKILL the guest's instance → its next message echoed by the owner (median of 5;
    a Python guest over the WebSocket relay, waiting the page's first back-off step of
    1 s; goal ≤ 2 s). See :func:`reconnect_part`.
``first_message_ms``
    A Chromium guest through TURN (symmetric NAT) beside a LAN guest, median of 5
    (bench/_cluster_turn.py; root, coturn and Chromium, else ``{"skipped": why}``).

The load average is printed (stderr) at the start and the end, and is in ``run``.
``--quick`` (tests/load): 200 sockets (3 x 100 on the cluster), 200 round trips, 2
kills, no browser. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._figures import Goal, emit, figure, loadavg
from bench._redis_process import RedisProcess
from bench._serve_child import (
    serve_app_until_stdin_closes,
    serve_until_stdin_closes,
    stop_child,
)
from bench.bench_load import bench_limits, log, raise_fd_limit, rss_kib

HANG = 120.0
BATCH = 200
# Guest sockets opened (or closed) at once on one instance with Redis: each join and
# leave is a Redis command, and redis-py 8's pool refuses a 101st concurrent one
# (MaxConnectionsError; its default max_connections is 100).
REDIS_BATCH = 64
GUESTS_PER_ROOM = 8  # Limits.connections_per_room, the default
# OwnerClient's aiohttp session keeps aiohttp's default of 100 connections: a 101st
# room would wait for one of them to close. So one client per this many rooms.
ROOMS_PER_OWNER = 64
FRAME = 200  # bytes of each RELAY message, type byte included
MAX_MSG_SIZE = 128 * 1024
GOAL_SOCKETS_PER_GIB = 50_000
KIB_PER_GIB = 1024 * 1024
INSTANCES = 3  # the cluster of the idle part
GOAL_CROSS_P99_OVER_SAME_MS = 5.0
GOAL_RECONNECT_MS = 2000.0
PAGE_FIRST_BACKOFF_S = 1.0  # browser/src/app.js BACKOFF_MS[0]


# --- servers (subprocess side) ----------------------------------------------------


async def serve_signaling(redis_url: str | None = None) -> int:
    """The standalone server; with ``redis_url``, one instance of a cluster (the rooms
    and the bus in that Redis, as ``signal-server --redis`` runs it)."""
    from signaling.app import Limits
    from signaling.cli import _async_cluster
    from signaling.open_files import raise_open_file_limit
    from signaling.rooms import RoomRegistry
    from signaling.server import SignalingServer

    raise_open_file_limit()
    big = 10**9
    limits = replace(
        bench_limits(),
        connections_per_room=Limits().connections_per_room,
        owners_per_address=big,
        total_owners=big,
        owner_messages_per_second=1e12,
        owner_message_burst=big,
    )
    cluster = await _async_cluster(redis_url, f"bench:{os.getpid()}") if redis_url else None
    server = SignalingServer(
        RoomRegistry(max_rooms=big), host="127.0.0.1", port=0, ssl_context=None,
        static_dir=None, owner_hooks=None, limits=limits,
        store=cluster[0] if cluster else None, bus=cluster[1] if cluster else None,
    )  # fmt: skip
    await server.async_start()
    await serve_until_stdin_closes(server.port)
    await server.async_stop()
    for client in cluster[2] if cluster else ():
        await client.aclose()
    return 0


async def serve_plain() -> int:
    from signaling.open_files import raise_open_file_limit

    raise_open_file_limit()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MSG_SIZE + 1, compress=False, heartbeat=20.0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws/{room_id}", handler)
    await serve_app_until_stdin_closes(app)
    return 0


# --- driver -----------------------------------------------------------------------------


class ServerProcess:
    """``bench_cluster.py --serve KIND`` in a subprocess: its base URL and its RSS."""

    def __init__(self, kind: str, redis_url: str | None = None) -> None:
        self.kind = kind
        self.redis_url = redis_url

    async def __aenter__(self) -> ServerProcess:
        redis = ["--redis", self.redis_url] if self.redis_url else []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.kind, *redis,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        port = int((await asyncio.wait_for(self.proc.stdout.readline(), HANG)).decode())
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stop_child(self.proc, 30)

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    async def kill(self) -> None:
        """SIGKILL (a crash: nothing closed cleanly), and wait until it is gone."""
        self.proc.kill()
        await self.proc.wait()


class EchoOwner:
    """The owner's hooks: every guest message goes back to its guest."""

    def on_guest_message(self, room_id: str, guest: Any, data: bytes) -> None:
        guest.send(data)

    def on_guest_closed(self, room_id: str, guest: Any) -> None:
        pass


def room_ids(count: int) -> list[str]:
    import base64

    return [
        base64.urlsafe_b64encode(n.to_bytes(16, "big")).rstrip(b"=").decode()
        for n in range(1, count + 1)
    ]


async def claim_rooms(base: str, rooms: list[str]) -> list[Any]:
    """The owners of ``rooms``, ``ROOMS_PER_OWNER`` rooms each, claimed."""
    from signaling.owner_client import OwnerClient

    expires = time.time() + 3600
    owners: list[Any] = []
    for start in range(0, len(rooms), ROOMS_PER_OWNER):
        owner = OwnerClient(base, EchoOwner(), ssl=False)
        owners.append(owner)
        batch = rooms[start : start + ROOMS_PER_OWNER]
        await asyncio.gather(*(owner.async_open_room(r, expires_at=expires) for r in batch))
    return owners


def ws_base(base: str) -> str:
    return base.replace("http://", "ws://", 1)


async def open_idle(
    http: aiohttp.ClientSession, base: str, rooms: list[str], n: int
) -> list[aiohttp.ClientWebSocketResponse]:
    """``n`` guest sockets, round-robin over ``rooms``; all must open."""
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    for start in range(0, n, BATCH):
        batch = [
            http.ws_connect(f"{ws_base(base)}/ws/{rooms[i % len(rooms)]}", compress=0,
                            heartbeat=None, max_msg_size=MAX_MSG_SIZE)
            for i in range(start, min(start + BATCH, n))
        ]  # fmt: skip
        async with asyncio.timeout(HANG):
            sockets.extend(await asyncio.gather(*batch))
    return sockets


async def close_all(sockets: list[aiohttp.ClientWebSocketResponse], chunk: int = 500) -> None:
    for start in range(0, len(sockets), chunk):
        await asyncio.gather(
            *(ws.close() for ws in sockets[start : start + chunk]), return_exceptions=True
        )


async def idle_on(kind: str, n: int) -> dict[str, Any]:
    """N idle guest sockets on a fresh server of ``kind``: RSS per socket."""
    rooms = room_ids(max(1, math.ceil(n / GUESTS_PER_ROOM)))
    owners: list[Any] = []
    async with (
        ServerProcess(kind) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        try:
            if kind == "signaling":
                owners = await claim_rooms(server.base, rooms)
            warm = await open_idle(http, server.base, rooms, 1)  # every code path once
            await warm[0].send_bytes(b"\x02warm")
            await warm[0].receive_bytes(timeout=HANG)
            await close_all(warm)
            await asyncio.sleep(0.5)
            before = server.rss_kib()
            sockets = await open_idle(http, server.base, rooms, n)
            await asyncio.sleep(1.0)
            after = server.rss_kib()
            alive = sum(1 for ws in sockets if not ws.closed)
            await close_all(sockets)
        finally:
            await asyncio.gather(*(owner.async_close() for owner in owners))
    per_socket = (after - before) / n
    return {
        "sockets": n,
        "rooms": len(rooms) if kind == "signaling" else None,
        "alive_after_1s": alive,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": round(per_socket, 2),
        "sockets_per_gib": round(KIB_PER_GIB / per_socket) if per_socket > 0 else None,
    }


async def idle_cluster(per_instance: int) -> dict[str, Any]:
    """3 instances + Redis, ``per_instance`` idle guest sockets on each: the RSS of all
    four processes (Redis included) per socket. Room r is owned on instance r % 3 (by
    ``OwnerClient``s of 64 rooms each, in this process); a room's 8 guests are spread
    over the 3 instances, so most joins cross instances (GUEST_OPENED over the bus,
    counts in Redis)."""
    total = INSTANCES * per_instance
    rooms = room_ids(max(1, math.ceil(total / GUESTS_PER_ROOM)))
    async with (
        RedisProcess() as redis,
        ServerProcess("signaling", redis.url) as a,
        ServerProcess("signaling", redis.url) as b,
        ServerProcess("signaling", redis.url) as c,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        servers = [a, b, c]
        owners: list[Any] = []
        try:
            for i, server in enumerate(servers):
                owners += await claim_rooms(server.base, rooms[i::INSTANCES])
            for server in servers:  # every code path once, cross-instance included
                warm = await open_idle(http, server.base, rooms[1:2], 1)
                await warm[0].send_bytes(b"\x02warm")
                await warm[0].receive_bytes(timeout=HANG)
                await close_all(warm)
            await asyncio.sleep(0.5)
            pids = {"instance_1": a.proc.pid, "instance_2": b.proc.pid,
                    "instance_3": c.proc.pid, "redis": redis.pid}  # fmt: skip
            before = {name: rss_kib(pid) for name, pid in pids.items()}
            # Socket i: room i % R, instance shifted by i // R so that a room's guests
            # land on every instance.
            targets: list[list[str]] = [[] for _ in servers]
            for i in range(total):
                targets[(i % len(rooms) + i // len(rooms)) % INSTANCES].append(
                    rooms[i % len(rooms)]
                )
            opened = await asyncio.gather(
                *(open_rooms(http, s.base, t) for s, t in zip(servers, targets, strict=True))
            )
            sockets = [ws for group in opened for ws in group]
            await asyncio.sleep(1.0)
            after = {name: rss_kib(pid) for name, pid in pids.items()}
            alive = sum(1 for ws in sockets if not ws.closed)
            for group in opened:
                await close_all(group, chunk=REDIS_BATCH)
        finally:
            await asyncio.gather(*(owner.async_close() for owner in owners))
    grown = sum(after.values()) - sum(before.values())
    per_socket = grown / total
    return {
        "instances": INSTANCES,
        "sockets": total,
        "sockets_per_instance": [len(t) for t in targets],
        "rooms": len(rooms),
        "alive_after_1s": alive,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": round(per_socket, 2),
        "sockets_per_gib": round(KIB_PER_GIB / per_socket) if per_socket > 0 else None,
    }


async def open_rooms(
    http: aiohttp.ClientSession, base: str, rooms: list[str]
) -> list[aiohttp.ClientWebSocketResponse]:
    """One guest socket per entry of ``rooms`` (a room may repeat); all must open."""
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    for start in range(0, len(rooms), REDIS_BATCH):
        batch = [
            http.ws_connect(f"{ws_base(base)}/ws/{room}", compress=0, heartbeat=None,
                            max_msg_size=MAX_MSG_SIZE)
            for room in rooms[start : start + REDIS_BATCH]
        ]  # fmt: skip
        async with asyncio.timeout(HANG):
            sockets.extend(await asyncio.gather(*batch))
    return sockets


@dataclass
class RttColumn:
    """One column of ``relay_rtt_ms``: where the guest connects, its room, and the
    owner's client (None: the plain echo server answers by itself)."""

    guest_url: str
    owner: Any = None


async def rtt_trip(ws: aiohttp.ClientWebSocketResponse, frame: bytes) -> float:
    started = time.perf_counter()
    await ws.send_bytes(frame)
    echoed = await ws.receive_bytes(timeout=HANG)
    elapsed = time.perf_counter() - started
    if echoed != frame:
        raise RuntimeError("the echo is not the frame sent")
    return elapsed * 1000.0


async def relay_rtt(columns: dict[str, RttColumn], rounds: int) -> dict[str, dict[str, Any]]:
    """``rounds`` round trips per column, interleaved trip by trip."""
    samples: dict[str, list[float]] = {name: [] for name in columns}
    async with aiohttp.ClientSession() as http:
        sockets = {
            name: await http.ws_connect(col.guest_url, compress=0, max_msg_size=MAX_MSG_SIZE)
            for name, col in columns.items()
        }
        try:
            for trip in range(rounds + 20):  # the first 20: warm-up, not counted
                frame = b"\x02" + trip.to_bytes(4, "big") + os.urandom(FRAME - 5)
                for name, ws in sockets.items():
                    ms = await rtt_trip(ws, frame)
                    if trip >= 20:
                        samples[name].append(ms)
        finally:
            await close_all(list(sockets.values()))
    return {name: summary(values) for name, values in samples.items()}


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "round_trips": len(ordered),
        "frame_bytes": FRAME,
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)], 3),
        "max": round(ordered[-1], 3),
    }


async def rtt_part(rounds: int) -> dict[str, Any]:
    """Four columns, interleaved: the standalone server (same instance), a cluster of
    two instances on one Redis with the guest on the owner's instance (same instance:
    no Redis on the path) and on the other one (cross instance: two pub/sub hops a
    round trip), and the plain echo baseline."""
    from signaling.owner_client import OwnerClient

    solo_room, same_room, cross_room = room_ids(3)
    async with (
        ServerProcess("signaling") as signaling,
        ServerProcess("plain") as plain,
        RedisProcess() as redis,
        ServerProcess("signaling", redis.url) as a,
        ServerProcess("signaling", redis.url) as b,
    ):
        owner = OwnerClient(signaling.base, EchoOwner(), ssl=False)
        cluster_owner = OwnerClient(a.base, EchoOwner(), ssl=False)
        try:
            expires = time.time() + 3600
            await owner.async_open_room(solo_room, expires_at=expires)
            await cluster_owner.async_open_room(same_room, expires_at=expires)
            await cluster_owner.async_open_room(cross_room, expires_at=expires)
            rtt_columns = {
                "same_instance": RttColumn(f"{ws_base(signaling.base)}/ws/{solo_room}", owner),
                "cluster_same_instance": RttColumn(
                    f"{ws_base(a.base)}/ws/{same_room}", cluster_owner
                ),
                "cross_instance": RttColumn(f"{ws_base(b.base)}/ws/{cross_room}", cluster_owner),
                "plain_echo": RttColumn(f"{ws_base(plain.base)}/ws/{solo_room}"),
            }
            return await relay_rtt(rtt_columns, rounds)
        finally:
            await owner.async_close()
            await cluster_owner.async_close()


async def reconnect_part(runs: int) -> dict[str, Any]:
    """SIGKILL the guest's instance → its next message echoed by the owner, ``runs``
    times. The owner (an echoing ``OwnerClient``) stays on instance A; each run the
    guest joins a fresh instance V, one round trip proves the path, V is killed; the
    guest sees its socket close, waits the page's first back-off step (1 s, app.js
    ``BACKOFF_MS[0]``, without the page's ±20 % jitter), joins instance C (where the
    load balancer sends it once V is gone) and sends; the clock stops at the echo.
    A Python guest over the WebSocket relay: it measures the cluster, not a browser's
    new handshake (one more round trip through the owner before the message)."""
    from signaling.owner_client import OwnerClient

    room = room_ids(1)[0]
    samples: list[dict[str, float]] = []
    async with (
        RedisProcess() as redis,
        ServerProcess("signaling", redis.url) as a,
        ServerProcess("signaling", redis.url) as c,
        aiohttp.ClientSession() as http,
    ):
        owner = OwnerClient(a.base, EchoOwner(), ssl=False)
        try:
            await owner.async_open_room(room, expires_at=time.time() + 3600)
            for run_no in range(runs):
                async with ServerProcess("signaling", redis.url) as victim:
                    ws = await http.ws_connect(f"{ws_base(victim.base)}/ws/{room}", compress=0,
                                               max_msg_size=MAX_MSG_SIZE)  # fmt: skip
                    frame = b"\x02" + run_no.to_bytes(4, "big") + os.urandom(FRAME - 5)
                    await rtt_trip(ws, frame)
                    started = time.perf_counter()
                    await victim.kill()
                    await ws.receive(timeout=HANG)  # the close (the kernel resets it)
                    noticed = time.perf_counter()
                    await ws.close()
                await asyncio.sleep(PAGE_FIRST_BACKOFF_S)
                again = await http.ws_connect(f"{ws_base(c.base)}/ws/{room}", compress=0,
                                              max_msg_size=MAX_MSG_SIZE)  # fmt: skip
                await rtt_trip(again, frame)
                done = time.perf_counter()
                await again.close()
                samples.append({
                    "kill_to_noticed_ms": round((noticed - started) * 1000, 1),
                    "kill_to_delivered_ms": round((done - started) * 1000, 1),
                })  # fmt: skip
        finally:
            await owner.async_close()
    delivered = [s["kill_to_delivered_ms"] for s in samples]
    return {
        "runs": runs,
        "guest": "python (WebSocket relay)",
        "backoff_ms": PAGE_FIRST_BACKOFF_S * 1000,
        "median_ms": round(statistics.median(delivered), 1),
        "min_ms": min(delivered),
        "max_ms": max(delivered),
        "samples": samples,
    }


async def run(
    sockets: int, per_instance: int, rounds: int, reconnects: int, browser_runs: int
) -> dict[str, Any]:
    fd_limit = raise_fd_limit(2 * sockets + 1024)
    needed = max(sockets + sockets // GUESTS_PER_ROOM, INSTANCES * per_instance) + 256
    if fd_limit < needed:
        raise SystemExit(f"open-file limit {fd_limit} is too low for {sockets} sockets")
    log(f"load average {loadavg()}")
    log(f"idle sockets: {sockets} on the signaling server")
    idle = {"signaling": await idle_on("signaling", sockets)}
    log(f"idle sockets: {sockets} on the plain server")
    idle["plain_aiohttp"] = await idle_on("plain", sockets)
    log(f"idle sockets: {INSTANCES} x {per_instance} on {INSTANCES} instances + Redis")
    cluster = await idle_cluster(per_instance)
    log(f"relay round trips: {rounds} per column")
    rtt = await rtt_part(rounds)
    log(f"reconnects after SIGKILL: {reconnects}")
    reconnect = await reconnect_part(reconnects)
    if browser_runs:
        from bench._cluster_turn import first_message

        log(f"first message through TURN and on the LAN: {browser_runs} runs each")
        try:
            first = await first_message(browser_runs)
        except Exception as exc:  # the other parts' figures still count
            first = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            log(f"first message part failed: {first['error']}")
    else:
        first = {"skipped": "--quick: no browser"}
    log(f"load average {loadavg()}")
    return {
        "benchmark": "cluster",
        "idle_sockets": idle,
        "idle_sockets_per_gib": {
            "one_instance": idle["signaling"]["sockets_per_gib"],
            "three_instances_and_redis": cluster["sockets_per_gib"],
            "plain_aiohttp": idle["plain_aiohttp"]["sockets_per_gib"],
            "cluster": cluster,
        },
        "relay_rtt_ms": rtt,
        "reconnect_after_kill_ms": reconnect,
        "first_message_ms": first,
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "cpus": os.cpu_count(),
    }


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    idle, rtt = result["idle_sockets"], result["relay_rtt_ms"]
    sig, plain = idle["signaling"], idle["plain_aiohttp"]
    cluster = result["idle_sockets_per_gib"]["cluster"]
    base = "bare aiohttp WebSocket server, same run"
    per_gib = Goal(min_value=GOAL_SOCKETS_PER_GIB, unit="sockets")
    rows = [
        figure("cluster.idle_kib_per_socket", f"memory per idle guest socket ({sig['sockets']} held)",
               sig["kib_per_socket"], "KiB", baseline=base, baseline_value=plain["kib_per_socket"]),
        figure("cluster.idle_sockets_per_gib", "idle guest sockets per GiB, one instance",
               sig["sockets_per_gib"], "sockets", baseline=base,
               baseline_value=plain["sockets_per_gib"], goal=per_gib),
        figure("cluster.idle_sockets_per_gib_3_instances",
               f"idle guest sockets per GiB, {INSTANCES} instances + Redis (RSS of all four,"
               f" {cluster['sockets']} held)",
               cluster["sockets_per_gib"], "sockets", baseline=base,
               baseline_value=plain["sockets_per_gib"], goal=per_gib),
    ]  # fmt: skip
    echo = rtt["plain_echo"]
    for name, column in rtt.items():
        if name == "plain_echo":
            continue
        for quantile in ("p50", "p99"):
            rows.append(
                figure(f"cluster.relay_rtt_{name}_{quantile}",
                       f"relay round trip {quantile}, {name.replace('_', '-')} ({FRAME} B)",
                       column[quantile], "ms", baseline="direct echo, bare aiohttp",
                       baseline_value=echo[quantile])
            )  # fmt: skip
    cross, same = rtt["cross_instance"]["p99"], rtt["cluster_same_instance"]["p99"]
    rows.append(
        figure("cluster.relay_rtt_cross_vs_same_p99",
               "relay round trip p99, cross-instance (cluster of 2 + Redis)", cross, "ms",
               baseline="same-instance p99, same cluster, interleaved", baseline_value=same,
               goal=f"≤ baseline + {GOAL_CROSS_P99_OVER_SAME_MS:g} ms",
               met=cross - same <= GOAL_CROSS_P99_OVER_SAME_MS)
    )  # fmt: skip
    reconnect = result["reconnect_after_kill_ms"]
    rows.append(
        figure("cluster.reconnect_after_kill",
               f"SIGKILL the guest's instance → next message delivered (median of"
               f" {reconnect['runs']}, {reconnect['guest']}, page back-off 1 s included)",
               reconnect["median_ms"], "ms", goal=f"≤ {GOAL_RECONNECT_MS:g} ms",
               met=reconnect["median_ms"] <= GOAL_RECONNECT_MS,
               spread=[reconnect["min_ms"], reconnect["median_ms"], reconnect["max_ms"]])
    )  # fmt: skip
    first = result["first_message_ms"]
    label = "Chromium guest through TURN (symmetric NAT): link opened → first message at the owner"
    if "turn" not in first:  # the table still shows the part, and why it has no figure
        why = first.get("skipped") or first.get("error")
        rows.append(figure("cluster.first_message_turn", f"{label} (not measured: {why})",
                           None, "ms"))  # fmt: skip
    else:
        turn, lan = first["turn"], first["lan"]
        rows.append(
            figure("cluster.first_message_turn",
                   f"{label} (median of {turn['runs']}, scripted clicks included,"
                   f" path {'/'.join(turn['paths'])})",
                   turn["median_ms"], "ms", baseline="LAN guest, embedded server, same run",
                   baseline_value=lan["median_ms"],
                   spread=[turn["min_ms"], turn["median_ms"], turn["max_ms"]])
        )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--sockets", type=int, default=10_000, help="idle guest sockets")
    parser.add_argument(
        "--per-instance",
        type=int,
        default=5_000,
        help="idle guest sockets on each of the 3 instances",
    )
    parser.add_argument("--rounds", type=int, default=2000, help="relay round trips per column")
    parser.add_argument("--reconnects", type=int, default=5, help="instance kills")
    parser.add_argument(
        "--browser-runs",
        type=int,
        default=5,
        help="Chromium guests through TURN and on the LAN (0: skip; root)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 sockets (3 x 100 on the cluster), 200 round trips, 2 kills",
    )
    parser.add_argument("--serve", choices=("signaling", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "signaling":
        raise SystemExit(asyncio.run(serve_signaling(args.redis)))
    if args.serve == "plain":
        raise SystemExit(asyncio.run(serve_plain()))
    if args.quick:
        sockets, per_instance, rounds, reconnects, browser_runs = 200, 100, 200, 2, 0
    else:
        sockets, per_instance = args.sockets, args.per_instance
        rounds, reconnects, browser_runs = args.rounds, args.reconnects, args.browser_runs
    if not 1 <= sockets <= 100_000 or not 1 <= per_instance <= 6_000:
        parser.error("--sockets is 1..100000 and --per-instance 1..6000")
    if not 1 <= rounds <= 1_000_000 or not 1 <= reconnects <= 50 or not 0 <= browser_runs <= 50:
        parser.error("--rounds is 1..1000000, --reconnects 1..50 and --browser-runs 0..50")
    result = asyncio.run(run(sockets, per_instance, rounds, reconnects, browser_runs))
    emit(result, figures(result))


if __name__ == "__main__":
    main()
