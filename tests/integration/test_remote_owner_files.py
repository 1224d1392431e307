"""Files to a slow guest through a standalone ``p2pchat signal-server`` (flow control
end to end, docs/guest-protocol.md "Standalone").

A real node claims its invite room over TLS on in-process standalone servers; a Python
guest (the page's protocol, real aiortc for its offer) stays on the relay path and
reads its socket slowly. The node sends it 20 MB in files: without the server telling
the owner how much reached the guest's socket, the server's queue towards the guest
overflows and closes it 1013 mid-file. Once with one server, once with two servers
sharing a real ``redis-server`` (the owner on A, the guest on B: the reports cross the
bus).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.node.events import FileDone, GuestJoined
from p2pchat.protocol import events
from p2pchat.protocol.file_crypto import blake2b_256
from p2pchat.protocol.file_transfer import BlockReady, IncomingTransfer
from p2pchat.protocol.file_wire import (
    ControlKind,
    FileControl,
    decode_chunk_header,
    decode_offer,
)
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.session import Role, Session
from p2pchat.transport.webrtc import DataChannelLink
from signaling.app import Limits, relay_of
from signaling.bus import RedisBus
from signaling.redis_store import RedisRoomStore, connect
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
from signaling.tls import load_or_create_certificate, ssl_context
from tests.integration.redis_fixtures import TIMINGS, RedisProcess
from tests.integration.test_remote_owner import (
    TOKEN,
    WAIT_S,
    PyGuest,
    World,
    _now_ms,
    async_new_world,
    invite,
)

FILE = 0x03
FILES = 4  # at once: the node moves up to four transfers to a peer together
FILE_BYTES = 5 * 1024 * 1024  # 4 x 5 MiB = 20 MiB
READ_PAUSE_S = 0.01  # per FILE message: the guest reads slower than the owner sends,
SOCKET_BUFFER = 32 * 1024  # through small socket buffers (a slow link's, not loopback's
# 4 MiB, which would hold the node's whole file window and hide the server's queue)


class SlowFileGuest(PyGuest):
    """A relay-path guest that accepts every file, reads FILE messages slowly, checks
    every block and sends DONE for each whole file (what the page does)."""

    def __init__(self, link: str, cert: Path, *, ws_port: int | None = None) -> None:
        super().__init__(link, cert)
        self.session = Session(
            Role.INITIATOR, LinkEnvelopes(self.secret.envelope_key, ReplayGuard()), files=True
        )
        self.ws_port = ws_port or self.link.port
        self.incoming: dict[bytes, tuple[IncomingTransfer, bytearray]] = {}
        self.files: dict[bytes, bytes] = {}  # transfer id -> the whole file
        self.texts: list[str] = []  # server notices (an error before a close)
        self.close_code: int | None = None
        self.ended = asyncio.Event()  # its socket closed
        self.progress = asyncio.Event()  # a file done, or the socket closed

    async def async_join(self, name: str) -> None:
        self.channel, sdp = await DataChannelLink.async_create_offer(
            on_message=self._on_data, interfaces=["lo"], files_channel=False
        )
        context = ssl.create_default_context(cafile=str(self.cert))
        connector = aiohttp.TCPConnector(ssl=context, socket_factory=_small_receive_buffer)
        self._http = aiohttp.ClientSession(connector=connector)
        room = self.link.path.rsplit("/", 1)[-1]
        self.ws = await self._http.ws_connect(
            f"wss://{self.link.host}:{self.ws_port}/ws/{room}", max_msg_size=0
        )
        offer = self.session.make_offer(sdp, _now_ms(), {"guest": self.guest_id, "name": name})
        await self.ws.send_bytes(bytes([0x01]) + offer)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        async with asyncio.timeout(WAIT_S):
            await self.opened.wait()

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.texts.append(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY and msg.data[:1] == bytes([FILE]):
                    self._on_chunk(msg.data[1:])
                    await asyncio.sleep(READ_PAUSE_S)
                elif msg.type is aiohttp.WSMsgType.BINARY and msg.data:
                    await self._on_signal_or_relay(msg.data)
        finally:
            self.close_code = self.ws.close_code
            self.ended.set()
            self.progress.set()

    async def _on_signal_or_relay(self, data: bytes) -> None:
        assert self.ws is not None
        if data[0] == 0x01:
            self.session.receive_answer(data[1:], _now_ms())
            await self.ws.send_bytes(bytes([0x02]) + self.session.stream_header())
        elif data[0] == 0x02:
            self._on_data(data[1:])

    def _on_data(self, data: bytes) -> None:
        for event in self.session.receive_data(data, _now_ms()):
            if isinstance(event, events.SessionOpened):
                self.opened.set()
            elif isinstance(event, events.FileFrameReceived):
                if event.frame_type is FrameType.FILE_OFFER:
                    transfer = IncomingTransfer(event.message_id, decode_offer(event.payload))
                    self.incoming[event.message_id] = (transfer, bytearray())
                    self._control(transfer.accept())
            elif isinstance(event, events.PingReceived):
                self._send(self.session.pong(event.ping_id, _now_ms()))

    def _on_chunk(self, data: bytes) -> None:
        tid = decode_chunk_header(data).transfer_id
        transfer, body = self.incoming[tid]
        outcome = transfer.receive_chunk(data)
        if not isinstance(outcome, BlockReady):
            return
        assert outcome.index * transfer.block_bytes == len(body)  # in order on one path
        body += outcome.data
        self._control(transfer.block_written(outcome.index))
        if transfer.complete:
            assert transfer.whole_hash_ok(blake2b_256(bytes(body)))
            self.files[tid] = bytes(body)
            self._control(FileControl(ControlKind.DONE, tid, len(body)))
            self.progress.set()

    def _control(self, control: FileControl) -> None:
        self._send(self.session.send_file_control(control.encode(), _now_ms()))


def _small_receive_buffer(addr_info: Any) -> socket.socket:
    family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)  # before connect
    return sock


def small_send_buffers(server: SignalingServer) -> None:
    """The server's sockets (the guest's among them) get a slow link's send buffer."""
    for ws in relay_of(server.app)._sockets:
        sock = ws.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)


