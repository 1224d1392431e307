"""A peer that abuses SCTP reassembly is cut off before it costs memory (issue 9, finding 3).

Victim: a real ``DataChannelLink`` (its SCTP bounded by p2pchat/transport/sctp_bounds.py).
Attacker: a raw aiortc ``RTCPeerConnection`` whose SCTP transport sends hand-made DATA
chunks (tests/integration/sctp_attacker.py): a message that never ends, data on a
stream nobody opened, a gap it never fills, and so on. For each attack the victim's link
must end FAILED with a reason that says what the peer did, the attacker must receive an
SCTP ABORT saying the same, and the victim's reassembly buffer (inspected after every
DATA chunk, not RSS) must never have held more than the bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiortc
import pytest
from aiortc.rtcsctptransport import (
    USERDATA_MAX_LENGTH,
    AbortChunk,
    Chunk,
    DataChunk,
    ForwardTsnChunk,
    InboundStream,
    RTCSctpTransport,
)
from aiortc.utils import uint32_gte

from p2pchat.transport import (
    CHANNEL_LABEL,
    MAX_MESSAGE_SIZE,
    DataChannelLink,
    LinkState,
    sctp_bounds,
)
from p2pchat.transport.sctp_bounds import (
    MAX_FRAGMENTS,
    MAX_OUT_OF_ORDER,
    MAX_PENDING_STREAMS,
    AiortcInternalsError,
    BoundedSctpTransport,
    bound_sctp_transport,
)
from tests.integration import sctp_attacker as attack
from tests.integration.test_webrtc_link import HANG, LOOPBACK, Inbox, open_pair

WINDOW = 1024 * 1024  # aiortc's receive window, which the bounds keep
CHUNK = USERDATA_MAX_LENGTH
FINAL = (LinkState.CLOSED, LinkState.FAILED)


@pytest.fixture(autouse=True)
def no_default_stun(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> list[aiortc.RTCIceServer]:
        raise AssertionError("aiortc default STUN servers were used")

    monkeypatch.setattr(
        aiortc.RTCIceGatherer, "getDefaultIceServers", classmethod(lambda cls: refuse())
    )


# -- what the victim holds -----------------------------------------------------------------


@dataclass
class HeldSpy:
    """Largest reassembly state of the victim's SCTP, measured after every DATA chunk
    and just before an abort frees it."""

    total_bytes: int = 0
    total_chunks: int = 0
    in_order_bytes: int = 0  # on one stream, at or below the cumulative TSN

    def install(self, sctp: RTCSctpTransport) -> None:
        receive = sctp._receive_data_chunk

        async def receive_data_chunk(chunk: DataChunk) -> None:
            await receive(chunk)
            self.measure(sctp)

        sctp._receive_data_chunk = receive_data_chunk  # type: ignore[method-assign]
        abort = getattr(sctp, "_async_abort_for", None)
        if abort is not None:

            async def abort_for(*args: object) -> None:
                self.measure(sctp)
                await abort(*args)

            sctp._async_abort_for = abort_for  # type: ignore[attr-defined]

    def measure(self, sctp: RTCSctpTransport) -> None:
        cumulative = sctp._last_received_tsn
        streams = list(sctp._inbound_streams.values())
        self.total_chunks = max(self.total_chunks, sum(len(s.reassembly) for s in streams))
        self.total_bytes = max(
            self.total_bytes, sum(len(c.user_data) for s in streams for c in s.reassembly)
        )
        for stream in streams:
            self.in_order_bytes = max(self.in_order_bytes, in_order_bytes(stream, cumulative))


def in_order_bytes(stream: InboundStream, cumulative: int | None) -> int:
    size = 0
    for chunk in stream.reassembly:
        if cumulative is None or not uint32_gte(cumulative, chunk.tsn):
            break
        size += len(chunk.user_data)
    return size


# -- a victim link and a raw attacker ----------------------------------------------------------


@dataclass
class Duel:
    link: DataChannelLink
    inbox: Inbox
    attacker: aiortc.RTCPeerConnection
    channel: aiortc.RTCDataChannel  # the attacker's end of the link's data channel
    spy: HeldSpy = field(default_factory=HeldSpy)
    aborts: list[list[tuple[int, bytes]]] = field(default_factory=list)

    @property
    def sctp(self) -> RTCSctpTransport:
        assert self.attacker.sctp is not None
        return self.attacker.sctp

    @property
    def stream(self) -> int:
        assert self.channel.id is not None
        return self.channel.id

    def over(self) -> bool:
        return self.link.state in FINAL

    async def close(self) -> None:
        await self.link.async_close()
        await self.attacker.close()

    def watch_for_abort(self) -> None:
        """Record the causes of every ABORT chunk the attacker receives."""
        receive_chunk = self.sctp._receive_chunk

        async def spy(chunk: Chunk) -> None:
            if isinstance(chunk, AbortChunk):
                self.aborts.append(list(chunk.params))
            await receive_chunk(chunk)

        self.sctp._receive_chunk = spy  # type: ignore[method-assign]


async def open_duel(*, victim_offers: bool = False) -> Duel:
    inbox = Inbox()
    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    got_channel: asyncio.Future[aiortc.RTCDataChannel] = asyncio.get_running_loop().create_future()
    if victim_offers:
        link, offer = await DataChannelLink.async_create_offer(
            on_message=inbox.on_message, on_closed=inbox.on_closed, interfaces=LOOPBACK
        )
        pc.on("datachannel", got_channel.set_result)
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await link.async_apply_answer(pc.localDescription.sdp)
    else:
        channel = pc.createDataChannel(CHANNEL_LABEL)
        channel.on("open", lambda: got_channel.set_result(channel))
        await pc.setLocalDescription(await pc.createOffer())
        link, answer = await DataChannelLink.async_accept_offer(
            pc.localDescription.sdp,
            on_message=inbox.on_message,
            on_closed=inbox.on_closed,
            interfaces=LOOPBACK,
        )
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
    duel = Duel(link, inbox, pc, channel=None)  # type: ignore[arg-type]
    victim_sctp = link._pc.sctp
    assert victim_sctp is not None
    duel.spy.install(victim_sctp)
    async with asyncio.timeout(HANG):
        duel.channel = await got_channel
    await link.async_wait_open(HANG)
    duel.watch_for_abort()
    return duel


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(HANG):
        while not condition():  # noqa: ASYNC110 - aiortc state has no event to wait on
            await asyncio.sleep(0.01)


async def run(duel: Duel, sending: Awaitable[int]) -> None:
    """Run one attack to its end: the victim cut it off, or everything was delivered."""
    await sending
    await until(lambda: duel.over() or attack.all_acked(duel.sctp))


def assert_cut_off(duel: Duel, *reason_parts: str) -> None:
    reason = duel.link.close_reason or ""
    assert duel.link.state is LinkState.FAILED, (duel.link.state, reason)
    for part in reason_parts:
        assert part in reason, reason
    assert duel.inbox.closed == 1
    victim_sctp = duel.link._pc.sctp
    assert isinstance(victim_sctp, BoundedSctpTransport)
    assert victim_sctp.bounds_violation == reason


async def assert_aborted_with(duel: Duel, reason: str) -> None:
    """The attacker got an SCTP ABORT whose Protocol Violation cause is the reason."""
    await until(lambda: bool(duel.aborts))
    assert duel.aborts == [[(13, reason.encode())]]


async def send_whole(duel: Duel, count: int, size: int, seed: int) -> list[bytes]:
    """Normal messages over the attacker's real channel: they must arrive intact."""
    rng = random.Random(seed)
    sent = [rng.randbytes(size) for _ in range(count)]
    before = len(duel.inbox.messages)
    for message in sent:
        duel.channel.send(message)
    await duel.inbox.wait_for(before + count)
    assert duel.inbox.messages[before:] == sent, f"seed {seed}"
    return sent


