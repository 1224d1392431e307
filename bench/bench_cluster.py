"""The standalone signaling server as an operator runs it (plain HTTP behind the TLS
proxy), beside a bare aiohttp WebSocket server measured in the same run.

Each server runs in its own subprocess on 127.0.0.1 (so its RSS is its own):

* ``signaling``: ``SignalingServer`` in standalone mode (owners over ``/owner/``), with
  the per-address and total bounds raised (every client here comes from 127.0.0.1)
  but the default 8 guests per room;
* ``plain``: a bare aiohttp WebSocket handler that echoes, with the same socket
  settings (``max_msg_size``, no compression, heartbeat 20 s): the baseline.

Parts:

``idle_sockets``
    Rooms claimed by ``OwnerClient``s (N/8 of them, before the baseline), then N
    idle guest WebSockets (default 10,000) spread over them; RSS before and after →
    KiB per socket and sockets per GiB (goal ≥ 50,000). The same N idle sockets to
    the plain server.
``relay_rtt_ms``
    Round trips of 200-byte RELAY frames, guest → server → owner (an echoing
    ``OwnerClient``) → server → guest, one at a time, p50/p99 over 2,000 each;
    beside the plain server's direct echo. Columns are interleaved trip by trip, so
    a change in the machine's load hits them alike; a column is a (guest server,
    owner server) pair, so the cross-instance column is one more entry in
    ``rtt_columns``.

``--quick`` (tests/load): 200 sockets and 200 round trips. Prints one JSON object.
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

from bench._figures import Goal, emit, figure
from bench.bench_load import bench_limits, log, raise_fd_limit, rss_kib

HANG = 120.0
BATCH = 200
GUESTS_PER_ROOM = 8  # Limits.connections_per_room, the default
# OwnerClient's aiohttp session keeps aiohttp's default of 100 connections: a 101st
# room would wait for one of them to close. So one client per this many rooms.
ROOMS_PER_OWNER = 64
FRAME = 200  # bytes of each RELAY message, type byte included
MAX_MSG_SIZE = 128 * 1024
GOAL_SOCKETS_PER_GIB = 50_000
KIB_PER_GIB = 1024 * 1024


# --- servers (subprocess side) ----------------------------------------------------


async def serve_signaling() -> int:
    from signaling.app import Limits
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
    server = SignalingServer(
        RoomRegistry(max_rooms=big), host="127.0.0.1", port=0, ssl_context=None,
        static_dir=None, owner_hooks=None, limits=limits,
    )  # fmt: skip
    await server.async_start()
    await _serve_until_stdin_closes(server.port)
    await server.async_stop()
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
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await _serve_until_stdin_closes(int(runner.addresses[0][1]))
    await runner.cleanup()
    return 0


async def _serve_until_stdin_closes(port: int) -> None:
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# --- driver -----------------------------------------------------------------------------


class ServerProcess:
    """``bench_cluster.py --serve KIND`` in a subprocess: its base URL and its RSS."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def __aenter__(self) -> ServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.kind,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        port = int((await asyncio.wait_for(self.proc.stdout.readline(), HANG)).decode())
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)


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


async def close_all(sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
    for start in range(0, len(sockets), 500):
        await asyncio.gather(
            *(ws.close() for ws in sockets[start : start + 500]), return_exceptions=True
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
    """The same-instance column beside the plain echo baseline."""
    from signaling.owner_client import OwnerClient

    room = room_ids(1)[0]
    async with ServerProcess("signaling") as signaling, ServerProcess("plain") as plain:
        owner = OwnerClient(signaling.base, EchoOwner(), ssl=False)
        try:
            await owner.async_open_room(room, expires_at=time.time() + 3600)
            rtt_columns = {
                "same_instance": RttColumn(f"{ws_base(signaling.base)}/ws/{room}", owner),
                "plain_echo": RttColumn(f"{ws_base(plain.base)}/ws/{room}"),
            }
            return await relay_rtt(rtt_columns, rounds)
        finally:
            await owner.async_close()


async def run(sockets: int, rounds: int) -> dict[str, Any]:
    fd_limit = raise_fd_limit(2 * sockets + 1024)
    needed = sockets + sockets // GUESTS_PER_ROOM + 256
    if fd_limit < needed:
        raise SystemExit(f"open-file limit {fd_limit} is too low for {sockets} sockets")
    log(f"idle sockets: {sockets} on the signaling server")
    idle = {"signaling": await idle_on("signaling", sockets)}
    log(f"idle sockets: {sockets} on the plain server")
    idle["plain_aiohttp"] = await idle_on("plain", sockets)
    log(f"relay round trips: {rounds}")
    rtt = await rtt_part(rounds)
    return {
        "benchmark": "cluster",
        "idle_sockets": idle,
        "relay_rtt_ms": rtt,
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "cpus": os.cpu_count(),
    }


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    idle, rtt = result["idle_sockets"], result["relay_rtt_ms"]
    sig, plain = idle["signaling"], idle["plain_aiohttp"]
    base = "bare aiohttp WebSocket server, same run"
    rows = [
        figure("cluster.idle_kib_per_socket", f"memory per idle guest socket ({sig['sockets']} held)",
               sig["kib_per_socket"], "KiB", baseline=base, baseline_value=plain["kib_per_socket"]),
        figure("cluster.idle_sockets_per_gib", "idle guest sockets per GiB, one instance",
               sig["sockets_per_gib"], "sockets", baseline=base,
               baseline_value=plain["sockets_per_gib"],
               goal=Goal(min_value=GOAL_SOCKETS_PER_GIB, unit="sockets")),
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
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--sockets", type=int, default=10_000, help="idle guest sockets")
    parser.add_argument("--rounds", type=int, default=2000, help="relay round trips per column")
    parser.add_argument("--quick", action="store_true", help="200 sockets, 200 round trips")
    parser.add_argument("--serve", choices=("signaling", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve = serve_signaling if args.serve == "signaling" else serve_plain
        raise SystemExit(asyncio.run(serve()))
    sockets, rounds = (200, 200) if args.quick else (args.sockets, args.rounds)
    if not 1 <= sockets <= 100_000 or not 1 <= rounds <= 1_000_000:
        parser.error("--sockets is 1..100000 and --rounds 1..1000000")
    result = asyncio.run(run(sockets, rounds))
    emit(result, figures(result))


if __name__ == "__main__":
    main()
