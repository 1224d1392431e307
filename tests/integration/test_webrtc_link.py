"""DataChannelLink against real aiortc: two links (or a link and a raw aiortc peer) in
one process, ICE over loopback (``interfaces=["lo"]``) unless a test says otherwise.

Timeouts here only catch hangs; timing goals live in bench/bench_raw_aiortc.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiortc
import pytest

from p2pchat.transport import (
    CHANNEL_LABEL,
    MAX_BUFFERED_AMOUNT,
    MAX_MESSAGE_SIZE,
    DataChannelLink,
    LinkClosedError,
    LinkFailedError,
    LinkState,
    LinkTimeoutError,
    LocalTransportError,
    MessageTooLargeError,
    RemoteSdpError,
    SendBufferFullError,
    TransportError,
)
from p2pchat.transport.sdp import MAX_SDP_SIZE

HANG = 30.0  # seconds: far above any healthy run, only there to turn a hang into a failure
LOOPBACK = ["lo"]


@dataclass
class Inbox:
    """Collects what one link delivers, with a way to wait for it."""

    messages: list[bytes] = field(default_factory=list)
    closed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)
        self.changed.set()

    def on_closed(self) -> None:
        self.closed += 1
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(HANG):
            while len(self.messages) < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_closed(self) -> None:
        async with asyncio.timeout(HANG):
            while not self.closed:
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Pair:
    a: DataChannelLink
    b: DataChannelLink
    inbox_a: Inbox
    inbox_b: Inbox


async def open_pair(interfaces: list[str] | None = LOOPBACK) -> Pair:
    inbox_a, inbox_b = Inbox(), Inbox()
    async with asyncio.timeout(HANG):
        a, offer = await DataChannelLink.async_create_offer(
            on_message=inbox_a.on_message, on_closed=inbox_a.on_closed, interfaces=interfaces
        )
        b, answer = await DataChannelLink.async_accept_offer(
            offer, on_message=inbox_b.on_message, on_closed=inbox_b.on_closed, interfaces=interfaces
        )
        await a.async_apply_answer(answer)
    await a.async_wait_open(HANG)
    await b.async_wait_open(HANG)
    return Pair(a, b, inbox_a, inbox_b)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    p = await open_pair()
    yield p
    await p.a.async_close()
    await p.b.async_close()


@pytest.fixture(autouse=True)
def no_default_stun(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if anything falls back to aiortc's default (Google) STUN server.

    With no internet that fallback stalls gathering ~5 s: checking the cause here keeps
    timing out of the tests.
    """

    def refuse() -> list[aiortc.RTCIceServer]:
        raise AssertionError("aiortc default STUN servers were used")

    monkeypatch.setattr(
        aiortc.RTCIceGatherer, "getDefaultIceServers", classmethod(lambda cls: refuse())
    )


def state_of(link: DataChannelLink) -> LinkState:
    return link.state  # a call, so that mypy does not keep a narrowed state across awaits


def candidate_addresses(sdp: str) -> set[str]:
    return {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}


# -- opening ---------------------------------------------------------------------------


async def test_link_opens_both_sides(pair: Pair) -> None:
    assert pair.a.state is LinkState.OPEN
    assert pair.b.state is LinkState.OPEN
    assert pair.a.close_reason is None
    assert pair.a.buffered_amount == 0
    # No ICE servers (the LAN): the nominated pair is host/prflx on both sides.
    assert pair.a.selected_path == pair.b.selected_path == "direct"


async def test_offer_is_complete_and_bounded() -> None:
    a, offer = await DataChannelLink.async_create_offer(
        on_message=lambda _: None, interfaces=LOOPBACK
    )
    try:
        assert state_of(a) is LinkState.NEW
        assert "a=end-of-candidates" in offer  # no trickle: everything is in the SDP
        assert candidate_addresses(offer) <= {"127.0.0.1", "::1"}
        assert "127.0.0.1" in candidate_addresses(offer)
        assert f"a=max-message-size:{MAX_MESSAGE_SIZE}" in offer
        assert "typ srflx" not in offer
    finally:
        await a.async_close()
    assert state_of(a) is LinkState.CLOSED


async def test_default_interfaces_open_a_link() -> None:
    """Without ``interfaces`` aioice uses every non-loopback address of the machine."""
    try:
        p = await open_pair(interfaces=None)
    except LinkFailedError as exc:  # a machine with loopback only
        pytest.skip(f"no non-loopback address to test default gathering: {exc}")
    try:
        p.a.send(b"ping")
        await p.inbox_b.wait_for(1)
        assert p.inbox_b.messages == [b"ping"]
    finally:
        await p.a.async_close()
        await p.b.async_close()


