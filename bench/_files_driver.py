"""Baseline ends for ``bench_files.py``: one process per namespace, JSON lines on stdio.

Every mode moves ``--runs`` transfers of ``--bytes`` bytes one way, one after another,
and prints one ``{"run": {...}}`` line per transfer from each end: the sender's
``t_first`` (``time.monotonic()`` just before the first byte is handed over), the
receiver's ``t_last`` (the last byte received), the bytes each end counted, and each
end's CPU seconds for that transfer (``resource.getrusage(RUSAGE_SELF)``, user +
system, from the run's start to its end). ``CLOCK_MONOTONIC`` is one clock for the
whole machine (network namespaces do not change it), so ``t_last - t_first`` across
two processes is a duration.

* ``tcp-recv`` / ``tcp-send``: a plain TCP stream (asyncio streams), 1 MiB writes;
  the receiver prints ``{"port": N}`` first and answers each transfer with one byte,
  so transfers never overlap.
* ``raw-offer`` / ``raw-answer``: two aiortc ``RTCPeerConnection`` (``iceServers=[]``),
  one ordered data channel, 64 KiB messages; the sender keeps ``bufferedAmount`` at
  most ``LOW_WATER`` (256 KiB) plus one message, waiting on ``bufferedamountlow`` (no
  polling), like p2pchat's ``async_send_file_chunk``. SDP goes through this script's
  stdio (``{"offer"}`` / ``{"answer"}``), relayed by ``bench_files.py``.
* ``link-offer`` / ``link-answer``: the same over p2pchat's own ``DataChannelLink``:
  ``async_send_file_chunk`` on its files channel, ``on_file_chunk`` at the receiver (no
  crypto, no store: the transport alone).
* ``direct-recv`` / ``direct-send``: p2pchat's direct TCP path (transport/direct_files.py):
  the receiver's ``DirectFilesListener`` prints ``{"port", "token"}``, the sender opens
  it with ``async_open_direct`` and sends real chunk messages (protocol/file_transfer,
  256 KiB blocks as the node's, 64 KiB chunks, AEAD under a per-file key) with
  ``async_send_file_chunk``. Without ``--aead`` the sender seals the whole file before
  ``t_first`` and the receiver only checks each chunk's header order (the transport
  alone); with ``--aead`` the sender seals block by block and the receiver opens every
  chunk, both within the timed run (the path minus disk and hashing of the whole file).

Each 64 KiB message starts with its sequence number (8 bytes, continuing across runs):
the receiver checks the order, so ``bytes`` and ``in_order`` say that every transfer
arrived whole.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

from bench._udp import rcvbuf_errors  # noqa: E402

TCP_WRITE = 1024 * 1024
MESSAGE = 64 * 1024
LOW_WATER = 256 * 1024
HANG = 120.0  # seconds: a step taking longer than this is stuck
SEQ = struct.Struct("!Q")
DIRECT_BLOCK = 262_144  # the node's BLOCK_BYTES


def emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def read_line() -> dict[str, Any] | None:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return json.loads(line) if line.strip() else None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def payload(seed: int) -> bytes:
    """1 MiB of seeded noise: what every mode sends (sliced, with sequence numbers)."""
    import random

    return random.Random(seed).randbytes(TCP_WRITE)


# -- TCP ---------------------------------------------------------------------------------


async def tcp_recv(args: argparse.Namespace) -> None:
    runs_left = args.runs
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal runs_left
        cpu0, got = cpu_seconds(), 0
        while got < args.bytes:
            chunk = await reader.read(TCP_WRITE)
            if not chunk:
                break
            got += len(chunk)
        t_last = time.monotonic()
        emit({"run": {"bytes": got, "t_last": t_last, "cpu_s": cpu_seconds() - cpu0}})
        writer.write(b"k")
        await writer.drain()
        writer.close()
        runs_left -= 1
        if runs_left == 0:
            done.set()

    server = await asyncio.start_server(serve, args.host, 0)
    emit({"port": server.sockets[0].getsockname()[1]})
    async with server, asyncio.timeout(HANG * args.runs):
        await done.wait()


async def tcp_send(args: argparse.Namespace) -> None:
    block = payload(args.seed)
    for _ in range(args.runs):
        reader, writer = await asyncio.open_connection(args.host, args.port)
        cpu0 = cpu_seconds()
        t_first = time.monotonic()
        left = args.bytes
        while left > 0:
            writer.write(block[: min(left, TCP_WRITE)])
            left -= min(left, TCP_WRITE)
            await writer.drain()
        async with asyncio.timeout(HANG):
            await reader.readexactly(1)  # the receiver has it all
        emit({"run": {"bytes": args.bytes, "t_first": t_first, "cpu_s": cpu_seconds() - cpu0}})
        writer.close()
        await writer.wait_closed()


# -- data channels: shared sender / receiver loops ---------------------------------------


async def send_runs(
    args: argparse.Namespace,
    send: Callable[[bytes], Awaitable[None]],
    replies: asyncio.Queue[bytes],
) -> None:
    """Send ``--runs`` transfers; after each, wait for the receiver's reply."""
    block = payload(args.seed)
    seq = 0
    for _ in range(args.runs):
        drops0 = rcvbuf_errors()
        cpu0 = cpu_seconds()
        t_first = time.monotonic()
        left = args.bytes
        while left > 0:
            size = min(left, MESSAGE)
            offset = (seq * MESSAGE) % TCP_WRITE
            await send(SEQ.pack(seq) + block[offset + SEQ.size : offset + max(size, SEQ.size)])
            seq += 1
            left -= size
        cpu_sent = cpu_seconds() - cpu0
        async with asyncio.timeout(HANG):
            await replies.get()
        emit({"run": {"bytes": args.bytes, "t_first": t_first, "cpu_s": cpu_seconds() - cpu0,
                      "cpu_s_sending": cpu_sent, "udp_drops": rcvbuf_errors() - drops0}})  # fmt: skip


