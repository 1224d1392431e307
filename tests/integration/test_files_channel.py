"""The files channel of a DataChannelLink (issue 13) against real aiortc over loopback.

Two links (or a link and a raw aiortc peer) in one process, as in test_webrtc_link.py.
Timeouts only catch hangs; the one fact about timing checked here is an ordering that
follows from aiortc's single send queue, not a threshold.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiortc
import pytest

from p2pchat.transport import (
    CHANNEL_LABEL,
    FILES_CHANNEL_ID,
    FILES_CHANNEL_LABEL,
    FILES_LOW_WATER,
    MAX_MESSAGE_SIZE,
    DataChannelLink,
    LinkClosedError,
    LinkFailedError,
    LinkState,
    LocalTransportError,
    MessageTooLargeError,
    TransportError,
)
from tests.integration import sctp_attacker as attack
from tests.integration.test_sctp_bounds import (
    CHUNK,
    WINDOW,
    assert_aborted_with,
    assert_cut_off,
    open_duel,
    run,
)
from tests.integration.test_webrtc_link import HANG, LOOPBACK

FILE_CHUNK = 64 * 1024
FILE_CHUNKS = 128  # 8 MiB


@pytest.fixture(autouse=True)
def no_default_stun(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> list[aiortc.RTCIceServer]:
        raise AssertionError("aiortc default STUN servers were used")

    monkeypatch.setattr(
        aiortc.RTCIceGatherer, "getDefaultIceServers", classmethod(lambda cls: refuse())
    )


@dataclass
class Receiver:
    """What one link delivers on both channels, in the order it was delivered."""

    log: list[tuple[str, bytes]] = field(default_factory=list)
    closed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, data: bytes) -> None:
        self.log.append(("chat", data))
        self.changed.set()

    def on_file_chunk(self, data: bytes) -> None:
        self.log.append(("file", data))
        self.changed.set()

    def on_closed(self) -> None:
        self.closed += 1
        self.changed.set()

    def of(self, kind: str) -> list[bytes]:
        return [data for k, data in self.log if k == kind]

    async def wait_for(self, kind: str, count: int) -> None:
        async with asyncio.timeout(HANG):
            while len(self.of(kind)) < count and not self.closed:
                self.changed.clear()
                await self.changed.wait()

    async def wait_closed(self) -> None:
        async with asyncio.timeout(HANG):
            while not self.closed:
                self.changed.clear()
                await self.changed.wait()


@dataclass
class FilesPair:
    a: DataChannelLink
    b: DataChannelLink
    got_a: Receiver
    got_b: Receiver


@pytest.fixture
async def pair() -> AsyncIterator[FilesPair]:
    got_a, got_b = Receiver(), Receiver()
    async with asyncio.timeout(HANG):
        a, offer = await DataChannelLink.async_create_offer(
            on_message=got_a.on_message, on_closed=got_a.on_closed, interfaces=LOOPBACK
        )
        b, answer = await DataChannelLink.async_accept_offer(
            offer, on_message=got_b.on_message, on_closed=got_b.on_closed, interfaces=LOOPBACK
        )
        a.on_file_chunk = got_a.on_file_chunk
        b.on_file_chunk = got_b.on_file_chunk
        await a.async_apply_answer(answer)
    await a.async_wait_open(HANG)
    await b.async_wait_open(HANG)
    yield FilesPair(a, b, got_a, got_b)
    await a.async_close()
    await b.async_close()


@pytest.fixture
def files_sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Hook aiortc's send: at each send on a files channel, record the channel's
    bufferedAmount before and after, and check the low-water bound right there."""
    seen: list[tuple[int, int]] = []
    original = aiortc.RTCDataChannel.send

    def send(self: aiortc.RTCDataChannel, data: bytes | str) -> None:
        if self.label != FILES_CHANNEL_LABEL:
            original(self, data)
            return
        before = self.bufferedAmount
        assert before <= FILES_LOW_WATER, f"sent with {before} bytes queued on the files channel"
        original(self, data)
        seen.append((before, self.bufferedAmount))
        assert self.bufferedAmount <= FILES_LOW_WATER + MAX_MESSAGE_SIZE

    monkeypatch.setattr(aiortc.RTCDataChannel, "send", send)
    return seen


# -- a transfer's worth of chunks ---------------------------------------------------------------


