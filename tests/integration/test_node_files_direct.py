"""node/files.py with the direct TCP path (transport/direct_files.py) on loopback.

A real listener and real TCP streams; the session is the fake link of
test_node_files.py (its peer announces ``fdirect=1`` or not). The LAN tests with real
daemons are in tests/lan/test_lan_files_direct.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from p2pchat.node import Node
from p2pchat.node.links import PeerLink
from p2pchat.protocol.file_wire import (
    BLOCK_BYTES,
    CHUNK_BYTES,
    WINDOW_BLOCKS,
    ControlKind,
    DirectPath,
    FileControl,
    wire_bytes,
)
from p2pchat.store.records import TransferState
from p2pchat.transport.direct_files import DirectFilesListener, async_open_direct
from p2pchat.transport.errors import LinkClosedError
from tests.integration.test_node_files import (
    Upload,
    _Link,
    accept_from,
    add_contact,
    control_frame,
    offered,
    open_link,
    ref_of,
    saved_files,
    until,
)
from tests.integration.test_node_files import node as node  # the fixtures
from tests.integration.test_node_files import profile as profile
from tests.integration.test_node_files import seed as seed

LOOPBACK = "127.0.0.1"


@pytest.fixture
async def direct_node(node: Node) -> AsyncIterator[Node]:
    """The node with its direct listener on loopback (a started node uses its LAN address)."""
    node.files._listener = await DirectFilesListener.async_start(LOOPBACK)
    node.files.peer_addresses = lambda key: (LOOPBACK,)  # where its peers advertise to be
    yield node
    await node.files.async_stop()


def fdirect_link(node: Node, key: bytes, *, announced: bool = True) -> _Link:
    link = open_link(node, key)
    link.session.peer_info = {"fdirect": "1"} if announced else {}  # type: ignore[attr-defined]
    return link


@dataclass
class DirectSend:
    """A transfer being sent over a direct stream into ``peer`` (a real listener on
    loopback): what the stream delivered in ``got``, its ends in ``closed``."""

    node: Node
    key: bytes
    link: _Link
    tid: bytes
    data: bytes
    peer: DirectFilesListener
    got: list[bytes] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def ack(self, verified: int) -> None:
        control = FileControl(ControlKind.ACK, self.tid, verified, "")
        self.node.files.on_frame(
            cast(PeerLink, self.link), control_frame(control), ref_of(self.key)
        )

    def done(self) -> None:
        control = FileControl(ControlKind.DONE, self.tid, len(self.data), "")
        self.node.files.on_frame(
            cast(PeerLink, self.link), control_frame(control), ref_of(self.key)
        )


@contextlib.asynccontextmanager
async def direct_send(
    node: Node,
    tmp_path: Path,
    seed: int,
    *,
    blocks: int = 12,
    link_of: Callable[[bytes], _Link] | None = None,
) -> AsyncIterator[DirectSend]:
    """``blocks`` seeded blocks offered, ACCEPTed from 0 and given a DIRECT path to a
    listener of the peer's (closed on the way out)."""
    data = random.Random(seed).randbytes(blocks * BLOCK_BYTES)
    source = tmp_path / "a.bin"
    source.write_bytes(data)
    key, link, tid = await offered(node, source)
    if link_of is not None:
        link = link_of(key)
    node.links[key] = cast(PeerLink, link)
    peer = await DirectFilesListener.async_start(LOOPBACK)
    send = DirectSend(node, key, link, tid, data, peer)
    try:
        token = peer.issue_token(key, send.got.append, send.closed.append)
        accept_from(node, link, tid, 0)
        direct = FileControl.offer_direct(
            tid, DirectPath(ipaddress.ip_address(LOOPBACK), peer.port, token)
        )
        node.files.on_frame(cast(PeerLink, link), control_frame(direct), ref_of(key))
        yield send
    finally:
        await peer.async_close()


def directs(link: _Link) -> list[DirectPath]:
    return [c.direct for c in link.controls() if c.direct is not None]


def accepts(link: _Link) -> list[int]:
    return [c.value for c in link.controls() if c.kind is ControlKind.ACCEPT]


async def path_used(node: Node, tid: bytes) -> str:
    (found,) = [v for v in await node.async_files() if v.transfer_id == tid.hex()]
    return found.path_used


async def until_path_used(node: Node, tid: bytes, wanted: str) -> None:
    """A chunk is counted for its path once the link's send returns, which may be a
    loop turn after the fake link recorded it: wait for the count, not the chunk."""
    for _ in range(2000):
        if await path_used(node, tid) == wanted:
            return
        await asyncio.sleep(0.005)
    assert await path_used(node, tid) == wanted


