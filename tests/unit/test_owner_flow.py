"""The owner client's side of file flow control (docs/guest-protocol.md "Standalone"):
a remote guest counts the FILE bytes sent to it and waits while more than the bound
has not reached the guest's socket; against a server without flow control it does not."""

from __future__ import annotations

import asyncio

import pytest

from signaling.bounds import Outbox
from signaling.owner_client import RemoteGuest, _RoomSocket

FILE, RELAY = b"\x03", b"\x02"


class QuietSocket:
    """Takes whatever is sent (the server's side is not what is tested here)."""

    async def send_bytes(self, data: bytes) -> None:
        return None

    async def send_str(self, data: str) -> None:
        return None

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        return True


def guest(*, flow: bool) -> RemoteGuest:
    ws = QuietSocket()
    room = _RoomSocket("A" * 22, ws, Outbox(ws, 1 << 20, 64), 0.0, flow)  # type: ignore[arg-type]
    return RemoteGuest(room, b"g" * 8, "10.0.0.2", 128 * 1024)


async def stuck(task: asyncio.Task[None]) -> bool:
    for _ in range(10):
        await asyncio.sleep(0)
    return not task.done()


async def test_a_file_waits_until_the_server_says_the_guest_took_enough() -> None:
    remote = guest(flow=True)
    remote.send(FILE + bytes(999))
    remote.send(RELAY + bytes(5000))  # chat is never counted: it is never held back
    assert remote.file_in_flight == 1000
    wait = asyncio.get_running_loop().create_task(remote.async_wait_queue_below(500))
    assert await stuck(wait)
    remote.drained(400)  # 600 still over there
    assert await stuck(wait)
    remote.drained(400)  # old news changes nothing
    remote.drained(600)
    await asyncio.wait_for(wait, 5)
    assert remote.file_in_flight == 400
    remote.drained(10**12)  # more than was sent: never credit for the future
    assert remote.file_in_flight == 0


@pytest.mark.parametrize("end", ["mark_closed", "close"])
async def test_a_guest_that_goes_releases_its_waiting_sender(end: str) -> None:
    remote = guest(flow=True)
    remote.send(FILE + bytes(999))
    wait = asyncio.get_running_loop().create_task(remote.async_wait_queue_below(10))
    assert await stuck(wait)
    getattr(remote, end)()
    await asyncio.wait_for(wait, 5)


async def test_without_flow_control_on_the_server_only_the_socket_queue_counts() -> None:
    remote = guest(flow=False)  # an older server: no reports will come
    remote.send(FILE + bytes(999))
    assert remote.file_in_flight == 0
    await asyncio.wait_for(remote.async_wait_queue_below(10), 5)