async def test_eight_mib_of_chunks_arrive_in_order_while_chat_flows(
    pair: FilesPair, files_sends: list[tuple[int, int]]
) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    chunks = [i.to_bytes(4, "big") + rng.randbytes(FILE_CHUNK - 4) for i in range(FILE_CHUNKS)]
    marker = b"chat sent after 4 MiB of chunks were queued"
    chat_a = [f"a{i}".encode() for i in range(FILE_CHUNKS // 16)]
    chat_b = [f"b{i}".encode() for i in range(FILE_CHUNKS // 16)]

    async def send_chunks() -> None:
        for i, chunk in enumerate(chunks):
            await pair.a.async_send_file_chunk(chunk)
            if i % 16 == 0:
                pair.a.send(chat_a[i // 16])
                pair.b.send(chat_b[i // 16])  # and the other way, at the same time
            if i == FILE_CHUNKS // 2 - 1:
                pair.a.send(marker)

    async with asyncio.timeout(HANG):
        await send_chunks()
    await pair.got_b.wait_for("file", FILE_CHUNKS)
    await pair.got_b.wait_for("chat", len(chat_a) + 1)
    await pair.got_a.wait_for("chat", len(chat_b))

    assert pair.got_b.of("file") == chunks, f"seed {seed}"
    assert [m for m in pair.got_b.of("chat") if m != marker] == chat_a
    assert pair.got_a.of("chat") == chat_b
    assert pair.got_a.of("file") == []
    # aiortc sends every channel's messages from one FIFO: the chat message queued once
    # half the chunks were queued goes out before the chunks queued after it.
    assert pair.got_b.log.index(("chat", marker)) < pair.got_b.log.index(("file", chunks[-1]))
    assert len(files_sends) == FILE_CHUNKS  # each checked against the bound as it was sent
    assert pair.a.state is LinkState.OPEN
    assert pair.b.state is LinkState.OPEN


async def test_concurrent_senders_keep_the_bound(
    pair: FilesPair, files_sends: list[tuple[int, int]]
) -> None:
    """Four transfers at once (the per-peer limit) wait together; each send still finds
    at most FILES_LOW_WATER queued."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    streams = [[bytes([s]) + rng.randbytes(FILE_CHUNK - 1) for _ in range(16)] for s in range(4)]

    async def sender(chunks: list[bytes]) -> None:
        for chunk in chunks:
            await pair.a.async_send_file_chunk(chunk)

    async with asyncio.timeout(HANG):
        await asyncio.gather(*(sender(chunks) for chunks in streams))
    await pair.got_b.wait_for("file", 64)
    got = pair.got_b.of("file")
    for s, chunks in enumerate(streams):
        assert [c for c in got if c[0] == s] == chunks, f"seed {seed}"
    assert len(files_sends) == 64


# -- limits and ends ------------------------------------------------------------------------


async def test_send_file_chunk_refusals(pair: FilesPair) -> None:
    with pytest.raises(MessageTooLargeError, match="limit") as info:
        await pair.a.async_send_file_chunk(b"x" * (MAX_MESSAGE_SIZE + 1))
    assert isinstance(info.value, TransportError)
    with pytest.raises(TypeError, match="bytes"):
        await pair.a.async_send_file_chunk("text")  # type: ignore[arg-type]
    await pair.a.async_send_file_chunk(b"x" * MAX_MESSAGE_SIZE)
    await pair.got_b.wait_for("file", 1)
    assert pair.got_b.of("file") == [b"x" * MAX_MESSAGE_SIZE]
    await pair.a.async_close()
    with pytest.raises(LinkClosedError):
        await pair.a.async_send_file_chunk(b"late")
    await pair.got_b.wait_closed()
    with pytest.raises(LinkClosedError):
        await pair.b.async_send_file_chunk(b"late")


async def test_waiting_send_is_interrupted_when_the_link_closes(pair: FilesPair) -> None:
    channel = pair.a._files_channel
    assert channel is not None
    for _ in range(32):  # 2 MiB queued behind the API's back: the next send must wait
        channel.send(b"z" * FILE_CHUNK)
    late = asyncio.create_task(pair.a.async_send_file_chunk(b"w" * FILE_CHUNK))
    await asyncio.sleep(0)
    assert not late.done()
    await pair.a.async_close()
    with pytest.raises(LinkClosedError):
        async with asyncio.timeout(HANG):
            await late
    assert pair.a.state is LinkState.CLOSED


async def test_text_on_the_files_channel_fails_the_link(pair: FilesPair) -> None:
    channel = pair.a._files_channel  # the only way to send text there is to bypass the API
    assert channel is not None
    await pair.a.async_send_file_chunk(b"fine")
    channel.send("text is not a file chunk")
    await pair.got_b.wait_closed()
    assert pair.got_b.of("file") == [b"fine"]
    assert pair.b.state is LinkState.FAILED
    assert "text message on the files channel" in (pair.b.close_reason or "")


async def test_closing_the_link_closes_both_channels(pair: FilesPair) -> None:
    channels = [pair.a._channel, pair.a._files_channel, pair.b._channel, pair.b._files_channel]
    assert [c.readyState for c in channels if c is not None] == ["open"] * 4
    await pair.a.async_close()
    await pair.got_b.wait_closed()
    await pair.b.async_close()
    assert [c.readyState for c in channels if c is not None] == ["closed"] * 4


# -- a raw peer ---------------------------------------------------------------------------


@dataclass
class RawPeer:
    pc: aiortc.RTCPeerConnection
    chat: aiortc.RTCDataChannel
    files: aiortc.RTCDataChannel
    link: DataChannelLink  # the link that answered it
    got: Receiver  # what the link delivered

    async def close(self) -> None:
        await self.link.async_close()
        await self.pc.close()


async def raw_peer_with_files() -> RawPeer:
    """A raw aiortc offerer with the chat and files channels, answered by a link; opened."""
    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    chat = pc.createDataChannel(CHANNEL_LABEL)
    files = pc.createDataChannel(FILES_CHANNEL_LABEL, negotiated=True, id=FILES_CHANNEL_ID)
    await pc.setLocalDescription(await pc.createOffer())
    got = Receiver()
    link, answer = await DataChannelLink.async_accept_offer(
        pc.localDescription.sdp,
        on_message=got.on_message,
        on_closed=got.on_closed,
        interfaces=LOOPBACK,
    )
    link.on_file_chunk = got.on_file_chunk
    opened = asyncio.Event()
    chat.on("open", opened.set)
    await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
    async with asyncio.timeout(HANG):
        await opened.wait()
    await link.async_wait_open(HANG)
    return RawPeer(pc, chat, files, link, got)


@pytest.mark.parametrize(
    ("label", "options"),
    [
        ("other", {}),
        (CHANNEL_LABEL, {}),  # a second chat channel
        (FILES_CHANNEL_LABEL, {}),  # the files channel opened in-band instead
        (FILES_CHANNEL_LABEL, {"negotiated": True, "id": 4}),  # pre-agreed, wrong id: no DCEP
    ],
    ids=["other", "second-chat", "files-by-dcep", "negotiated-other-id"],
)
async def test_peer_opening_a_third_channel_is_refused(
    label: str, options: dict[str, object]
) -> None:
    peer = await raw_peer_with_files()
    try:
        peer.files.send(b"chunk 0")
        await peer.got.wait_for("file", 1)
        assert peer.got.of("file") == [b"chunk 0"]
        third = peer.pc.createDataChannel(label, **options)  # type: ignore[arg-type]
        if options.get("negotiated"):
            third.send(b"sneaky")  # nothing announces it: its data is all we see
        await peer.got.wait_closed()
        assert peer.link.state is LinkState.FAILED
        reason = peer.link.close_reason or ""
        assert "another data channel" in reason or "stream 4, which has no data channel" in reason
        assert peer.got.of("file") == [b"chunk 0"]
        with pytest.raises(LinkFailedError):
            await peer.link.async_send_file_chunk(b"late")
    finally:
        await peer.close()


async def test_files_chunk_from_peer_without_callback_is_dropped() -> None:
    peer = await raw_peer_with_files()
    try:
        peer.link.on_file_chunk = None
        peer.files.send(b"nobody listens")
        peer.chat.send(b"fence")
        await peer.got.wait_for("chat", 1)  # sent after the chunk, from the same SCTP queue
        peer.link.on_file_chunk = peer.got.on_file_chunk
        peer.files.send(b"heard")
        await peer.got.wait_for("file", 1)
        assert peer.got.of("file") == [b"heard"]
        assert peer.link.state is LinkState.OPEN
    finally:
        await peer.close()


async def test_browser_like_peer_without_files_channel_still_works() -> None:
    """A guest's browser opens the chat channel only (step 1): both a guest-host link
    (``files_channel=False``) and a default one answer it and chat works."""
    for files_channel in (False, True):
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        chat = pc.createDataChannel(CHANNEL_LABEL)
        await pc.setLocalDescription(await pc.createOffer())
        got = Receiver()
        link, answer = await DataChannelLink.async_accept_offer(
            pc.localDescription.sdp,
            on_message=got.on_message,
            on_closed=got.on_closed,
            interfaces=LOOPBACK,
            files_channel=files_channel,
        )
        try:
            opened = asyncio.Event()
            chat.on("open", opened.set)
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
            async with asyncio.timeout(HANG):
                await opened.wait()
            await link.async_wait_open(HANG)
            chat.send(b"hello from a browser")
            await got.wait_for("chat", 1)
            assert got.of("chat") == [b"hello from a browser"]
            if not files_channel:
                with pytest.raises(LocalTransportError, match="no files channel"):
                    await link.async_send_file_chunk(b"x")
            assert link.state is LinkState.OPEN
        finally:
            await link.async_close()
            await pc.close()


# -- the SCTP bounds with two channels ---------------------------------------------------------


async def test_endless_message_on_the_files_stream_is_cut_at_the_message_bound() -> None:
    duel = await open_duel()
    try:
        await run(
            duel,
            attack.queue_chunks(
                duel.sctp,
                attack.endless_message(duel.sctp, stream_id=FILES_CHANNEL_ID, total=4 * WINDOW),
                duel.over,
            ),
        )
        assert_cut_off(
            duel, "oversized message", f"stream {FILES_CHANNEL_ID}", str(MAX_MESSAGE_SIZE)
        )
        await assert_aborted_with(duel, duel.link.close_reason or "")
        assert duel.spy.in_order_bytes <= MAX_MESSAGE_SIZE + CHUNK
        assert duel.spy.total_bytes <= WINDOW + MAX_MESSAGE_SIZE + CHUNK
    finally:
        await duel.close()