async def test_a_bad_chunk_on_the_direct_stream_closes_it_and_resumes_not_fails(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    """A LAN attacker can inject bytes into the TCP stream: the stream ends, the
    receiver sends ACCEPT(verified) again, and the transfer completes."""
    node = direct_node
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(3 * BLOCK_BYTES + 5))
    link = fdirect_link(node, key)
    upload.offer_to(node, link)
    await until(lambda: len(directs(link)) == 1)
    assert accepts(link) == [0]
    path = directs(link)[0]
    assert path.address == ipaddress.ip_address(LOOPBACK)
    stream = await async_open_direct(str(path.address), path.port, path.token)
    block = upload.data[:BLOCK_BYTES]
    for chunk in upload.out.chunks_of(0, block):  # block 0 over the direct stream
        await stream.async_send_file_chunk(chunk)
    await until(lambda: any(c.kind is ControlKind.ACK for c in link.controls()))
    # Then bytes that fail the AEAD: a real chunk of block 1 with its ciphertext flipped.
    good = upload.out.chunks_of(1, upload.data[BLOCK_BYTES : 2 * BLOCK_BYTES])[0]
    bad = good[:30] + bytes(b ^ 0xFF for b in good[30:40]) + good[40:]
    await stream.async_send_file_chunk(bad)
    await until(lambda: accepts(link) == [0, 1])  # resumed from the verified block

    async def keep_sending() -> None:
        for _ in range(200):
            await stream.async_send_file_chunk(good)
            await asyncio.sleep(0.005)

    with pytest.raises(LinkClosedError):  # the receiver closed the stream
        await keep_sending()
    held = node.profile.files.get(upload.tid)
    assert held is not None
    assert held.state is TransferState.RECEIVING, f"seed {seed}"
    assert ControlKind.FAIL not in link.kinds()
    upload.send_all(link, first=1)  # the rest on the data channel
    await until(lambda: ControlKind.DONE in link.kinds())
    assert (tmp_path / "dl" / "a.txt").read_bytes() == upload.data, f"seed {seed}"
    assert saved_files(tmp_path) == ["a.txt"]
    assert await path_used(node, upload.tid) == "mixed"
    await stream.async_close()


async def test_a_bad_chunk_on_the_data_channel_still_fails_the_transfer(
    direct_node: Node, seed: int
) -> None:
    node = direct_node
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(BLOCK_BYTES + 5))
    link = fdirect_link(node, key)
    upload.offer_to(node, link)
    await until(lambda: len(directs(link)) == 1)
    good = upload.out.chunks_of(0, upload.data[:BLOCK_BYTES])[0]
    assert link.file_chunk_handler is not None
    link.file_chunk_handler(cast(PeerLink, link), good[:30] + b"\x00" * 10 + good[40:])
    await until(lambda: ControlKind.FAIL in link.kinds())


