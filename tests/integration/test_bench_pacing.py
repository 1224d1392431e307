"""The raw aiortc throughput baseline (bench/bench_raw_aiortc.py) over a real aiortc
pair: the window holds the sender to at most ``window`` messages that the receiver
has not seen, and the UDP drop counters read the kernel's own figures."""

from __future__ import annotations

import socket

from bench._udp import rcvbuf_errors, socket_drops
from bench.bench_raw_aiortc import BATCH, Endpoint, measure_throughput, open_raw_pair


async def test_window_bounds_what_is_in_flight() -> None:
    pair = await open_raw_pair()
    try:
        received = 0
        most_ahead = 0
        sent = 0
        real_send = pair.a.send

        def send(data: bytes) -> None:
            nonlocal sent, most_ahead
            real_send(data)
            sent += 1
            most_ahead = max(most_ahead, sent - received)

        def count(data: bytes) -> None:
            nonlocal received
            received += 1
            counted.on_message(data)

        tx = Endpoint(send=send, drain=pair.a.drain, buffered=pair.a.buffered)
        counted = Endpoint(send=pair.b.send, drain=pair.b.drain, buffered=pair.b.buffered)
        pair.b.on_message = count
        result = await measure_throughput(tx, counted, duration=0.5, window=2 * BATCH)
    finally:
        await pair.close()
    assert result["messages"] == sent > 0
    assert most_ahead <= 2 * BATCH


def test_socket_drops_counts_what_the_kernel_dropped() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        receiver.bind(("127.0.0.1", 0))
        before_ns = rcvbuf_errors()
        assert socket_drops([receiver]) == 0
        for _ in range(500):  # never read: the buffer fills, the rest is dropped
            sender.sendto(bytes(100), receiver.getsockname())
        dropped = socket_drops([receiver])
        assert dropped > 0
        assert rcvbuf_errors() - before_ns >= dropped  # the namespace counts them too
