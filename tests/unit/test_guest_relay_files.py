"""File chunks on a guest's relay path (issue 13): the owner's GuestLink over the guest's
WebSocket carries them as FILE messages, apart from the secret stream (RELAY), and waits
for the socket's queue before each one."""

from __future__ import annotations

import asyncio

import pytest

from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.node.guests import FILE, RELAY, RELAY_FILE_QUEUE_BYTES, RelayChannel
from p2pchat.node.links import GuestLink, PeerLink
from p2pchat.protocol.events import SessionOpened
from p2pchat.protocol.session import Role, Session
from p2pchat.transport.errors import TransportError

NOW = 1_700_000_000_000


class FakeConnection:
    """A guest socket whose queue stays full until ``room`` is set."""

    def __init__(self) -> None:
        self.id = "00" * 8
        self.remote = "10.0.0.2"
        self.sent: list[bytes] = []
        self.room = asyncio.Event()
        self.room.set()
        self.waited_for: list[int] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def async_wait_queue_below(self, limit: int) -> None:
        self.waited_for.append(limit)
        await self.room.wait()

    def close(self, code: int = 1000, reason: str = "") -> None:
        return None


def relay_link() -> tuple[GuestLink, Session, FakeConnection]:
    """An owner's GuestLink with files, opened on the relay by a guest with files."""
    key = LinkSecret.generate().envelope_key
    guest = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()), files=True)
    owner = Session(Role.RESPONDER, LinkEnvelopes(key, ReplayGuard()), files=True)
    owner.receive_offer(guest.make_offer("v=0", NOW, {}), NOW)
    guest.receive_answer(owner.make_answer("v=0", NOW, {}), NOW)
    connection = FakeConnection()
    link = GuestLink(
        b"g" * 16, owner, RelayChannel(connection),  # type: ignore[arg-type]
        on_event=lambda _link, _event: None, on_closed=lambda _l, _r: None,
    )  # fmt: skip
    link.feed_relay(guest.stream_header())
    header = connection.sent.pop(0)
    assert header[0] == RELAY
    assert guest.receive_data(header[1:], NOW) == [SessionOpened()]
    assert link.state == "open"
    return link, guest, connection


async def test_a_relay_session_keeps_files() -> None:
    link, guest, _ = relay_link()
    assert link.path == "relay"
    assert link.session.files  # both announced files=1: kept on the relay
    assert guest.files
    assert link.chunk_path == "relay"
    link.close("done")


async def test_file_messages_from_the_guest_reach_the_chunk_handler() -> None:
    link, _, _ = relay_link()
    got: list[tuple[PeerLink, bytes]] = []
    link.file_chunk_handler = lambda lk, data: got.append((lk, data))
    link.feed_relay_file(b"sealed chunk")
    assert got == [(link, b"sealed chunk")]
    link.close("done")
    link.feed_relay_file(b"late chunk")  # after the session: dropped
    assert len(got) == 1


async def test_a_chunk_to_the_guest_waits_for_room_in_the_socket_queue() -> None:
    link, _, connection = relay_link()
    connection.room.clear()  # the queue towards the guest is full
    send = asyncio.get_running_loop().create_task(link.async_send_file_chunk(b"sealed"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not send.done()
    assert connection.sent == []
    assert connection.waited_for == [RELAY_FILE_QUEUE_BYTES]
    connection.room.set()
    await send
    assert connection.sent == [bytes([FILE]) + b"sealed"]  # its own type, not RELAY
    link.close("done")


async def test_a_chunk_to_a_guest_gone_meanwhile_raises() -> None:
    link, _, connection = relay_link()
    connection.room.clear()
    send = asyncio.get_running_loop().create_task(link.async_send_file_chunk(b"sealed"))
    await asyncio.sleep(0)
    link.close("the guest left")
    connection.room.set()
    with pytest.raises(TransportError):
        await send