async def test_unknown_interface_is_refused() -> None:
    with pytest.raises(LocalTransportError, match="unknown network interface"):
        await DataChannelLink.async_create_offer(
            on_message=lambda _: None, interfaces=["no-such-if0"]
        )
    with pytest.raises(LocalTransportError, match="at least one"):
        await DataChannelLink.async_create_offer(on_message=lambda _: None, interfaces=[])


async def test_interface_restriction_does_not_leak_to_other_links() -> None:
    restricted, offer_lo = await DataChannelLink.async_create_offer(
        on_message=lambda _: None, interfaces=LOOPBACK
    )
    free, offer_all = await DataChannelLink.async_create_offer(on_message=lambda _: None)
    try:
        assert candidate_addresses(offer_lo) <= {"127.0.0.1", "::1"}
        assert not candidate_addresses(offer_all) & {"127.0.0.1", "::1"}
    finally:
        await restricted.async_close()
        await free.async_close()


async def test_wait_open_times_out_and_fails_the_link() -> None:
    inbox = Inbox()
    a, _offer = await DataChannelLink.async_create_offer(
        on_message=inbox.on_message, on_closed=inbox.on_closed, interfaces=LOOPBACK
    )
    with pytest.raises(LinkTimeoutError, match="did not open"):
        await a.async_wait_open(0.2)  # nobody answers
    assert a.state is LinkState.FAILED
    assert inbox.closed == 1
    with pytest.raises(LinkFailedError):
        await a.async_wait_open(1)
    await a.async_close()
    assert inbox.closed == 1


# -- messages --------------------------------------------------------------------------


async def test_thousand_messages_each_way_arrive_in_order_and_intact(pair: Pair) -> None:
    count = 1000

    def message(side: bytes, i: int) -> bytes:
        # Varied sizes, including empty and the largest allowed message.
        size = (i * 37) % 3000
        if i == 500:
            size = MAX_MESSAGE_SIZE - 16
        body = bytes((i + k) & 0xFF for k in range(size))
        return side + i.to_bytes(4, "big") + body if i != 7 else b""

    sent_a = [message(b"A", i) for i in range(count)]
    sent_b = [message(b"B", i) for i in range(count)]
    for i in range(count):
        pair.a.send(sent_a[i])
        pair.b.send(sent_b[i])
        if i % 100 == 99:
            await pair.a.async_drain()
            await pair.b.async_drain()
    await pair.inbox_b.wait_for(count)
    await pair.inbox_a.wait_for(count)
    assert pair.inbox_b.messages == sent_a
    assert pair.inbox_a.messages == sent_b