async def test_no_direct_path_for_a_peer_that_did_not_announce_it(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    node = direct_node
    key = add_contact(node.profile, "alice")
    upload = Upload(random.Random(seed).randbytes(BLOCK_BYTES + 5))
    link = fdirect_link(node, key, announced=False)
    upload.offer_to(node, link)
    await until(lambda: accepts(link) == [0])
    upload.send_all(link)
    await until(lambda: ControlKind.DONE in link.kinds())
    assert directs(link) == []
    assert await path_used(node, upload.tid) == "datachannel"


async def test_the_sender_sends_over_the_offered_direct_path(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    node = direct_node
    blocks = 12
    async with direct_send(node, tmp_path, seed, blocks=blocks) as send:
        link, got = send.link, send.got
        # The first window may go on the data channel while the stream opens; ACKs
        # move the window, and what follows goes over the stream.
        per_block = BLOCK_BYTES // 65536
        for acked in range(1, blocks + 1):  # 4 blocks in flight: ACK 1 after 4 sent...
            sent = min(acked + 3, blocks) * per_block
            await until(lambda: len(got) + len(link.chunks) >= sent)  # noqa: B023
            send.ack(acked)
        assert got, f"nothing over the direct path; seed {seed}"
        send.done()
        await until(lambda: send.closed != [])  # DONE closes the stream
        view = next(v for v in await node.async_files() if v.transfer_id == send.tid.hex())
        assert view.state == "done"
        assert view.path_used in ("direct", "mixed")
        assert view.path_used == ("mixed" if link.chunks else "direct")


def block_of(chunk: bytes) -> int:
    return int.from_bytes(chunk[17:21], "big")  # header: version, transfer id, block


async def test_a_direct_stream_broken_under_the_sender_restarts_from_the_last_ack(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    """Chunks in flight on a broken stream are lost: the receiver's ACCEPT, sent as its
    end of the stream ends, starts the sender again from there, on the data channel."""
    node = direct_node
    async with direct_send(node, tmp_path, seed) as send:
        link, tid = send.link, send.tid
        await until(lambda: len(send.got) == 16)  # blocks 0-3 over the stream
        assert link.chunks == [], f"seed {seed}"
        sender = node.files._senders[tid]
        send.peer.close_peer(send.key, "cut")  # the stream breaks
        for acked in (1, 2):  # the window moves: the sender writes to the broken stream
            send.ack(acked)
        await until(lambda: sender.direct is None)  # a write failed
        accept_from(node, link, tid, 2)  # the receiver's, as its end of the stream ended
        await until(lambda: any(block_of(c) == 2 for c in link.chunks))
        assert block_of(link.chunks[0]) == 2, f"seed {seed}"  # from the last ACK on
        await until_path_used(node, tid, "mixed")


async def test_a_broken_direct_stream_costs_one_window_not_two(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    """Both ends see a direct stream end. With no ACCEPT within the stall time the
    sender restarts from its last ACK on the data channel; the receiver's ACCEPT that
    comes after, on the same session and from at least where the sender restarted, is
    an ACK: the ordered data channel already carries everything from there. A restart
    on it would send the window a second time for one interruption."""
    node = direct_node
    blocks = 12
    async with direct_send(node, tmp_path, seed, blocks=blocks) as send:
        link, tid, acknowledge = send.link, send.tid, send.ack

        def whole_on_channel(block: int) -> bool:
            per_block = BLOCK_BYTES // CHUNK_BYTES
            return sum(1 for c in link.chunks if block_of(c) == block) >= per_block

        await until(lambda: len(send.got) == 16)  # blocks 0-3 over the stream
        node.files.direct_stall_s = 0.2  # for the wait after the break (real: DIRECT_STALL_S)
        send.peer.close_peer(send.key, "cut")  # the stream breaks, the session stays
        acknowledge(1)
        acknowledge(2)  # the sender writes blocks 4, 5 into the broken stream
        # No ACCEPT within the stall time: the window, blocks 2-5, whole on the channel.
        await until(lambda: all(whole_on_channel(b) for b in range(2, 6)))
        accept_from(node, link, tid, 2)  # the receiver's, late
        for verified in range(3, 7):  # the receiver verifies what the channel brought
            acknowledge(verified)
        # Block 6 next; or, taken as a restart, the window again (the ACKs may have
        # come before it sent anything, then refused: the receiver says them again).
        await until(lambda: whole_on_channel(6) or len(link.chunks) >= 32)
        if not whole_on_channel(6):
            for verified in range(3, 7):
                acknowledge(verified)
        for verified in range(7, blocks + 1):  # then an ACK per whole block
            await until(lambda: whole_on_channel(verified - 1))  # noqa: B023
            acknowledge(verified)
        send.done()
        await until(lambda: node.profile.files.get(tid).state is TransferState.DONE)  # type: ignore[union-attr]
        (view,) = [v for v in await node.async_files() if v.transfer_id == tid.hex()]
        resent = view.bytes_sent_total - wire_bytes(blocks * BLOCK_BYTES)
        assert 0 <= resent <= wire_bytes(WINDOW_BLOCKS * BLOCK_BYTES), (
            f"seed {seed}: {resent} bytes again"
        )


class _DeadChannelLink(_Link):
    """A session whose peer died: the data channel takes chunks (its buffers) that never
    arrive, and it closes only when the test says (the ping timeout). It notes each wait
    for its end that begins while ``quiet()`` holds."""

    def __init__(self, peer_key: bytes) -> None:
        super().__init__(peer_key)
        self.quiet: Callable[[], bool] = lambda: False
        self.quiet_waits = 0

    async def async_wait_closed(self) -> None:
        if self.quiet():
            self.quiet_waits += 1
        await super().async_wait_closed()


async def test_a_reset_direct_stream_puts_nothing_on_a_dead_data_channel(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    """A receiver SIGKILLed: its kernel resets the direct stream, so the sender's next
    write fails at once, while the session lives on until the ping timeout with a dead
    data channel. What the sender put on that channel would be counted as sent for
    nothing (~1.3 windows for that fault): it waits for the receiver's ACCEPT, the
    session's end or the stall time, and the next session's ACCEPT resumes it."""
    node = direct_node
    node.files.direct_stall_s = 3600.0  # never, here: only an ACCEPT or the session's end
    blocks = 12
    async with direct_send(node, tmp_path, seed, blocks=blocks, link_of=_DeadChannelLink) as send:
        key, tid, data = send.key, send.tid, send.data
        link = cast(_DeadChannelLink, send.link)
        await until(lambda: len(send.got) == 16)  # blocks 0-3 over the stream
        sender = node.files._senders[tid]
        link.quiet = lambda: sender.direct is None  # the sender waits, its stream gone
        send.peer.close_peer(key, "killed")  # reset by the receiver's kernel
        for acked in (1, 2):  # its last ACKs: the sender writes into the reset stream
            send.ack(acked)
        # Either it waits with nothing on the channel, or it resent there first.
        await until(lambda: link.chunks != [] or link.quiet_waits > 0)
        assert link.chunks == [], f"seed {seed}: {len(link.chunks)} chunks on a dead channel"
        link.close("peer stopped answering")  # the ping timeout
        assert sender.task is not None
        await until(sender.task.done)
        assert link.chunks == [], f"seed {seed}"
        # The receiver back: a new session, its ACCEPT from what it verified.
        second = open_link(node, key)
        second.file_chunk_handler = lambda _link, _data: None
        accept_from(node, second, tid, 2)
        for verified in range(3, blocks + 1):  # an ACK per whole block
            await until(
                lambda: (
                    sum(1 for c in second.chunks if block_of(c) == verified - 1)  # noqa: B023
                    >= BLOCK_BYTES // CHUNK_BYTES
                )
            )
            ack = FileControl(ControlKind.ACK, tid, verified, "")
            node.files.on_frame(cast(PeerLink, second), control_frame(ack), ref_of(key))
        done = FileControl(ControlKind.DONE, tid, len(data), "")
        node.files.on_frame(cast(PeerLink, second), control_frame(done), ref_of(key))
        await until(lambda: node.profile.files.get(tid).state is TransferState.DONE)  # type: ignore[union-attr]
        (view,) = [v for v in await node.async_files() if v.transfer_id == tid.hex()]
        resent = view.bytes_sent_total - wire_bytes(blocks * BLOCK_BYTES)
        assert 0 <= resent <= wire_bytes(WINDOW_BLOCKS * BLOCK_BYTES), (
            f"seed {seed}: {resent} bytes again"
        )


async def test_a_direct_path_to_an_address_the_peer_does_not_advertise_is_ignored(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    """A contact cannot point our node at another host: DIRECT must name one of the
    addresses its mDNS advert gave; else the data channel carries the file."""
    node = direct_node
    node.files.peer_addresses = lambda key: ("192.0.2.7", "fe80::1%2")
    async with direct_send(node, tmp_path, seed, blocks=2) as send:
        per_block = BLOCK_BYTES // 65536
        await until(lambda: len(send.link.chunks) >= 2 * per_block)
        assert send.got == [], f"the direct path was used; seed {seed}"
        send.done()
        for _ in range(200):
            view = next(v for v in await node.async_files() if v.transfer_id == send.tid.hex())
            if view.state == "done":
                break
            await asyncio.sleep(0.02)
        assert (view.state, view.path_used) == ("done", "datachannel")


async def test_a_silent_direct_stream_is_given_up_and_the_data_channel_goes_on(
    direct_node: Node, tmp_path: Path, seed: int
) -> None:
    """A TCP stream whose data stops arriving (blackholed: no reset, no error) while the
    session stays up would hold the transfer for TCP's whole retry time (~15 min): no
    ACK within the stall time, and the sender drops the stream and goes on from the
    last ACK on the data channel."""
    node = direct_node
    node.files.direct_stall_s = 0.2  # the real one is DIRECT_STALL_S
    # The peer's listener takes chunks and never ACKs.
    async with direct_send(node, tmp_path, seed, blocks=8) as send:
        link = send.link
        # The window, blocks 0-3, goes over the stream (what the listener has read when
        # the stall resets it may be less: not waited for), then the stall gives it up.
        await until(lambda: len(link.chunks) == 16)  # the window again, on the channel
        assert [block_of(c) for c in link.chunks] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
        await until(lambda: send.closed != [])  # the stream was dropped, not left open
        await until_path_used(node, send.tid, "mixed")
