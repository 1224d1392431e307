"""A misbehaving SCTP sender, built on a real aiortc ``RTCSctpTransport`` (the attacker's).

aiortc's own sender always ends a message; these helpers hand-craft DATA chunks that
a well-behaved peer never sends (a message with no end, data on a stream nobody opened,
a gap the sender never fills, floods past the receive window) and push them either
through aiortc's sender queue (congestion control and retransmission make them arrive,
as with the attack on a real node) or straight onto the wire.

Used by tests/integration/test_sctp_bounds.py and, inside a daemon in a network
namespace, by tests/lan/sctp_flood_node.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    USERDATA_MAX_LENGTH,
    DataChunk,
    RTCSctpTransport,
    tsn_plus_one,
)

WEBRTC_DCEP = 50
WEBRTC_BINARY = 53
WHOLE = SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG

#: Chunks allowed to wait in the attacker's own queue: keeps the attacker's memory small
#: (what piles up must be the victim's).
_QUEUE_DEPTH = 64
_POLL = 0.002


def new_chunk(
    sctp: RTCSctpTransport,
    *,
    stream_id: int,
    ppid: int,
    flags: int,
    stream_seq: int,
    data: bytes,
) -> DataChunk:
    """A DATA chunk with the attacker's next TSN and aiortc's sender bookkeeping."""
    chunk = DataChunk()
    chunk.flags = flags
    chunk.tsn = sctp._local_tsn
    chunk.stream_id = stream_id
    chunk.stream_seq = stream_seq
    chunk.protocol = ppid
    chunk.user_data = data
    chunk._abandoned = False
    chunk._acked = False
    chunk._book_size = len(data)
    chunk._expiry = None
    chunk._in_flight = False
    chunk._max_retransmits = None
    chunk._misses = 0
    chunk._retransmit = False
    chunk._sent_count = 0
    chunk._sent_time = None
    sctp._local_tsn = tsn_plus_one(sctp._local_tsn)
    return chunk


def skip_tsn(sctp: RTCSctpTransport) -> None:
    """Burn one TSN that is never sent: the victim holds everything after it."""
    sctp._local_tsn = tsn_plus_one(sctp._local_tsn)


def ignore_sacks(sctp: RTCSctpTransport) -> None:
    """Stop the attacker's sender from processing SACKs (it blasts, it never resends)."""

    async def ignore(_chunk: object) -> None:
        return None

    sctp._receive_sack_chunk = ignore  # type: ignore[method-assign]


def next_stream_seq(sctp: RTCSctpTransport, stream_id: int) -> int:
    seq = sctp._outbound_stream_seq.get(stream_id, 0)
    sctp._outbound_stream_seq[stream_id] = (seq + 1) % 65536
    return seq


def all_acked(sctp: RTCSctpTransport) -> bool:
    return not sctp._outbound_queue and not sctp._sent_queue


async def queue_chunks(
    sctp: RTCSctpTransport, chunks: Callable[[], DataChunk | None], stop: Callable[[], bool]
) -> int:
    """Send chunks through aiortc's sender (reliable, paced by its congestion window).

    ``chunks`` returns the next chunk or ``None`` when done. Returns the chunks queued.
    """
    count = 0
    while not stop() and sctp.state == "connected":
        if sctp._data_channel_queue:
            # The attacker's own chat (pongs) goes out too, so that its peer's keepalive
            # does not end the session before the bounds are reached.
            if not sctp._outbound_queue:
                await sctp._data_channel_flush()
            else:
                await asyncio.sleep(_POLL)
            continue
        if len(sctp._outbound_queue) >= _QUEUE_DEPTH:
            await asyncio.sleep(_POLL)
            continue
        chunk = chunks()
        if chunk is None:
            break
        sctp._outbound_queue.append(chunk)
        count += 1
        await sctp._transmit()
    return count


async def blast_chunks(
    sctp: RTCSctpTransport, chunks: Callable[[], DataChunk | None], stop: Callable[[], bool]
) -> int:
    """Send chunks straight onto the wire, once each: no window, no congestion control."""
    count = 0
    while not stop() and sctp.state == "connected":
        chunk = chunks()
        if chunk is None:
            break
        try:
            await sctp._send_chunk(chunk)
        except ConnectionError:
            break
        count += 1
        if count % 8 == 0:
            await asyncio.sleep(0)  # let the victim (maybe in this process) read
    return count


def endless_message(
    sctp: RTCSctpTransport,
    *,
    stream_id: int,
    ppid: int = WEBRTC_BINARY,
    total: int,
    fragment: int = USERDATA_MAX_LENGTH,
    unordered: bool = False,
) -> Callable[[], DataChunk | None]:
    """Fragments of one message that never ends (no E flag), ``total`` bytes in all."""
    seq = 0 if unordered else next_stream_seq(sctp, stream_id)
    extra = SCTP_DATA_UNORDERED if unordered else 0
    sent = 0

    def produce() -> DataChunk | None:
        nonlocal sent
        if sent >= total:
            return None
        flags = extra | (SCTP_DATA_FIRST_FRAG if sent == 0 else 0)
        size = min(fragment, total - sent)
        sent += size
        return new_chunk(
            sctp, stream_id=stream_id, ppid=ppid, flags=flags, stream_seq=seq, data=b"\xa5" * size
        )

    return produce


def whole_messages(
    sctp: RTCSctpTransport,
    *,
    stream_id: int,
    count: int,
    size: int,
    unordered: bool = False,
) -> Callable[[], DataChunk | None]:
    """``count`` complete one-chunk binary messages of ``size`` bytes."""
    left = count

    def produce() -> DataChunk | None:
        nonlocal left
        if left <= 0:
            return None
        left -= 1
        seq = 0 if unordered else next_stream_seq(sctp, stream_id)
        flags = WHOLE | (SCTP_DATA_UNORDERED if unordered else 0)
        return new_chunk(
            sctp, stream_id=stream_id, ppid=WEBRTC_BINARY, flags=flags, stream_seq=seq,
            data=b"\x5a" * size,
        )  # fmt: skip

    return produce


def unfinished_on_streams(
    sctp: RTCSctpTransport, *, first_stream: int, streams: int, size: int
) -> Callable[[], DataChunk | None]:
    """The first fragment of a DCEP message on each of ``streams`` new stream ids."""
    left = streams
    stream_id = first_stream

    def produce() -> DataChunk | None:
        nonlocal left, stream_id
        if left <= 0:
            return None
        left -= 1
        chunk = new_chunk(
            sctp, stream_id=stream_id, ppid=WEBRTC_DCEP, flags=SCTP_DATA_FIRST_FRAG,
            stream_seq=0, data=b"\x03" + b"\x00" * (size - 1),
        )  # fmt: skip
        stream_id += 2
        return chunk

    return produce