# -- a message that never ends ---------------------------------------------------------------


async def test_endless_message_on_the_channel_is_cut_at_the_message_bound() -> None:
    seed = random.randrange(2**32)
    bystanders = await open_pair()
    duel = await open_duel()
    try:
        # Largest messages still pass, whole, before and between the bounds.
        await send_whole(duel, 8, MAX_MESSAGE_SIZE, seed)
        stream = duel.stream
        await run(
            duel,
            attack.queue_chunks(
                duel.sctp,
                attack.endless_message(duel.sctp, stream_id=stream, total=4 * WINDOW),
                duel.over,
            ),
        )
        assert_cut_off(duel, "oversized message", f"stream {stream}", str(MAX_MESSAGE_SIZE))
        await assert_aborted_with(duel, duel.link.close_reason or "")
        assert duel.spy.in_order_bytes <= MAX_MESSAGE_SIZE + CHUNK
        assert duel.spy.total_bytes <= WINDOW + MAX_MESSAGE_SIZE + CHUNK
        # Another session in the same process carries on.
        bystanders.a.send(b"still here?")
        bystanders.b.send(b"yes")
        await bystanders.inbox_b.wait_for(1)
        await bystanders.inbox_a.wait_for(1)
        assert bystanders.a.state is LinkState.OPEN
    finally:
        await duel.close()
        await bystanders.a.async_close()
        await bystanders.b.async_close()