@dataclass
class Servers:
    owner_url: str  # where the node claims its room
    guest_server: SignalingServer  # where the guest's socket goes
    stop: Callable[[], Awaitable[None]]


async def one_server(files: Any, tmp_path: Path) -> Servers:
    server = SignalingServer(
        RoomRegistry(), host="127.0.0.1", port=0, ssl_context=ssl_context(files),
        static_dir=None, owner_hooks=None, owner_token=TOKEN,
    )  # fmt: skip
    await server.async_start()
    return Servers(server.base_url, server, server.async_stop)


async def two_servers_on_redis(files: Any, tmp_path: Path) -> Servers:
    redis = RedisProcess(tmp_path)
    await asyncio.to_thread(redis.start)
    made: list[tuple[SignalingServer, list[Any]]] = []
    for _ in range(2):
        clients = [connect(redis.url), connect(redis.url, single_connection=True)]
        clients.append(connect(redis.url))
        store = RedisRoomStore(clients[0], timings=TIMINGS)
        bus = RedisBus(bytes.fromhex(store.instance_id), clients[1], clients[2])
        server = SignalingServer(
            RoomRegistry(), host="127.0.0.1", port=0, ssl_context=ssl_context(files),
            static_dir=None, owner_hooks=None, owner_token=TOKEN, limits=Limits(),
            store=store, bus=bus,
        )  # fmt: skip
        await server.async_start()
        made.append((server, clients))

    async def stop() -> None:
        for server, clients in made:
            await server.async_stop()
            for client in clients:
                await client.aclose()
        redis.kill()

    return Servers(made[0][0].base_url, made[1][0], stop)


@pytest.fixture(params=[one_server, two_servers_on_redis], ids=["one-server", "redis-a-b"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, Servers]]:
    files = load_or_create_certificate(tmp_path / "server", addresses=["127.0.0.1"])
    monkeypatch.setenv("SSL_CERT_FILE", str(files.cert))  # the node trusts the servers
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    data = tmp_path / "me"

    async def start() -> tuple[World, Servers]:
        servers = await request.param(files, tmp_path)
        return await async_new_world(loop, data, files), servers

    w, servers = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    yield w, servers

    async def stop() -> None:
        await w.control.async_stop()  # type: ignore[attr-defined]
        await w.node.guests.async_stop()
        await servers.stop()
        w.node.profile.close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def seed() -> Iterator[int]:
    value = random.SystemRandom().randrange(2**32)
    yield value
    print(f"seed: {value}")  # shown with a failure


def test_a_slow_guest_gets_20_mb_of_files_without_being_cut_off(
    setup: tuple[World, Servers],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    seed: int,
) -> None:
    caplog.set_level(logging.INFO, logger="signaling")
    world, servers = setup
    view = invite(world, capsys, "--server", servers.owner_url, "--server-token", TOKEN)
    guest = SlowFileGuest(view["url"], world.cert, ws_port=servers.guest_server.port)
    world.run(guest.async_join("ann"))

    async def throttle() -> None:
        small_send_buffers(servers.guest_server)

    world.run(throttle())
    joined = world.wait_event(lambda e: isinstance(e, GuestJoined), "guest_joined")
    assert isinstance(joined, GuestJoined)
    assert joined.path == "relay"

    rng = random.Random(seed)
    sources: dict[str, bytes] = {}
    for i in range(FILES):
        content = rng.randbytes(FILE_BYTES)
        path = tmp_path / f"file-{i}.bin"
        path.write_bytes(content)
        sources[path.name] = content
        world.run(world.node.async_send_file(guest.label, str(path)))

    async def all_done_or_cut_off() -> None:
        async with asyncio.timeout(120):  # only catches a hang
            while len(guest.files) < FILES and not guest.ended.is_set():
                guest.progress.clear()
                await guest.progress.wait()

    world.run(all_done_or_cut_off(), timeout=150)
    cut = [r.getMessage() for r in caplog.records if "too far behind" in r.getMessage()]
    assert not guest.ended.is_set(), (guest.close_code, guest.texts, cut)  # never cut off
    assert not cut
    got = sorted(hashlib.sha256(body).hexdigest() for body in guest.files.values())
    assert got == sorted(hashlib.sha256(body).hexdigest() for body in sources.values())
    for name in sources:  # and the owner saw each one done
        world.wait_event(
            lambda e, name=name: isinstance(e, FileDone) and e.name == name, f"{name} done"
        )
    world.run(guest.async_leave())
