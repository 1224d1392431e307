"""The signaling relay beside a plain aiohttp WebSocket server, measured in one run.

Each server runs in its own subprocess (so its RSS is its own) on 127.0.0.1:

* ``signaling``: ``SignalingServer`` in embedded mode with a counting owner
  (``OwnerHooks``): RELAY (0x02) messages are counted, SIGNAL (0x01) messages are sent
  back to the guest through ``GuestConnection.send``; the bounds are raised so that
  the benchmark measures the relay, not the rate limits;
* ``plain``: a bare aiohttp WebSocket handler doing the same (count / echo), with the
  same socket settings (``max_msg_size``, no compression, heartbeat 20 s).

For each: idle connections held (``--connections``, default 2000) and RSS delta per
connection; one-way guest→owner messages per second (100-byte messages, one socket,
as fast as the client can write, until the owner confirms the count); echo messages per
second with at most ``WINDOW`` in flight. Prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._figures import emit, figure
from bench._serve_child import (
    serve_app_until_stdin_closes,
    serve_until_stdin_closes,
    stop_child,
)

HANG = 60.0
WINDOW = 256
SIZE = 100
ROOM = base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()
DONE = b"\x02DONE"
MAX_MSG_SIZE = 128 * 1024


# --- servers (subprocess side) ----------------------------------------------------


class CountingOwner:
    def __init__(self) -> None:
        self.count = 0

    def on_guest_message(self, room_id: str, guest: Any, data: bytes) -> None:
        if data[0] == 0x01:
            guest.send(data)
        elif data == DONE:
            guest.send(b"\x02" + str(self.count).encode())
            self.count = 0
        else:
            self.count += 1

    def on_guest_closed(self, room_id: str, guest: Any) -> None:
        pass


async def serve_signaling() -> int:
    from signaling.app import Limits
    from signaling.connection_caps import ConnectionCaps
    from signaling.rooms import RoomRegistry
    from signaling.server import SignalingServer

    big = 10**9
    limits = Limits(
        tcp=ConnectionCaps(per_address=big, total=big),
        connections_per_address=big,
        connections_per_room=big,
        total_connections=big,
        messages_per_second=1e12,
        message_burst=big,
        requests_per_second=1e12,
        request_burst=big,
        send_queue_messages=big,
        send_queue_bytes=big,
    )
    registry = RoomRegistry()
    registry.open_room(ROOM, expires_at=time.time() + 3600, now=time.time())
    server = SignalingServer(
        registry,
        host="127.0.0.1",
        port=0,
        ssl_context=None,
        static_dir=None,
        owner_hooks=CountingOwner(),
        limits=limits,
    )
    await server.async_start()
    await serve_until_stdin_closes(server.port)
    await server.async_stop()
    return 0


async def serve_plain() -> int:
    owner = CountingOwner()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MSG_SIZE + 1, compress=False, heartbeat=20.0)
        await ws.prepare(request)

        async for msg in ws:  # the same work as CountingOwner, sending inline
            if msg.type is not aiohttp.WSMsgType.BINARY:
                break
            data: bytes = msg.data
            if data[0] == 0x01:
                await ws.send_bytes(data)
            elif data == DONE:
                await ws.send_bytes(b"\x02" + str(owner.count).encode())
                owner.count = 0
            else:
                owner.count += 1
        return ws

    app = web.Application()
    app.router.add_get("/ws/{room_id}", handler)
    await serve_app_until_stdin_closes(app)
    return 0


# --- driver ---------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def measure(
    kind: str, connections: int, messages: int, echo_seconds: float
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        kind,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        port = int((await asyncio.wait_for(proc.stdout.readline(), HANG)).decode())
        url = f"ws://127.0.0.1:{port}/ws/{ROOM}"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            # Warm up every code path once, then take the baseline.
            async with http.ws_connect(url, compress=0) as ws:
                await ws.send_bytes(b"\x01warm")
                await ws.receive_bytes(timeout=HANG)
            await asyncio.sleep(0.5)
            before = rss_kib(proc.pid)
            held = await hold_idle(http, url, connections)
            await asyncio.sleep(1.0)
            after = rss_kib(proc.pid)
            alive = sum(1 for ws in held if not ws.closed)
            for batch in range(0, len(held), 500):
                await asyncio.gather(*(ws.close() for ws in held[batch : batch + 500]))
            async with http.ws_connect(url, compress=0, max_msg_size=MAX_MSG_SIZE) as ws:
                one_way = await one_way_rate(ws, messages)
                echo = await echo_rate(ws, echo_seconds)
    finally:
        await stop_child(proc, 10)
    return {
        "idle_connections": {
            "opened": connections,
            "alive_after_1s": alive,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_per_connection_kib": round((after - before) / connections, 2),
        },
        "guest_to_owner": one_way,
        "echo_through_owner": echo,
    }


async def hold_idle(
    http: aiohttp.ClientSession, url: str, n: int
) -> list[aiohttp.ClientWebSocketResponse]:
    held: list[aiohttp.ClientWebSocketResponse] = []
    async with asyncio.timeout(HANG):
        for start in range(0, n, 200):
            batch = [http.ws_connect(url, compress=0) for _ in range(min(200, n - start))]
            held.extend(await asyncio.gather(*batch))
    return held


async def one_way_rate(ws: aiohttp.ClientWebSocketResponse, messages: int) -> dict[str, Any]:
    message = b"\x02" + bytes(SIZE - 1)
    started = time.perf_counter()
    async with asyncio.timeout(HANG):
        for _ in range(messages):
            await ws.send_bytes(message)
        await ws.send_bytes(DONE)
        counted = int((await ws.receive_bytes())[1:])
    elapsed = time.perf_counter() - started
    if counted != messages:
        raise RuntimeError(f"owner counted {counted} of {messages}")
    return {
        "message_bytes": SIZE,
        "messages": messages,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(messages / elapsed),
    }


async def echo_rate(ws: aiohttp.ClientWebSocketResponse, duration: float) -> dict[str, Any]:
    message = b"\x01" + bytes(SIZE - 1)
    window = asyncio.Semaphore(WINDOW)
    sent = received = 0
    done = asyncio.Event()

    async def receiver() -> None:
        nonlocal received
        while True:
            await ws.receive_bytes()
            received += 1
            window.release()
            if done.is_set() and received == sent:
                return

    started = time.perf_counter()
    async with asyncio.timeout(duration + HANG):
        receiving = asyncio.create_task(receiver())
        deadline = started + duration
        while time.perf_counter() < deadline:
            await window.acquire()
            await ws.send_bytes(message)
            sent += 1
        done.set()
        if received < sent:
            await receiving
        else:
            receiving.cancel()
    elapsed = time.perf_counter() - started
    return {
        "message_bytes": SIZE,
        "window": WINDOW,
        "messages": received,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(received / elapsed),
    }


async def run(connections: int, messages: int, echo_seconds: float) -> dict[str, Any]:
    fd_limit = raise_fd_limit(2 * connections + 256)
    if fd_limit < connections + 128:
        raise SystemExit(f"open-file limit {fd_limit} is too low for {connections} connections")
    results = {}
    for kind in ("signaling", "plain"):
        results[kind] = await measure(kind, connections, messages, echo_seconds)
    sig, plain = results["signaling"], results["plain"]
    return {
        "benchmark": "signaling_relay",
        "signaling": sig,
        "plain_aiohttp": plain,
        "ratios": {
            "rss_per_connection": _ratio(
                sig["idle_connections"]["rss_per_connection_kib"],
                plain["idle_connections"]["rss_per_connection_kib"],
            ),
            "guest_to_owner_rate": _ratio(
                sig["guest_to_owner"]["messages_per_s"], plain["guest_to_owner"]["messages_per_s"]
            ),
            "echo_rate": _ratio(
                sig["echo_through_owner"]["messages_per_s"],
                plain["echo_through_owner"]["messages_per_s"],
            ),
        },
        "open_file_limit": fd_limit,
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--connections", type=int, default=2000, help="idle WebSockets held")
    parser.add_argument("--messages", type=int, default=50_000, help="one-way messages")
    parser.add_argument("--echo-seconds", type=float, default=3.0)
    parser.add_argument("--serve", choices=["signaling", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        raise SystemExit(
            asyncio.run(serve_signaling() if args.serve == "signaling" else serve_plain())
        )
    result = asyncio.run(run(args.connections, args.messages, args.echo_seconds))
    result["python"] = sys.version.split()[0]
    result["aiohttp"] = aiohttp.__version__
    result["cpus"] = os.cpu_count()
    emit(result, figures(result))


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    sig, plain = result["signaling"], result["plain_aiohttp"]
    baseline = "a bare aiohttp WebSocket server doing the same, same run"
    return [
        figure("signaling.rss_per_connection", "signaling: memory per idle WebSocket",
               sig["idle_connections"]["rss_per_connection_kib"], "KiB", baseline=baseline,
               baseline_value=plain["idle_connections"]["rss_per_connection_kib"]),
        figure("signaling.guest_to_owner", "signaling: guest → owner, 100-byte messages",
               sig["guest_to_owner"]["messages_per_s"], "msg/s", baseline=baseline,
               baseline_value=plain["guest_to_owner"]["messages_per_s"]),
        figure("signaling.echo", "signaling: echo through the owner",
               sig["echo_through_owner"]["messages_per_s"], "msg/s", baseline=baseline,
               baseline_value=plain["echo_through_owner"]["messages_per_s"]),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