@pytest.mark.parametrize("victim_offers", [False, True], ids=["victim-answers", "victim-offers"])
async def test_endless_message_on_a_stream_with_no_channel_is_cut_at_once(
    victim_offers: bool,
) -> None:
    duel = await open_duel(victim_offers=victim_offers)
    try:
        await run(
            duel,
            attack.queue_chunks(
                duel.sctp,
                attack.endless_message(duel.sctp, stream_id=9, total=4 * WINDOW),
                duel.over,
            ),
        )
        assert_cut_off(duel, "stream 9, which has no data channel")
        await assert_aborted_with(duel, duel.link.close_reason or "")
        assert duel.spy.total_bytes <= CHUNK
    finally:
        await duel.close()


async def test_endless_data_channel_open_on_a_new_stream_is_bounded_too() -> None:
    """The DCEP OPEN that creates a channel arrives on a stream with no channel yet: it is
    let through, and bounded like any message."""
    duel = await open_duel()
    try:
        await run(
            duel,
            attack.queue_chunks(
                duel.sctp,
                attack.endless_message(
                    duel.sctp, stream_id=11, ppid=attack.WEBRTC_DCEP, total=4 * WINDOW
                ),
                duel.over,
            ),
        )
        assert_cut_off(duel, "oversized message", "stream 11")
        assert duel.spy.in_order_bytes <= MAX_MESSAGE_SIZE + CHUNK
    finally:
        await duel.close()


async def test_message_in_tiny_pieces_is_cut_at_the_fragment_bound() -> None:
    duel = await open_duel()
    try:
        await run(
            duel,
            attack.queue_chunks(
                duel.sctp,
                attack.endless_message(
                    duel.sctp, stream_id=duel.stream, total=64 * MAX_FRAGMENTS, fragment=4
                ),
                duel.over,
            ),
        )
        assert_cut_off(duel, f"message in more than {MAX_FRAGMENTS} pieces on stream {duel.stream}")
        await assert_aborted_with(duel, duel.link.close_reason or "")
        assert duel.spy.total_chunks <= MAX_OUT_OF_ORDER + MAX_FRAGMENTS + 1
    finally:
        await duel.close()


async def test_unfinished_messages_on_many_streams_are_bounded() -> None:
    duel = await open_duel()
    try:
        await run(
            duel,
            attack.queue_chunks(
                duel.sctp,
                attack.unfinished_on_streams(
                    duel.sctp, first_stream=101, streams=4 * MAX_PENDING_STREAMS, size=1000
                ),
                duel.over,
            ),
        )
        assert_cut_off(duel, f"more than {MAX_PENDING_STREAMS} streams")
        assert duel.spy.total_chunks <= MAX_PENDING_STREAMS + 1
    finally:
        await duel.close()


