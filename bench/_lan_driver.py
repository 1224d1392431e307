"""Baseline ends for ``bench_lan.py``, one process per namespace.

Modes (JSON lines on stdin/stdout; ``bench_lan.py`` relays between the two ends):

* ``raw-offer``: for each of ``--opens`` rounds, print ``{"offer": SDP}``, read
  ``{"answer": SDP}``, time offer creation -> channel open; on the last channel run
  the RTT and throughput measurements of ``bench_raw_aiortc`` and print
  ``{"result": {...}}``. One-way throughput runs ``--oneway-runs`` times, at most
  ``--window`` messages ahead of the receiver's acks, with the ``Udp RcvbufErrors``
  of both namespaces before and after each run (the receiver's read through
  ``/proc/<--receiver-pid>/net/snmp``); ``--flood-runs`` adds unpaced runs.
* ``raw-answer``: answer every ``{"offer": SDP}`` line with ``{"answer": SDP}``; on the
  channel, obey ``MODE:<name>`` messages: ``echo`` (send every message back),
  ``oneway`` (send ``K`` for every 64 messages received), ``acked`` (send ``k`` for
  every message, as a p2pchat receipt would).
* ``ws-server``: aiohttp WebSocket echo (``bench_ws_echo.echo_handler``) on
  ``--host``; prints ``{"port": N}``; runs until stdin closes.
* ``ws-client``: ``bench_ws_echo.measure_rtt`` against ``--url``; prints the result.

No crypto, no store, no p2pchat code on any of these paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

from bench._udp import rcvbuf_errors  # noqa: E402
from bench.bench_raw_aiortc import (  # noqa: E402
    DEFAULT_WINDOW,
    HANG,
    Endpoint,
    channel_endpoint,
    measure_rtt,
    repeated_throughput,
)

ACK_EVERY = 64  # measure_throughput sends in batches of 64
DROPS_METHOD = (
    "Udp RcvbufErrors of /proc/PID/net/snmp in each end's namespace (nothing else runs"
    " there), read before and after each run"
)


def emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def read_line() -> dict[str, Any] | None:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return json.loads(line) if line.strip() else None


# -- raw aiortc ------------------------------------------------------------------------


async def raw_offer(args: argparse.Namespace) -> None:
    open_ms: list[float] = []
    pc: RTCPeerConnection | None = None
    channel: RTCDataChannel | None = None
    for _i in range(args.opens):
        if pc is not None:
            await pc.close()
        started = time.perf_counter()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        channel = pc.createDataChannel("bench", ordered=True)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setLocalDescription(await pc.createOffer())
        emit({"offer": pc.localDescription.sdp})
        reply = await read_line()
        if reply is None or "answer" not in reply:
            raise RuntimeError(f"no answer from the other end: {reply}")
        async with asyncio.timeout(HANG):
            await pc.setRemoteDescription(RTCSessionDescription(reply["answer"], "answer"))
            await opened.wait()
        open_ms.append((time.perf_counter() - started) * 1000)
    assert pc is not None
    assert channel is not None
    a = channel_endpoint(channel)
    far = Endpoint(send=lambda _d: None, drain=a.drain, buffered=a.buffered)  # echoes remotely

    result: dict[str, Any] = {"open_ms": [round(t, 1) for t in open_ms]}
    a.send(b"MODE:echo")
    result["rtt"] = await measure_rtt(a, far, rounds=args.rounds)

    # One-way: the far end acknowledges every 64th message; each ack counts for 64.
    counter = Endpoint(send=a.send, drain=a.drain, buffered=a.buffered)

    def per_batch(_data: bytes) -> None:
        for _ in range(ACK_EVERY):
            counter.deliver(b"")

    a.send(b"MODE:oneway")
    a.on_message = per_batch

    def drops() -> dict[str, int]:
        return {"receiver": rcvbuf_errors(args.receiver_pid), "sender": rcvbuf_errors()}

    timed = {"drops": drops, "drops_method": DROPS_METHOD, "duration": args.duration}
    result["throughput_oneway"] = await repeated_throughput(
        a, counter, runs=args.oneway_runs, window=args.window, **timed
    )
    if args.flood_runs:  # the unpaced flood, for contrast: see measure_throughput
        result["throughput_oneway_flood"] = await repeated_throughput(
            a, counter, runs=args.flood_runs, window=None, **timed
        )

    # Acked: one small reply per message, the shape of p2pchat's message + receipt.
    a.on_message = lambda _d: None
    a.send(b"MODE:acked")
    result["throughput_acked"] = await repeated_throughput(
        a, a, runs=1, window=args.window, **timed
    )
    emit({"result": result})
    await pc.close()


async def raw_answer(args: argparse.Namespace) -> None:
    peers: list[RTCPeerConnection] = []
    while (request := await read_line()) is not None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        pc.on("datachannel", serve_channel)
        await pc.setRemoteDescription(RTCSessionDescription(request["offer"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"answer": pc.localDescription.sdp})
    for pc in peers:
        await pc.close()


def serve_channel(channel: RTCDataChannel) -> None:
    mode = "echo"
    received = 0

    def on_message(data: bytes) -> None:
        nonlocal mode, received
        if data[:5] == b"MODE:":
            mode, received = data[5:].decode(), 0
        elif mode == "echo":
            channel.send(data)
        elif mode == "acked":
            channel.send(b"k")
        else:
            received += 1
            if received % ACK_EVERY == 0:
                channel.send(b"K")

    channel.on("message", on_message)


# -- aiohttp WebSocket -----------------------------------------------------------------


async def ws_server(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bench.bench_ws_echo import echo_handler

    app = web.Application()
    app.router.add_get("/echo", echo_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, 0)
    await site.start()
    emit({"port": runner.addresses[0][1]})
    await read_line()  # until stdin closes
    await runner.cleanup()


async def ws_client(args: argparse.Namespace) -> None:
    import aiohttp

    from bench.bench_ws_echo import MAX_MSG_SIZE
    from bench.bench_ws_echo import measure_rtt as ws_measure_rtt

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(args.url, max_msg_size=MAX_MSG_SIZE, compress=0) as ws,
    ):
        emit({"result": {"rtt": await ws_measure_rtt(ws, rounds=args.rounds)}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("mode", choices=["raw-offer", "raw-answer", "ws-server", "ws-client"])
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--oneway-runs", type=int, default=3, help="one-way runs (spread)")
    parser.add_argument("--flood-runs", type=int, default=0, help="one-way runs with no window")
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="messages unacknowledged at most"
    )
    parser.add_argument("--receiver-pid", default="self", help="for its namespace's counters")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    mode = {
        "raw-offer": raw_offer,
        "raw-answer": raw_answer,
        "ws-server": ws_server,
        "ws-client": ws_client,
    }[args.mode]
    asyncio.run(mode(args))


if __name__ == "__main__":
    main()
