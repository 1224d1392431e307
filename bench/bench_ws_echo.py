"""Baseline: a plain aiohttp WebSocket echo server and client on 127.0.0.1.

The yardstick for the signaling server and the browser path: what one WebSocket hop
costs on this machine with nothing of p2pchat on it. Server settings follow the house
rules (``max_msg_size`` set, compression off, heartbeat on).

* RTT p50/p99: 1000 round trips of a 100-byte binary message, one in flight;
* echo rate: 100-byte messages for a few seconds with at most ``WINDOW`` in flight;
  counts echoes received per second.

Prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

if __name__ == "__main__":  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._figures import cdf_points, emit, figure

HANG = 60.0  # seconds: a benchmark step taking longer than this is stuck
MAX_MSG_SIZE = 64 * 1024 + 1024
WINDOW = 256  # most echo-rate messages in flight at once


async def echo_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_MSG_SIZE, compress=False, heartbeat=30.0)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        else:
            break
    return ws


async def start_echo_server() -> tuple[web.AppRunner, str]:
    """Start the echo server on an ephemeral 127.0.0.1 port; return it and its URL."""
    app = web.Application()
    app.router.add_get("/echo", echo_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/echo"


async def measure_rtt(
    ws: aiohttp.ClientWebSocketResponse, *, rounds: int = 1000, size: int = 100, warmup: int = 50
) -> dict[str, Any]:
    message = bytes(size)
    samples: list[float] = []
    async with asyncio.timeout(HANG):
        for i in range(warmup + rounds):
            t0 = time.perf_counter_ns()
            await ws.send_bytes(message)
            reply = await ws.receive()
            elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
            if reply.type is not aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"unexpected reply {reply.type}")
            if i >= warmup:
                samples.append(elapsed_ms)
    samples.sort()
    return {
        "message_bytes": size,
        "rounds": len(samples),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
        "max_ms": round(samples[-1], 3),
        "cdf_ms": cdf_points(samples),
    }


async def measure_echo_rate(
    ws: aiohttp.ClientWebSocketResponse, *, size: int = 100, duration: float = 5.0
) -> dict[str, Any]:
    message = bytes(size)
    window = asyncio.Semaphore(WINDOW)
    sent = received = 0
    stop = False

    async def sender() -> None:
        nonlocal sent
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            await window.acquire()
            await ws.send_bytes(message)
            sent += 1

    async def receiver() -> None:
        nonlocal received
        while not (stop and received == sent):
            reply = await ws.receive()
            if reply.type is not aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"unexpected reply {reply.type}")
            received += 1
            window.release()

    started = time.perf_counter()
    async with asyncio.timeout(duration + HANG):
        receiving = asyncio.create_task(receiver())
        await sender()
        stop = True
        if received < sent:
            await receiving
        else:
            receiving.cancel()
    elapsed = time.perf_counter() - started
    return {
        "message_bytes": size,
        "window": WINDOW,
        "messages": received,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(received / elapsed),
    }


async def run(duration: float, rounds: int) -> dict[str, Any]:
    runner, url = await start_echo_server()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, max_msg_size=MAX_MSG_SIZE, compress=0) as ws,
        ):
            rtt = await measure_rtt(ws, rounds=rounds)
            rate = await measure_echo_rate(ws, duration=duration)
    finally:
        await runner.cleanup()
    return {"benchmark": "aiohttp_ws_echo", "rtt": rtt, "echo": rate}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--duration", type=float, default=5.0, help="echo-rate seconds")
    parser.add_argument("--rounds", type=int, default=1000, help="ping-pong round trips")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.duration, args.rounds))
    result["python"] = sys.version.split()[0]
    result["aiohttp"] = aiohttp.__version__
    rtt, echo = result["rtt"], result["echo"]
    emit(
        result,
        [
            figure(
                "ws.rtt_p50", "aiohttp WebSocket echo on loopback: RTT p50", rtt["p50_ms"], "ms"
            ),
            figure(
                "ws.rtt_p99", "aiohttp WebSocket echo on loopback: RTT p99", rtt["p99_ms"], "ms"
            ),
            figure(
                "ws.echo_rate",
                f"aiohttp WebSocket echo rate (window {echo['window']})",
                echo["messages_per_s"],
                "msg/s",
            ),
        ],
    )


if __name__ == "__main__":
    main()