# -- a gap the peer never fills ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "count"), [(1000, 64 * 1024), (4, 64 * 1024)], ids=["bytes", "chunks"]
)
async def test_flood_past_the_receive_window_is_dropped_then_cut_off(size: int, count: int) -> None:
    """Behind a gap the victim holds up to its window (1 MiB, or 1,024 chunks of 4
    bytes), drops the rest unread (RFC 9260 6.2), and cuts off a peer that keeps
    sending regardless."""
    duel = await open_duel()
    try:
        attack.ignore_sacks(duel.sctp)
        attack.skip_tsn(duel.sctp)
        await attack.blast_chunks(
            duel.sctp,
            attack.whole_messages(duel.sctp, stream_id=duel.stream, count=count, size=size),
            duel.over,
        )
        await until(duel.over)
        assert_cut_off(duel, "kept sending past our receive window")
        await assert_aborted_with(duel, duel.link.close_reason or "")
        assert duel.spy.total_bytes <= WINDOW + CHUNK
        assert duel.spy.total_chunks <= MAX_OUT_OF_ORDER + 1
    finally:
        await duel.close()


# -- malformed input aiortc would raise on --------------------------------------------------


class RawChunk(Chunk):
    """Any chunk type with any body (aiortc's classes always write well-formed ones)."""

    def __init__(self, chunk_type: int, body: bytes, flags: int = 0) -> None:
        super().__init__(flags=flags, body=body)
        self.type = chunk_type


def second_open(duel: Duel) -> Chunk:
    body = struct.pack("!BBHLHH", 3, 0, 0, 0, len(CHANNEL_LABEL), 0) + CHANNEL_LABEL.encode()
    return attack.new_chunk(
        duel.sctp,
        stream_id=duel.stream,
        ppid=attack.WEBRTC_DCEP,
        flags=attack.WHOLE,
        stream_seq=attack.next_stream_seq(duel.sctp, duel.stream),
        data=body,
    )


def empty_data(duel: Duel) -> Chunk:
    return attack.new_chunk(
        duel.sctp, stream_id=duel.stream, ppid=attack.WEBRTC_BINARY, flags=attack.WHOLE,
        stream_seq=attack.next_stream_seq(duel.sctp, duel.stream), data=b"",
    )  # fmt: skip


def truncated_data(duel: Duel) -> Chunk:
    return RawChunk(DataChunk.type, b"\x00\x00\x00\x01", flags=attack.WHOLE)


def skip_on_stream_9(duel: Duel) -> Chunk:
    chunk = ForwardTsnChunk()
    chunk.cumulative_tsn = duel.sctp._local_tsn
    chunk.streams = [(9, 0)]
    return chunk


def bad_text(duel: Duel) -> Chunk:
    return attack.new_chunk(
        duel.sctp, stream_id=duel.stream, ppid=51, flags=attack.WHOLE,
        stream_seq=attack.next_stream_seq(duel.sctp, duel.stream), data=b"\xff\xfe",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("make_chunk", "reason"),
    [
        (second_open, "opened stream {stream} a second time"),
        (empty_data, "DATA chunk with no data"),
        (truncated_data, "malformed SCTP chunk"),
        (skip_on_stream_9, "skipped data on stream 9, which has no data channel"),
        (bad_text, "text message that is not UTF-8"),
    ],
    ids=["second-open", "empty-data", "truncated-data", "forward-tsn-stream-9", "bad-utf8"],
)
async def test_malformed_input_is_a_clean_abort(
    make_chunk: Callable[[Duel], Chunk], reason: str
) -> None:
    """Each of these made aiortc raise inside its receive loop (DTLS torn down, a
    traceback logged); now the link fails with the reason and the peer gets an ABORT."""
    duel = await open_duel()
    try:
        await duel.sctp._send_chunk(make_chunk(duel))
        await until(duel.over)
        assert_cut_off(duel, reason.format(stream=duel.stream))
        await until(lambda: bool(duel.aborts))
    finally:
        await duel.close()


