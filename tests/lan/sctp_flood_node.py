"""A real p2pchat daemon that turns hostile once: on its first open session, when told
to, it streams one SCTP message that never ends to the peer (issue 9, finding 3).

The session is a genuine one (discovery, contact request, authenticated handshake,
encrypted chat frames); only afterwards does this node reach under its own link and
queue DATA chunks with no end flag on its SCTP association, through aiortc's sender (so
congestion control and retransmission deliver them, as in the attack on a real node).
It floods once; later sessions are ordinary, so a conversation can follow.

Started by tests/lan/test_sctp_abuse.py as
``python -c "from tests.lan.sctp_flood_node import main; main()" SPEC --data-dir … daemon …``
``STREAM:BYTES:RESULT`` first, where STREAM is ``channel`` (the data channel's own
stream) or a stream id; it starts when ``RESULT.go`` exists, on the session open then,
and writes what happened to ``RESULT`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aiortc.rtcsctptransport import AbortChunk, Chunk

from p2pchat.node.links import PeerLink
from p2pchat.transport.webrtc import DataChannelLink
from tests.integration import sctp_attacker as attack

_POLL = 0.1
_tasks: set[asyncio.Task[None]] = set()


def main() -> None:
    """``sys.argv``: ``-c``, ``STREAM:BYTES:RESULT``, then the usual p2pchat arguments."""
    stream, total, result = sys.argv[1].split(":", 2)
    _install(stream, int(total), Path(result))
    from p2pchat.cli import main as cli_main

    raise SystemExit(cli_main(sys.argv[2:]))


def _install(stream: str, total: int, result: Path) -> None:
    mark_open = PeerLink._mark_open
    opened: list[PeerLink] = []

    def patched(self: PeerLink) -> None:
        mark_open(self)
        if not opened:
            task = asyncio.get_running_loop().create_task(_flood(opened, stream, total, result))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
        opened.append(self)

    PeerLink._mark_open = patched  # type: ignore[method-assign]


async def _flood(opened: list[PeerLink], stream: str, total: int, result: Path) -> None:
    go = result.with_name(result.name + ".go")
    while not go.exists():  # noqa: ASYNC110 - the test's signal is a file
        await asyncio.sleep(_POLL)
    # The session open now (an earlier one may have lost a dialling race).
    link = next(
        p._channel for p in reversed(opened)
        if p.state == "open" and isinstance(p._channel, DataChannelLink)
    )  # fmt: skip
    sctp = link._pc.sctp
    assert sctp is not None
    assert link._channel is not None
    assert link._channel.id is not None
    aborts: list[list[tuple[int, str]]] = []
    receive_chunk = sctp._receive_chunk

    async def spy(chunk: Chunk) -> None:
        if isinstance(chunk, AbortChunk):
            aborts.append([(code, info.decode("utf-8", "replace")) for code, info in chunk.params])
        await receive_chunk(chunk)

    sctp._receive_chunk = spy  # type: ignore[method-assign]
    stream_id = link._channel.id if stream == "channel" else int(stream)
    before = sctp._local_tsn
    # Unordered on the channel's stream, so that the chat behind it is not held up.
    unordered = stream == "channel"
    queued = await attack.queue_chunks(
        sctp,
        attack.endless_message(sctp, stream_id=stream_id, total=total, unordered=unordered),
        lambda: sctp.state != "connected",
    )
    while sctp.state == "connected" and not attack.all_acked(sctp):  # noqa: ASYNC110
        await asyncio.sleep(_POLL)
    doc: dict[str, Any] = {
        "stream_id": stream_id,
        "unordered": unordered,
        "tried_bytes": total,
        "queued_chunks": queued,
        "queued_bytes": min(total, queued * attack.USERDATA_MAX_LENGTH),
        "tsns_used": (sctp._local_tsn - before) % 2**32,
        "association": sctp.state,
        "aborts": aborts,
    }
    # Written aside, then renamed: the test polls for the file and must never read it
    # half-written (it once read an empty file in CI).
    partial = result.with_name(result.name + ".partial")
    await asyncio.to_thread(partial.write_text, json.dumps(doc))
    await asyncio.to_thread(partial.replace, result)