class Counter:
    """The receiving end: counts bytes, checks sequence numbers, replies per transfer."""

    def __init__(self, total: int, reply: Callable[[bytes], None]) -> None:
        self.total = total
        self.reply = reply
        self.expected_seq = 0
        self._reset()

    def _reset(self) -> None:
        self.got = 0
        self.in_order = True
        self.cpu0 = cpu_seconds()
        self.drops0 = rcvbuf_errors()

    def on_message(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        if self.got == 0:
            self.cpu0 = cpu_seconds()  # the run starts with its first message
        (seq,) = SEQ.unpack_from(data)
        self.in_order &= seq == self.expected_seq
        self.expected_seq = seq + 1
        self.got += len(data)
        if self.got >= self.total:
            t_last = time.monotonic()
            emit({"run": {"bytes": self.got, "t_last": t_last, "in_order": self.in_order,
                          "cpu_s": cpu_seconds() - self.cpu0,
                          "udp_drops": rcvbuf_errors() - self.drops0}})  # fmt: skip
            self.reply(b"k")
            self._reset()


# -- raw aiortc --------------------------------------------------------------------------


async def raw_offer(args: argparse.Namespace) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("bench-files", ordered=True)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    replies: asyncio.Queue[bytes] = asyncio.Queue()
    channel.on("message", replies.put_nowait)
    await pc.setLocalDescription(await pc.createOffer())
    emit({"offer": pc.localDescription.sdp})
    reply = await read_line()
    if reply is None or "answer" not in reply:
        raise RuntimeError(f"no answer from the other end: {reply}")
    async with asyncio.timeout(HANG):
        await pc.setRemoteDescription(RTCSessionDescription(reply["answer"], "answer"))
        await opened.wait()

    channel.bufferedAmountLowThreshold = LOW_WATER
    low = asyncio.Event()
    channel.on("bufferedamountlow", low.set)

    async def send(data: bytes) -> None:
        while channel.bufferedAmount > LOW_WATER:
            low.clear()
            await low.wait()
        channel.send(data)

    await send_runs(args, send, replies)
    await pc.close()


async def raw_answer(args: argparse.Namespace) -> None:
    request = await read_line()
    if request is None:
        return
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

    def on_channel(channel: RTCDataChannel) -> None:
        channel.on("message", Counter(args.bytes, channel.send).on_message)

    pc.on("datachannel", on_channel)
    await pc.setRemoteDescription(RTCSessionDescription(request["offer"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    emit({"answer": pc.localDescription.sdp})
    await read_line()  # until stdin closes
    await pc.close()


# -- p2pchat's direct TCP path ----------------------------------------------------------


def file_chunks(args: argparse.Namespace) -> tuple[Any, list[bytes], Callable[[int], list[bytes]]]:
    """The transfer (ids and key from the seed), and a function: block index -> chunks."""
    import hashlib

    from p2pchat.protocol.file_transfer import OutgoingTransfer

    seed = hashlib.blake2b(str(args.seed).encode(), digest_size=48).digest()
    transfer = OutgoingTransfer(seed[:16], seed[16:], args.bytes, DIRECT_BLOCK)
    block = payload(args.seed)

    def chunks(index: int) -> list[bytes]:
        plain = (index.to_bytes(8, "big") + block[8:])[: transfer.block_len(index)]
        return list(transfer.chunks_of(index, plain))

    return transfer, [seed[:16], seed[16:]], chunks


async def direct_recv(args: argparse.Namespace) -> None:
    from p2pchat.protocol.file_crypto import open_chunk
    from p2pchat.protocol.file_wire import (
        CHUNK_HEADER_BYTES,
        HASH_BYTES,
        TAG_BYTES,
        decode_chunk_header,
    )
    from p2pchat.transport.direct_files import DirectFilesListener

    _, (tid, key), _ = file_chunks(args)
    done = asyncio.Event()
    state = {"bytes": 0, "in_order": True, "next": (0, 0), "cpu0": 0.0}

    def on_chunk(data: bytes) -> None:
        if state["bytes"] == 0:
            state["cpu0"] = cpu_seconds()  # the run starts with its first chunk
        header = decode_chunk_header(data)
        where = (header.block, header.chunk)
        state["in_order"] = state["in_order"] and where == state["next"]
        state["next"] = (header.block + 1, 0) if header.last else (header.block, header.chunk + 1)
        if args.aead:
            plain = open_chunk(
                key, data[:CHUNK_HEADER_BYTES], tid, *where, data[CHUNK_HEADER_BYTES:]
            )
            got = len(plain) - (HASH_BYTES if header.last else 0)
        else:
            got = len(data) - CHUNK_HEADER_BYTES - TAG_BYTES - (HASH_BYTES if header.last else 0)
        state["bytes"] += got
        if state["bytes"] >= args.bytes:
            t_last = time.monotonic()
            emit({"run": {"bytes": state["bytes"], "t_last": t_last, "in_order": state["in_order"],
                          "cpu_s": cpu_seconds() - state["cpu0"]}})  # fmt: skip
            done.set()

    listener = await DirectFilesListener.async_start(args.host)
    token = listener.issue_token(b"bench-sender", on_chunk)
    emit({"port": listener.port, "token": token.hex()})
    async with asyncio.timeout(HANG):
        await done.wait()
    await read_line()  # until stdin closes
    await listener.async_close()


async def direct_send(args: argparse.Namespace) -> None:
    from p2pchat.transport.direct_files import async_open_direct

    transfer, _, chunks = file_chunks(args)
    sealed = [] if args.aead else [c for i in range(transfer.blocks) for c in chunks(i)]
    stream = await async_open_direct(args.host, args.port, bytes.fromhex(args.token))
    cpu0 = cpu_seconds()
    t_first = time.monotonic()
    if sealed:
        for message in sealed:
            await stream.async_send_file_chunk(message)
    else:
        for index in range(transfer.blocks):
            for message in chunks(index):
                await stream.async_send_file_chunk(message)
    async with asyncio.timeout(HANG):
        await stream.async_close()  # after the kernel took the last bytes
    emit({"run": {"bytes": args.bytes, "t_first": t_first, "cpu_s": cpu_seconds() - cpu0}})


# -- p2pchat's DataChannelLink -----------------------------------------------------------


async def link_offer(args: argparse.Namespace) -> None:
    from p2pchat.transport.webrtc import DataChannelLink

    replies: asyncio.Queue[bytes] = asyncio.Queue()
    link, offer = await DataChannelLink.async_create_offer(on_message=replies.put_nowait)
    emit({"offer": offer})
    reply = await read_line()
    if reply is None or "answer" not in reply:
        raise RuntimeError(f"no answer from the other end: {reply}")
    await link.async_apply_answer(reply["answer"])
    await link.async_wait_open(HANG)
    await send_runs(args, link.async_send_file_chunk, replies)
    await link.async_close()


async def link_answer(args: argparse.Namespace) -> None:
    from p2pchat.transport.webrtc import DataChannelLink

    request = await read_line()
    if request is None:
        return
    holder: list[DataChannelLink] = []
    counter = Counter(args.bytes, lambda data: holder[0].send(data))
    link, answer = await DataChannelLink.async_accept_offer(
        request["offer"], on_message=lambda _data: None
    )
    holder.append(link)
    link.on_file_chunk = counter.on_message
    emit({"answer": answer})
    await read_line()  # until stdin closes
    await link.async_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    modes = {
        "tcp-recv": tcp_recv,
        "tcp-send": tcp_send,
        "raw-offer": raw_offer,
        "raw-answer": raw_answer,
        "link-offer": link_offer,
        "link-answer": link_answer,
        "direct-recv": direct_recv,
        "direct-send": direct_send,
    }
    parser.add_argument("mode", choices=sorted(modes))
    parser.add_argument("--bytes", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="", help="direct-send: the listener's token, hex")
    parser.add_argument("--aead", action="store_true", help="direct-*: seal and open in the run")
    args = parser.parse_args()
    asyncio.run(modes[args.mode](args))


if __name__ == "__main__":
    main()