# -- aiortc's internals, pinned ------------------------------------------------------------

#: SHA-256 of the aiortc 1.16.0 source that p2pchat/transport/sctp_bounds.py overrides or
#: depends on. A new aiortc that changes any of it fails here: re-read sctp_bounds.py
#: against the new code (and its docstring's version), then update the hashes.
PINNED_SOURCE = {
    "RTCSctpTransport.__init__": "294b0e510843850977697fc56059d70ae4f55e28ed88f1d66046e69e648d2c31",
    "RTCSctpTransport._handle_data": "8661b724e20776bbf9af6f68a828cfb952d2deb617d7a9e0f143d641bdae95e2",
    "RTCSctpTransport._receive_data_chunk": "790c2bb8cd0f5dd735cb051ac669ccc5749a25965fb19a6aeb740fc861563048",
    "RTCSctpTransport._receive_forward_tsn_chunk": "a7b72a09e9c4bb20d2d25dca2563bdeccfb7cb2c35c73009e4a589772c7b7d41",
    "RTCSctpTransport._receive": "802b1265df7b61746ec624b71abebff654487db5a9090d1509eb22038c64fd19",
    "RTCSctpTransport._data_channel_receive": "3df88b4b9c662b3bafeab11951c1efb218c5c8b8d56c1d4e12acf6b1841b6c4b",
    "RTCSctpTransport._mark_received": "2ac68b6a3934ca87cf9d9383d4dd764a8fbef83c9d06f9a0435bedde7df46499",
    "RTCSctpTransport._reset_deferred_streams": "e8a288bf519131b3c5b4486cbefd61b56ebd7281678f034c9ec722272e213962",
    "RTCSctpTransport._set_state": "72015aed4aa46827bb24e779a444974137dac223d15df6dc3bf407a59f90c1d4",
    "RTCSctpTransport._send_sack": "ac92513522fa60e7f298fd0e5849dd8b9aa9ac969cf840aa653f96c2de690d43",
    "InboundStream": "b63993b481ece97b042cf3528677eba90aca6bdeb240193b4646b57be6ed737f",
    "parse_packet": "b88a5f1d01e14c5f77eea2ef5ab17c7afc7c8ac8d0bae50b6d362d7a46ad9249",
    "DataChunk": "c5408cf1d59af5baeab082bb19872b868736665995d28558db065346939576ea",
}


def source_hash(qualified_name: str) -> str:
    from aiortc import rtcsctptransport

    obj: object = rtcsctptransport
    for part in qualified_name.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(PINNED_SOURCE))
def test_aiortc_internals_are_the_ones_the_bounds_were_written_for(name: str) -> None:
    assert source_hash(name) == PINNED_SOURCE[name], (
        f"aiortc {aiortc.__version__} changed {name}, which p2pchat/transport/sctp_bounds.py "
        "relies on: re-check the bounds against it, then update PINNED_SOURCE"
    )


async def test_a_changed_aiortc_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A renamed method (checked at import) or missing state (checked when a transport is
    bound) is a clear error that says what to do, never a silently unbounded receiver."""
    monkeypatch.delattr(RTCSctpTransport, "_receive_data_chunk")
    with pytest.raises(AiortcInternalsError, match=r"_receive_data_chunk is gone.*install aiortc"):
        sctp_bounds._check_aiortc_internals()
    monkeypatch.undo()

    class Dtls:
        state = "new"

    sctp = RTCSctpTransport(Dtls())  # type: ignore[arg-type]
    del sctp._sack_misordered
    with pytest.raises(AiortcInternalsError, match="_sack_misordered"):
        bound_sctp_transport(sctp, max_message_size=MAX_MESSAGE_SIZE)
    assert type(sctp) is RTCSctpTransport
