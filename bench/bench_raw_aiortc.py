"""Baseline: a raw aiortc data channel, no crypto, no store, no p2pchat code on the path.

Measures, on this machine (ICE host candidates from aioice's normal gathering, so the
pair uses the machine's own interface address and traffic never leaves it):

* open time: offer creation -> both data channels open (no STUN: ``iceServers=[]``);
* throughput of small (100-byte) messages, ``--runs`` runs of a few seconds (the
  median run, and min/median/max), the sender never more than ``--window`` messages
  ahead of the receiver (``bufferedAmount`` alone does not hold it back: see
  ``measure_throughput``), and the UDP datagrams the kernel dropped on the pair's
  sockets in each run (``rcvbuf_errors``: 0 when the figure measures aiortc rather
  than packet loss); ``--flood-runs`` adds runs with no window, for contrast;
* RTT p50/p99 of a ping-pong over 1000 round trips;
* optionally (``--cut-detection``, ~30 s): how long until one side notices that the other
  went silent (peer process frozen with SIGSTOP: no packets, no ICMP), i.e. ICE consent
  freshness.

Prints exactly one JSON object on stdout. The measuring functions work on ``Endpoint``,
so other benchmarks can run the same measurements over p2pchat's own link::

    from bench.bench_raw_aiortc import Endpoint, measure_rtt, measure_throughput
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench._figures import cdf_points, emit, figure  # noqa: E402
from bench._udp import ice_sockets, socket_drops  # noqa: E402

HANG = 60.0  # seconds: a benchmark step taking longer than this is stuck
_THIS_FILE = os.path.abspath(__file__)

#: Send buffer levels (bytes): the sender pauses above HIGH_WATER until LOW_WATER.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
#: measure_throughput sends this many messages between two looks at the clock.
BATCH = 64
#: measure_throughput's default window (messages sent, not yet received). Small enough
#: that a default UDP receive buffer (212992 bytes; each small datagram costs ~1 KiB of
#: kernel memory) holds them all even while the receiver is not scheduled; far from
#: limiting: at a 2 ms round trip it allows 64k messages/s.
DEFAULT_WINDOW = 128


def _ignore(data: bytes) -> None:
    pass


@dataclass
class Endpoint:
    """One side of a message link, as the measurements see it.

    ``on_message`` is replaced by each measurement; the link must call ``deliver`` for
    every message it receives.
    """

    send: Callable[[bytes], None]
    drain: Callable[[], Awaitable[None]]  # returns once the send buffer is <= LOW_WATER
    buffered: Callable[[], int]  # bytes in the send buffer
    on_message: Callable[[bytes], None] = field(default=_ignore)

    def deliver(self, data: bytes) -> None:
        self.on_message(data)


def channel_endpoint(channel: RTCDataChannel) -> Endpoint:
    """Wrap a raw aiortc data channel as an ``Endpoint``."""

    async def drain() -> None:
        if channel.bufferedAmount <= LOW_WATER:
            return
        low = asyncio.Event()
        channel.bufferedAmountLowThreshold = LOW_WATER
        channel.once("bufferedamountlow", low.set)
        await low.wait()

    endpoint = Endpoint(send=channel.send, drain=drain, buffered=lambda: channel.bufferedAmount)
    channel.on("message", endpoint.deliver)
    return endpoint


@dataclass
class RawPair:
    offerer: RTCPeerConnection
    answerer: RTCPeerConnection
    a: Endpoint
    b: Endpoint
    open_seconds: float

    async def close(self) -> None:
        await self.offerer.close()
        await self.answerer.close()


async def open_raw_pair() -> RawPair:
    """Two peer connections in this process, one channel; times offer -> both open."""
    started = time.perf_counter()
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel_a = offerer.createDataChannel("bench", ordered=True)
    a_open = asyncio.Event()
    channel_a.on("open", a_open.set)
    got_b: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
    answerer.on("datachannel", got_b.set_result)

    async with asyncio.timeout(HANG):
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        channel_b = await got_b  # aiortc hands it over already open
        await a_open.wait()
    open_seconds = time.perf_counter() - started
    return RawPair(
        offerer, answerer, channel_endpoint(channel_a), channel_endpoint(channel_b), open_seconds
    )


async def measure_throughput(
    tx: Endpoint,
    rx: Endpoint,
    *,
    size: int = 100,
    duration: float = 5.0,
    window: int | None = None,
) -> dict[str, Any]:
    """Send ``size``-byte messages from ``tx`` for ``duration`` s, with backpressure.

    ``window``: at most that many messages sent and not yet seen by ``rx``, so that the
    sender never outruns the receiver. Without it (``None``) only ``bufferedAmount``
    holds the sender back, and that is a flood: aiortc's ``bufferedAmount`` counts only
    what SCTP has not taken yet, SCTP's congestion window grows to the 1 MiB the
    receiver advertises (~10k datagrams of 100 bytes), and a default UDP receive buffer
    holds a few hundred, so the kernel drops the rest (``RcvbufErrors``) and SCTP
    stalls on retransmission timeouts. The rate counts from the first send to the
    last message received.
    """
    if window is not None and window < BATCH:
        raise ValueError(f"window must be at least {BATCH} messages")
    message = bytes(size)
    received = 0
    done = asyncio.Event()
    progressed = asyncio.Event()
    sent = 0
    sending = True
    waiting = False

    def count(data: bytes) -> None:
        nonlocal received
        received += 1
        if waiting:
            progressed.set()
        if not sending and received == sent:
            done.set()

    rx.on_message = count
    max_buffered = 0
    window_waits = 0
    started = time.perf_counter()
    deadline = started + duration
    send, buffered = tx.send, tx.buffered
    async with asyncio.timeout(duration + HANG):
        while time.perf_counter() < deadline:
            while window is not None and sent + BATCH - received > window:
                waiting = True
                window_waits += 1
                progressed.clear()
                await progressed.wait()
                waiting = False
            for _ in range(BATCH):  # check the clock every BATCH messages
                send(message)
            sent += BATCH
            level = buffered()
            max_buffered = max(max_buffered, level)
            if level > HIGH_WATER:
                await tx.drain()
            else:
                await asyncio.sleep(0)
        sending = False
        if received == sent:
            done.set()
        await done.wait()
    elapsed = time.perf_counter() - started
    rx.on_message = _ignore
    return {
        "message_bytes": size,
        "messages": received,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(received / elapsed),
        "mbit_per_s": round(received * size * 8 / elapsed / 1e6, 2),
        "max_buffered_bytes": max_buffered,
        "window_messages": window,
        "window_waits": window_waits,
    }


async def repeated_throughput(
    tx: Endpoint,
    rx: Endpoint,
    *,
    runs: int,
    drops: Callable[[], dict[str, int]],
    drops_method: str,
    **options: Any,
) -> dict[str, Any]:
    """``measure_throughput`` ``runs`` times: the median run's figures, the spread, and
    the UDP receive-buffer drops of each run (``drops()``: counters by side)."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    rows = []
    for _ in range(runs):
        before = drops()
        row = await measure_throughput(tx, rx, **options)
        after = drops()
        row["rcvbuf_errors"] = {side: after[side] - before[side] for side in after}
        rows.append(row)
        await asyncio.sleep(0.3)  # the last acks and SACKs settle between runs
    rates = [row["messages_per_s"] for row in rows]
    median_row = sorted(rows, key=lambda row: row["messages_per_s"])[(len(rows) - 1) // 2]
    return {
        **median_row,
        "runs": len(rows),
        "spread_messages_per_s": {
            "min": min(rates),
            "median": round(statistics.median(rates)),
            "max": max(rates),
        },
        "runs_messages_per_s": rates,
        "rcvbuf_errors": {side: sum(row["rcvbuf_errors"][side] for row in rows) for side in before},
        "rcvbuf_errors_by_run": [row["rcvbuf_errors"] for row in rows],
        "rcvbuf_errors_method": drops_method,
    }


async def measure_rtt(
    a: Endpoint, b: Endpoint, *, rounds: int = 1000, size: int = 100, warmup: int = 50
) -> dict[str, Any]:
    """Ping-pong: ``a`` sends, ``b`` echoes at once; one message in flight at a time."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()

    def on_reply(data: bytes) -> None:
        if not reply.done():
            reply.set_result(data)

    b.on_message = b.send
    a.on_message = on_reply
    message = bytes(size)
    samples: list[float] = []
    async with asyncio.timeout(HANG):
        for i in range(warmup + rounds):
            reply = loop.create_future()
            t0 = time.perf_counter_ns()
            a.send(message)
            await reply
            if i >= warmup:
                samples.append((time.perf_counter_ns() - t0) / 1e6)
    a.on_message = b.on_message = _ignore
    return _rtt_summary(samples, size)


def _rtt_summary(samples_ms: list[float], size: int) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    return {
        "message_bytes": size,
        "rounds": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max_ms": round(ordered[-1], 3),
        "cdf_ms": cdf_points(ordered),
    }


async def measure_open(runs: int = 5) -> dict[str, Any]:
    """Offer creation -> channel open, over fresh pairs (first run included)."""
    times = []
    for _ in range(runs):
        pair = await open_raw_pair()
        times.append(pair.open_seconds * 1000)
        await pair.close()
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
    }


async def measure_cut_detection(timeout: float = 90.0) -> dict[str, Any]:
    """Open a channel to a child process, freeze the child, time until we see failure.

    The child answers from ``--child-answerer`` mode; SIGSTOP makes it silent without
    closing its sockets (so no ICMP port-unreachable speeds things up), as a pulled
    cable would.
    """
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("bench", ordered=True)
    opened = asyncio.Event()
    failed = asyncio.Event()
    channel.on("open", opened.set)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            failed.set()

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        _THIS_FILE,
        "--child-answerer",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        await pc.setLocalDescription(await pc.createOffer())
        child.stdin.write(json.dumps(pc.localDescription.sdp).encode() + b"\n")
        await child.stdin.drain()
        async with asyncio.timeout(HANG):
            answer = json.loads(await child.stdout.readline())
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            await opened.wait()
        await asyncio.sleep(1.0)  # settle: consent checks are running
        child.send_signal(signal.SIGSTOP)
        frozen = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await failed.wait()
            detected: float | None = round(time.perf_counter() - frozen, 1)
        except TimeoutError:
            detected = None
        return {"peer": "frozen with SIGSTOP", "detected_after_s": detected, "cap_s": timeout}
    finally:
        child.kill()
        await child.wait()
        await pc.close()


async def _child_answerer() -> None:
    offer = json.loads(sys.stdin.readline())
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    sys.stdout.write(json.dumps(pc.localDescription.sdp) + "\n")
    sys.stdout.flush()
    await asyncio.sleep(3600)  # until the parent freezes and kills us


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "raw_aiortc_datachannel"}
    result["open"] = await measure_open()
    pair = await open_raw_pair()
    sockets = ice_sockets(pair.offerer) + ice_sockets(pair.answerer)

    def drops() -> dict[str, int]:
        return {"both_ends": socket_drops(sockets)}

    method = "drops of the pair's own UDP sockets (/proc/net/udp), before and after each run"
    try:
        result["throughput"] = await repeated_throughput(
            pair.a, pair.b, runs=args.runs, window=args.window, duration=args.duration,
            drops=drops, drops_method=method,
        )  # fmt: skip
        if args.flood_runs:
            result["throughput_flood"] = await repeated_throughput(
                pair.a, pair.b, runs=args.flood_runs, window=None, duration=args.duration,
                drops=drops, drops_method=method,
            )  # fmt: skip
        result["rtt"] = await measure_rtt(pair.a, pair.b, rounds=args.rounds)
    finally:
        await pair.close()
    result["cut_detection"] = await measure_cut_detection() if args.cut_detection else None
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per throughput run")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs (spread)")
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="messages unreceived at most"
    )
    parser.add_argument("--flood-runs", type=int, default=0, help="throughput runs, no window")
    parser.add_argument("--rounds", type=int, default=1000, help="ping-pong round trips")
    parser.add_argument(
        "--cut-detection", action="store_true", help="also time failure detection (~30 s)"
    )
    parser.add_argument("--child-answerer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_answerer:
        asyncio.run(_child_answerer())
        return
    result = asyncio.run(run(args))
    result["python"] = sys.version.split()[0]
    emit(result, figures(result))


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline figures; this bench is itself the baseline of others."""
    tput, rtt = result["throughput"], result["rtt"]
    drops = sum(tput["rcvbuf_errors"].values())
    spread = tput["spread_messages_per_s"]
    rows = [
        figure("raw.open_p50", "raw aiortc: offer → both channels open (p50)",
               result["open"]["p50_ms"], "ms"),
        figure("raw.throughput", f"raw aiortc: 100-byte messages, one process (median of {tput['runs']})",
               tput["messages_per_s"], "msg/s",
               spread=[spread["min"], spread["median"], spread["max"]]),
        figure("raw.throughput_udp_drops", "raw aiortc: UDP datagrams dropped during those runs",
               drops, "datagrams", goal="0 (else it measures loss)", met=drops == 0),
        figure("raw.rtt_p50", "raw aiortc: RTT p50", rtt["p50_ms"], "ms"),
        figure("raw.rtt_p99", "raw aiortc: RTT p99", rtt["p99_ms"], "ms"),
    ]  # fmt: skip
    cut = result["cut_detection"]
    if cut is not None:
        rows.append(
            figure("raw.cut_detection", "raw aiortc: peer frozen → failure seen (ICE consent)",
                   cut["detected_after_s"], "s", goal="25-35 s expected (RFC 7675)")
        )  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