async def test_oversized_send_is_refused_and_link_stays_usable(pair: Pair) -> None:
    with pytest.raises(MessageTooLargeError, match="limit"):
        pair.a.send(b"x" * (MAX_MESSAGE_SIZE + 1))
    with pytest.raises(TypeError, match="bytes"):
        pair.a.send("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        pair.a.send(bytearray(b"x"))  # type: ignore[arg-type]
    pair.a.send(b"x" * MAX_MESSAGE_SIZE)
    await pair.inbox_b.wait_for(1)
    assert pair.inbox_b.messages == [b"x" * MAX_MESSAGE_SIZE]
    assert pair.a.state is LinkState.OPEN


async def test_send_buffer_is_bounded_and_drains(pair: Pair) -> None:
    chunk = b"y" * 60_000
    sent = MAX_BUFFERED_AMOUNT // len(chunk)
    for _ in range(sent):
        pair.a.send(chunk)  # no await: nothing leaves the buffer until we yield
    assert pair.a.buffered_amount == sent * len(chunk)
    with pytest.raises(SendBufferFullError, match="async_drain"):
        pair.a.send(chunk)
    async with asyncio.timeout(HANG):
        await pair.a.async_drain(low_water=0)
    assert pair.a.buffered_amount == 0
    await pair.inbox_b.wait_for(sent)
    assert len(pair.inbox_b.messages) == sent


async def test_drain_is_interrupted_when_the_link_closes(pair: Pair) -> None:
    for _ in range(60):
        pair.a.send(b"z" * 60_000)
    drain = asyncio.create_task(pair.a.async_drain(low_water=0))
    await asyncio.sleep(0)
    await pair.a.async_close()
    with pytest.raises(LinkClosedError):
        await asyncio.wait_for(drain, HANG)


async def test_send_before_open_is_a_local_error() -> None:
    a, _offer = await DataChannelLink.async_create_offer(
        on_message=lambda _: None, interfaces=LOOPBACK
    )
    try:
        with pytest.raises(LocalTransportError, match="not open"):
            a.send(b"early")
    finally:
        await a.async_close()


async def test_raising_on_message_callback_does_not_break_the_link() -> None:
    received: list[bytes] = []
    got_one = asyncio.Event()

    def on_message(data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("bug in the application")
        received.append(data)
        got_one.set()

    inbox = Inbox()
    a, offer = await DataChannelLink.async_create_offer(
        on_message=inbox.on_message, interfaces=LOOPBACK
    )
    b, answer = await DataChannelLink.async_accept_offer(
        offer, on_message=on_message, interfaces=LOOPBACK
    )
    try:
        await a.async_apply_answer(answer)
        await a.async_wait_open(HANG)
        await b.async_wait_open(HANG)
        a.send(b"boom")
        a.send(b"after")
        b.send(b"ack")
        await inbox.wait_for(1)
        async with asyncio.timeout(HANG):
            await got_one.wait()
        assert received == [b"after"]
        assert b.state is LinkState.OPEN
    finally:
        await a.async_close()
        await b.async_close()


# -- closing ---------------------------------------------------------------------------


async def test_close_is_seen_by_the_peer(pair: Pair) -> None:
    await pair.a.async_close()
    assert pair.a.state is LinkState.CLOSED
    assert pair.inbox_a.closed == 1  # on_closed runs for a local close too
    await pair.inbox_b.wait_closed()
    assert pair.b.state is LinkState.CLOSED
    assert pair.b.close_reason
    with pytest.raises(LinkClosedError, match="closed"):
        pair.b.send(b"too late")
    await pair.a.async_close()  # idempotent
    await pair.b.async_close()
    assert pair.inbox_a.closed == 1
    assert pair.inbox_b.closed == 1


# -- bad SDP ---------------------------------------------------------------------------


async def real_offer() -> str:
    a, offer = await DataChannelLink.async_create_offer(
        on_message=lambda _: None, interfaces=LOOPBACK
    )
    await a.async_close()
    return offer


def audio_offer() -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
        "a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=rtcp-mux\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    )


@pytest.mark.parametrize(
    ("make_sdp", "reason"),
    [
        (lambda offer: "", "not SDP"),
        (lambda offer: "hello, I am not SDP", "not SDP"),
        (lambda offer: "v=0\r\nm=application\r\n", "malformed"),
        (
            lambda offer: "v=0\r\nm=application 9 UDP/DTLS/SCTP x\r\na=fingerprint:x\r\n",
            "malformed",
        ),
        (lambda offer: "v=0\r\n" + "a=x\r\n" * (MAX_SDP_SIZE // 5), "larger than"),
        (lambda offer: offer + "a=x:" + "é" * (MAX_SDP_SIZE // 2), "larger than"),
        (lambda offer: "v=0\r\ns=-\r\n", "exactly one m=application"),
        (lambda offer: audio_offer(), "exactly one m=application"),
        (lambda offer: offer + offer[offer.index("m=application") :], "exactly one"),
        (
            lambda offer: "\r\n".join(
                line for line in offer.split("\r\n") if not line.startswith("a=candidate")
            ),
            "no ICE candidates",
        ),
        (
            lambda offer: "\r\n".join(
                line for line in offer.split("\r\n") if not line.startswith("a=ice-pwd")
            ),
            "ICE credentials",
        ),
        (
            lambda offer: "\r\n".join(
                line for line in offer.split("\r\n") if not line.startswith("a=fingerprint")
            ),
            "DTLS fingerprint",
        ),
        (lambda offer: offer.replace("webrtc-datachannel", "5000"), "data channel"),
        (lambda offer: offer.replace("a=setup:actpass", "a=setup:bogus"), "malformed"),
        (lambda offer: offer.replace(" udp 2130706431 ", " udp x "), "malformed"),
    ],
)
async def test_bad_offer_is_a_remote_sdp_error(make_sdp: object, reason: str) -> None:
    offer = await real_offer()
    bad = make_sdp(offer)  # type: ignore[operator]
    with pytest.raises(RemoteSdpError, match=reason) as info:
        async with asyncio.timeout(HANG):
            await DataChannelLink.async_accept_offer(
                bad, on_message=lambda _: None, interfaces=LOOPBACK
            )
    assert isinstance(info.value, TransportError)
    assert "\n" not in str(info.value)


async def test_non_string_offer_is_a_remote_sdp_error() -> None:
    with pytest.raises(RemoteSdpError, match="string"):
        await DataChannelLink.async_accept_offer(
            b"v=0",  # type: ignore[arg-type]
            on_message=lambda _: None,
        )


async def test_too_many_candidates_is_a_remote_sdp_error() -> None:
    offer = await real_offer()
    extra = "".join(
        f"a=candidate:{i} 1 udp 2130706431 127.0.0.{i % 250 + 1} {9000 + i} typ host\r\n"
        for i in range(40)
    )
    flooded = offer.replace("a=end-of-candidates", extra + "a=end-of-candidates")
    with pytest.raises(RemoteSdpError, match="more than"):
        await DataChannelLink.async_accept_offer(flooded, on_message=lambda _: None)


async def test_bad_answer_is_refused_and_a_good_one_still_works() -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    a, offer = await DataChannelLink.async_create_offer(
        on_message=inbox_a.on_message, interfaces=LOOPBACK
    )
    b, answer = await DataChannelLink.async_accept_offer(
        offer, on_message=inbox_b.on_message, interfaces=LOOPBACK
    )
    try:
        with pytest.raises(RemoteSdpError, match="not SDP"):
            await a.async_apply_answer("garbage")
        with pytest.raises(RemoteSdpError, match="larger than"):
            await a.async_apply_answer("v=0\r\n" + "x" * MAX_SDP_SIZE)
        # An offer is not an answer: its a=setup:actpass is refused.
        with pytest.raises(RemoteSdpError, match="active"):
            await a.async_apply_answer(offer)
        assert a.state is LinkState.NEW
        with pytest.raises(LocalTransportError, match="made the offer"):
            await b.async_apply_answer(answer)
        await a.async_apply_answer(answer)
        with pytest.raises(LocalTransportError, match="already"):
            await a.async_apply_answer(answer)
        await a.async_wait_open(HANG)
        a.send(b"ok")
        await inbox_b.wait_for(1)
    finally:
        await a.async_close()
        await b.async_close()


# -- misbehaving peer (raw aiortc on the other side) -------------------------------------


async def raw_offerer(
    label: str = CHANNEL_LABEL, **options: object
) -> tuple[aiortc.RTCPeerConnection, aiortc.RTCDataChannel, str]:
    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel(label, **options)  # type: ignore[arg-type]
    await pc.setLocalDescription(await pc.createOffer())
    return pc, channel, pc.localDescription.sdp


async def test_text_message_from_peer_fails_the_link() -> None:
    pc, channel, offer = await raw_offerer()
    inbox = Inbox()
    link, answer = await DataChannelLink.async_accept_offer(
        offer, on_message=inbox.on_message, on_closed=inbox.on_closed
    )
    try:
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(HANG):
            await opened.wait()
        await link.async_wait_open(HANG)
        channel.send(b"fine")
        channel.send("text is not allowed")
        await inbox.wait_closed()
        assert inbox.messages == [b"fine"]
        assert link.state is LinkState.FAILED
        assert "text" in (link.close_reason or "")
    finally:
        await link.async_close()
        await pc.close()


@pytest.mark.parametrize(
    ("label", "options"),
    [("other", {}), (CHANNEL_LABEL, {"ordered": False}), (CHANNEL_LABEL, {"maxRetransmits": 0})],
)
async def test_unexpected_channel_from_peer_fails_the_link(
    label: str, options: dict[str, object]
) -> None:
    pc, _channel, offer = await raw_offerer(label, **options)
    inbox = Inbox()
    link, answer = await DataChannelLink.async_accept_offer(
        offer, on_message=inbox.on_message, on_closed=inbox.on_closed
    )
    try:
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
        with pytest.raises(LinkFailedError, match="unexpected data channel"):
            await link.async_wait_open(HANG)
        assert inbox.closed == 1
    finally:
        await link.async_close()
        await pc.close()


async def test_dtls_ending_without_sctp_close_is_a_failure() -> None:
    """A peer whose DTLS ends under a live channel (as when ICE consent expires after a
    cut, which takes ~30 s to provoke) leaves the link FAILED, not CLOSED."""
    pc, channel, offer = await raw_offerer()
    inbox = Inbox()
    link, answer = await DataChannelLink.async_accept_offer(
        offer, on_message=inbox.on_message, on_closed=inbox.on_closed
    )
    try:
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(HANG):
            await opened.wait()
        await link.async_wait_open(HANG)
        assert pc.sctp is not None
        await pc.sctp.transport.stop()  # DTLS close_notify, no SCTP ABORT first
        await inbox.wait_closed()
        assert link.state is LinkState.FAILED
        assert "lost" in (link.close_reason or "")
    finally:
        await link.async_close()
        await pc.close()
