"""The direct TCP path for file chunks (transport/direct_files.py) over loopback.

Real sockets, real AEAD chunks from protocol/file_transfer. Timeouts only catch hangs;
the expiry test moves an injected clock instead of waiting 60 s.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from p2pchat.protocol.file_transfer import OutgoingTransfer
from p2pchat.protocol.file_wire import MAX_CHUNK_MESSAGE, MIN_CHUNK_MESSAGE, decode_chunk_header
from p2pchat.transport.direct_files import (
    MAX_HANDSHAKES,
    MAX_STREAMS_PER_PEER,
    MAX_TOKENS,
    TOKEN_LIFETIME,
    WRITE_HIGH_WATER,
    DirectFilesListener,
    DirectFilesStream,
    async_open_direct,
)
from p2pchat.transport.errors import (
    LinkClosedError,
    LinkFailedError,
    LocalTransportError,
    MessageTooLargeError,
)

HOST = "127.0.0.1"
HANG = 30.0  # seconds: only a hang takes this long
ALICE, BOB = b"a" * 32, b"b" * 32
MiB = 1024 * 1024
CHUNK = bytes(MIN_CHUNK_MESSAGE + 100)  # any bytes in bounds: the transport does not look


@dataclass
class Sink:
    """What one stream delivered, and why it ended."""

    chunks: list[bytes] = field(default_factory=list)
    closed: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def on_chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    def on_closed(self, reason: str) -> None:
        assert not self.closed.done(), "on_closed ran twice"
        self.closed.set_result(reason)

    async def reason(self) -> str:
        async with asyncio.timeout(HANG):
            return await asyncio.shield(self.closed)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def listener(clock: Clock) -> AsyncIterator[DirectFilesListener]:
    server = await DirectFilesListener.async_start(HOST, clock=clock, handshake_timeout=HANG)
    yield server
    await server.async_close()


def issue(listener: DirectFilesListener, peer: bytes = ALICE) -> tuple[bytes, Sink]:
    sink = Sink()
    return listener.issue_token(peer, sink.on_chunk, sink.on_closed), sink


async def open_stream(listener: DirectFilesListener, token: bytes) -> DirectFilesStream:
    return await async_open_direct(HOST, listener.port, token)


async def assert_served(listener: DirectFilesListener) -> None:
    """The listener still admits the right peer and delivers its chunks."""
    token, sink = issue(listener, b"z" * 32)
    stream = await open_stream(listener, token)
    await stream.async_send_file_chunk(CHUNK)
    await stream.async_close()
    assert await sink.reason() == "closed by the peer"
    assert sink.chunks == [CHUNK]


async def raw_connect(
    listener: DirectFilesListener,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, listener.port)


async def assert_closed_by_listener(reader: asyncio.StreamReader) -> None:
    async with asyncio.timeout(HANG):
        try:
            while await reader.read(65_536):
                pass
        except ConnectionResetError:
            pass  # abort() may reset: closed either way


def frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


async def test_64_mib_of_real_chunks_arrive_complete_and_in_order(
    listener: DirectFilesListener,
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    block_bytes, blocks = MiB, 64
    sender = OutgoingTransfer(
        secrets.token_bytes(16), secrets.token_bytes(32), block_bytes * blocks, block_bytes
    )
    token, sink = issue(listener)
    stream = await open_stream(listener, token)
    assert listener.open_streams(ALICE) == 1
    sent = hashlib.blake2b()
    count = 0
    base = rng.randbytes(block_bytes)
    for index in range(blocks):
        plain = index.to_bytes(4, "big") + base[4:]
        for message in sender.chunks_of(index, plain):
            await stream.async_send_file_chunk(message)
            assert stream.buffered_amount <= WRITE_HIGH_WATER + 4 + len(message)
            sent.update(message)
            count += 1
    await stream.async_close()
    assert await sink.reason() == "closed by the peer", f"seed {seed}"
    got = hashlib.blake2b()
    for message in sink.chunks:
        got.update(message)
    assert len(sink.chunks) == count == blocks * block_bytes // 65_536, f"seed {seed}"
    assert got.digest() == sent.digest(), f"seed {seed}"
    order = [(h.block, h.chunk) for h in map(decode_chunk_header, sink.chunks)]
    assert order == sorted(order), f"seed {seed}"
    assert listener.open_streams(ALICE) == 0


@pytest.mark.parametrize("how", ["wrong", "reused", "expired"])
async def test_bad_tokens_are_refused_and_the_listener_keeps_serving(
    listener: DirectFilesListener, clock: Clock, how: str
) -> None:
    token, sink = issue(listener)
    if how == "wrong":
        token = bytes(a ^ 1 for a in token)
    elif how == "reused":
        first = await open_stream(listener, token)
        await first.async_close()
        assert await sink.reason() == "closed by the peer"
    else:
        clock.now += TOKEN_LIFETIME
    with pytest.raises(LinkFailedError, match="refused the direct path"):
        await open_stream(listener, token)
    assert listener.outstanding_tokens == (1 if how == "wrong" else 0)
    await assert_served(listener)


async def test_a_token_just_inside_its_lifetime_works(
    listener: DirectFilesListener, clock: Clock
) -> None:
    token, sink = issue(listener)
    clock.now += TOKEN_LIFETIME - 0.001
    stream = await open_stream(listener, token)
    await stream.async_send_file_chunk(CHUNK)
    await stream.async_close()
    assert await sink.reason() == "closed by the peer"
    assert sink.chunks == [CHUNK]


@pytest.mark.parametrize("sent", [b"", frame(bytes(32))[:20]], ids=["silent", "half-token"])
async def test_a_slow_handshake_is_closed(clock: Clock, sent: bytes) -> None:
    listener = await DirectFilesListener.async_start(HOST, clock=clock, handshake_timeout=0.2)
    try:
        token, sink = issue(listener)
        reader, writer = await raw_connect(listener)
        writer.write(sent)
        await assert_closed_by_listener(reader)
        writer.close()
        assert not sink.closed.done()  # the token was never presented: still good
        stream = await open_stream(listener, token)
        await stream.async_close()
        assert await sink.reason() == "closed by the peer"
    finally:
        await listener.async_close()


@pytest.mark.parametrize(
    "length",
    [MAX_CHUNK_MESSAGE + 1, MIN_CHUNK_MESSAGE - 1, 0, 2**32 - 1],
    ids=["over", "under", "zero", "huge"],
)
async def test_a_frame_out_of_bounds_closes_the_stream(
    listener: DirectFilesListener, length: int
) -> None:
    token, sink = issue(listener)
    reader, writer = await raw_connect(listener)
    writer.write(frame(token) + frame(CHUNK) + struct.pack(">I", length) + bytes(64))
    assert await reader.readexactly(1) == b"\x01"
    assert "a frame of" in await sink.reason()
    assert sink.chunks == [CHUNK]  # the frames before it were delivered
    await assert_closed_by_listener(reader)
    writer.close()
    assert listener.open_streams(ALICE) == 0
    await assert_served(listener)


async def test_a_token_frame_of_the_wrong_length_is_refused(listener: DirectFilesListener) -> None:
    token, _sink = issue(listener)
    reader, writer = await raw_connect(listener)
    writer.write(frame(token + b"x"))
    await assert_closed_by_listener(reader)
    writer.close()
    await assert_served(listener)


async def test_token_and_stream_bounds(listener: DirectFilesListener) -> None:
    sinks = [issue(listener, ALICE) for _ in range(MAX_STREAMS_PER_PEER + 1)]
    others = [issue(listener, BOB) for _ in range(MAX_TOKENS - len(sinks))]
    with pytest.raises(LocalTransportError, match="already outstanding"):
        listener.issue_token(ALICE, print)
    streams = [await open_stream(listener, t) for t, _ in sinks[:MAX_STREAMS_PER_PEER]]
    assert listener.open_streams(ALICE) == MAX_STREAMS_PER_PEER
    last_token, last_sink = sinks[-1]
    with pytest.raises(LinkFailedError, match="refused"):
        await open_stream(listener, last_token)  # a valid token, but one stream too many
    assert not last_sink.closed.done()
    bob = await open_stream(listener, others[0][0])  # another peer is not affected
    await bob.async_send_file_chunk(CHUNK)
    await streams[0].async_close()
    assert await sinks[0][1].reason() == "closed by the peer"
    again, _sink = issue(listener, ALICE)  # a stream ended: room again
    stream = await open_stream(listener, again)
    for s in [*streams[1:], bob, stream]:
        await s.async_close()
    assert await others[0][1].reason() == "closed by the peer"
    assert others[0][1].chunks == [CHUNK]


async def test_connections_waiting_for_a_token_are_bounded(listener: DirectFilesListener) -> None:
    idle = [await raw_connect(listener) for _ in range(MAX_HANDSHAKES)]
    reader, writer = await raw_connect(listener)
    await assert_closed_by_listener(reader)  # at once: the others still wait (HANG)
    writer.close()
    for r, w in idle:
        w.close()
        await assert_closed_by_listener(r)
    await assert_served(listener)


async def test_sender_bounds_and_a_closed_listener() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(36)
        writer.write(b"\x01")
        accepted.append(writer)

    server = await asyncio.start_server(never_reads, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        stream = await async_open_direct(HOST, port, bytes(32))
        with pytest.raises(MessageTooLargeError):
            await stream.async_send_file_chunk(bytes(MAX_CHUNK_MESSAGE + 1))
        with pytest.raises(LocalTransportError, match="too short"):
            await stream.async_send_file_chunk(bytes(MIN_CHUNK_MESSAGE - 1))
        message = bytes(MAX_CHUNK_MESSAGE)
        blocked = asyncio.Event()

        async def fill() -> None:
            while True:  # until TCP pushes back: the kernel buffers fill, then ours
                send = asyncio.ensure_future(stream.async_send_file_chunk(message))
                await asyncio.sleep(0)
                if not send.done():
                    blocked.set()
                    await send
                await send

        filler = asyncio.create_task(fill())
        async with asyncio.timeout(HANG):
            await blocked.wait()
        assert WRITE_HIGH_WATER < stream.buffered_amount <= WRITE_HIGH_WATER + 4 + len(message)
        accepted[0].transport.abort()  # the receiver goes away while the sender waits
        with pytest.raises(LinkClosedError):
            async with asyncio.timeout(HANG):
                await filler
        with pytest.raises(LinkClosedError):
            await stream.async_send_file_chunk(message)
        await stream.async_close()
    finally:
        server.close()


async def test_open_fails_cleanly_without_a_listener() -> None:
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(LinkFailedError, match="failed"):
        await async_open_direct(HOST, port, bytes(32))


async def test_close_peer_ends_its_streams_and_tokens(listener: DirectFilesListener) -> None:
    token, sink = issue(listener, ALICE)
    spare, _ = issue(listener, ALICE)
    bob_token, bob_sink = issue(listener, BOB)
    stream = await open_stream(listener, token)
    bob = await open_stream(listener, bob_token)
    listener.close_peer(ALICE, "session ended")
    assert await sink.reason() == "session ended"
    assert listener.outstanding_tokens == 0
    with pytest.raises(LinkFailedError, match="refused"):
        await open_stream(listener, spare)
    await bob.async_send_file_chunk(CHUNK)  # the other peer is not affected
    await bob.async_close()
    assert await bob_sink.reason() == "closed by the peer"
    assert bob_sink.chunks == [CHUNK]
    await stream.async_close()
