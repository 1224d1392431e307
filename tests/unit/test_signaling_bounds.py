"""signaling/bounds.py: the FILE byte budget and waiting for room in an Outbox."""

from __future__ import annotations

import asyncio

import pytest

from signaling.bounds import ByteBudget, Outbox


def test_byte_budget_spends_its_burst_then_asks_to_wait() -> None:
    budget = ByteBudget(rate=1000.0, burst=3000, now=0.0)
    assert budget.take(1000, 0.0) == 0.0
    assert budget.take(2000, 0.0) == 0.0
    assert budget.take(500, 0.0) == pytest.approx(0.5)  # 500 bytes in debt at 1000/s
    # Time refills it: after the wait it was asked for, the debt is paid.
    assert budget.take(0, 0.5) == 0.0
    assert budget.take(1000, 10.0) == 0.0  # refilled to the burst, never beyond
    assert budget.take(2000, 10.0) == 0.0
    assert budget.take(1, 10.0) > 0.0


class GatedSocket:
    """A WebSocket whose sends finish only when the test lets them."""

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.gate = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append(data)

    async def send_str(self, data: str) -> None:
        await self.gate.wait()
        self.sent.append(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        return True


async def spin() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_wait_below_returns_once_the_queue_drained_to_the_limit() -> None:
    socket = GatedSocket()
    outbox = Outbox(socket, max_bytes=10_000, max_items=100)
    await outbox.async_wait_below(0)  # empty: at once
    for _ in range(4):
        assert outbox.push(bytes(1000))
    waiter = asyncio.get_running_loop().create_task(outbox.async_wait_below(1000))
    await spin()
    assert not waiter.done()  # 3000 bytes still queued, one item in flight
    socket.gate.set()
    await waiter
    assert outbox.queued_bytes <= 1000


async def test_wait_below_returns_when_the_queue_is_dropped() -> None:
    socket = GatedSocket()
    outbox = Outbox(socket, max_bytes=10_000, max_items=100)
    for _ in range(4):
        outbox.push(bytes(1000))
    waiter = asyncio.get_running_loop().create_task(outbox.async_wait_below(0))
    await spin()
    assert not waiter.done()
    outbox.cancel()  # the socket is going: nobody waits forever
    await waiter


async def test_a_cancelled_waiter_is_forgotten() -> None:
    socket = GatedSocket()
    outbox = Outbox(socket, max_bytes=10_000, max_items=100)
    for _ in range(4):
        outbox.push(bytes(1000))
    waiter = asyncio.get_running_loop().create_task(outbox.async_wait_below(0))
    await spin()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    socket.gate.set()
    await spin()
    assert outbox.queued_bytes == 0
