"""Many guests of one invite at once, in one asyncio process (tests/lan/test_cluster_joins.py).

Test side: :class:`Joiner` starts ``python -c "...; joiner_main()" URL SEED COUNT MODE
ADDR...`` in a host. Guest side: ``COUNT`` guests of the invite ``URL``, guest ``i``
sent to ``ADDR[i % len(ADDR)]`` (the link's host rewritten: same room, same fragment),
each with its own seeded guest id and its own sealed OFFER (the real
:mod:`p2pchat.protocol.session`; one real aiortc offer SDP shared by all, which only
the owner's answer to the winner would use). Each guest claims to come through a
proxy from its own address (``X-Forwarded-For``; the instances trust lanB's NAT as
that proxy), so the per-address bound does not stand in for the one under test.

MODE ``race``: every guest connects and offers at once. MODE ``hold``: every guest
connects and holds its socket; the process prints ``{"event": "connected", ...}`` and
waits for a line on stdin before the guests still connected offer.

A guest that gets an ANSWER finishes the handshake on the relay path (stream header as
RELAY, as the page does when the direct path is late) and reports ``opened`` when the
owner's first sealed frame opens its session, then leaves. Output: one JSON line per
guest as soon as it is done (``{"event": "guest", "i", "addr", "answered", "opened", "code",
"reason"}``), then ``{"event": "done"}``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lan.netns import Host

REPO_ROOT = Path(__file__).resolve().parents[2]
_LAUNCH = "from tests.lan.cluster_joiner import joiner_main; joiner_main()"
SIGNAL, RELAY = 0x01, 0x02
WAIT_S = 120.0  # only catches a hang


# --- test side -----------------------------------------------------------------------


class Joiner:
    """The guest process, started in ``host`` with ``env`` (the test CA)."""

    def __init__(
        self,
        host: Host,
        url: str,
        seed: int,
        count: int,
        mode: str,
        addresses: list[str],
        env: dict[str, str],
    ) -> None:
        import os
        import subprocess

        self.reports: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.proc = host.python(
            _LAUNCH, url, str(seed), str(count), mode, *addresses,
            cwd=str(REPO_ROOT), env={**os.environ, **env},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def wait_for(self, event: str, timeout: float = WAIT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for report in self.reports:
                    if report.get("event") == event:
                        return report
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._more_lines()):
                    raise AssertionError(
                        f"joiner: no {event}; {len(self.reports)} reports;"
                        f" stderr {''.join(self._stderr)[-3000:]}"
                    )
                self._cond.wait(min(left, 1.0))

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def guests(self) -> list[dict[str, Any]]:
        with self._cond:
            return [r for r in self.reports if r.get("event") == "guest"]

    def _more_lines(self) -> bool:
        return self.proc.stdout is not None and not self.proc.stdout.closed

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cond:
                self.reports.append(report)
                self._cond.notify_all()
        self.proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.decode("utf-8", "replace"))


# --- guest side ----------------------------------------------------------------------


def joiner_main() -> None:
    url, seed, count, mode, *addresses = sys.argv[1:]
    asyncio.run(_async_main(url, int(seed), int(count), mode, addresses))


def _print(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


@dataclass
class _Guest:
    i: int
    addr: str
    guest_id: str
    forwarded: str
    answered: bool = False
    opened: bool = False
    code: int | None = None
    reason: str = ""
    ws: Any = None


async def _async_main(url: str, seed: int, count: int, mode: str, addresses: list[str]) -> None:
    import aiohttp
    from yarl import URL

    from p2pchat.transport.webrtc import DataChannelLink

    rng = random.Random(seed)
    link = URL(url)
    room = link.path.rsplit("/", 1)[-1]
    channel, sdp = await DataChannelLink.async_create_offer(
        on_message=lambda _data: None, files_channel=False
    )
    guests = [
        _Guest(
            i,
            addresses[i % len(addresses)],
            base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode(),
            f"198.51.{100 + i // 250}.{1 + i % 250}",  # TEST-NET-2: one address per guest
        )
        for i in range(count)
    ]
    go = asyncio.Event()
    limit = aiohttp.TCPConnector(limit=0)  # the system's trust store: SSL_CERT_FILE
    async with aiohttp.ClientSession(connector=limit) as http:
        connected = await asyncio.gather(
            *(_connect(http, g, link.port or 443, room) for g in guests)
        )
        if mode == "hold":
            _print("connected", open=[g.i for g, ok in zip(guests, connected, strict=True) if ok])
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(go.set)),
                daemon=True,
            ).start()
        else:
            go.set()
        await asyncio.gather(
            *(
                _run(g, link.fragment, sdp, go)
                for g, ok in zip(guests, connected, strict=True)
                if ok
            )
        )
    _print("done")
    await channel.async_close()


async def _connect(http: Any, g: _Guest, port: int, room: str) -> bool:
    """Open the guest's socket; False (with its close code) when the server refused it
    before the socket opened."""
    import aiohttp

    try:
        g.ws = await http.ws_connect(
            f"wss://{g.addr}:{port}/ws/{room}",
            max_msg_size=0,
            headers={"X-Forwarded-For": g.forwarded},
            timeout=aiohttp.ClientWSTimeout(ws_close=10),
        )
    except aiohttp.ClientError as exc:
        g.code, g.reason = -1, f"{type(exc).__name__}: {exc}"
        _report(g)
        return False
    return True


async def _run(g: _Guest, fragment: str, sdp: str, go: asyncio.Event) -> None:
    import aiohttp

    from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
    from p2pchat.crypto.link import LinkSecret
    from p2pchat.protocol import events
    from p2pchat.protocol.batch import encode_batch
    from p2pchat.protocol.session import Role, Session

    secret = LinkSecret.from_fragment(fragment)
    session = Session(Role.INITIATOR, LinkEnvelopes(secret.envelope_key, ReplayGuard()))
    ws = g.ws
    receiver = asyncio.get_running_loop().create_task(ws.receive())
    waiting_go = asyncio.get_running_loop().create_task(go.wait())
    await asyncio.wait({receiver, waiting_go}, return_when=asyncio.FIRST_COMPLETED)
    if not receiver.done():
        offer = session.make_offer(sdp, _now_ms(), {"guest": g.guest_id, "name": f"g{g.i}"})
        await ws.send_bytes(bytes([SIGNAL]) + offer)
    else:
        waiting_go.cancel()

    def wire(sealed: bytes) -> bytes:
        return bytes([RELAY]) + (encode_batch([sealed]) if session.batching else sealed)

    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                msg = await receiver
                receiver = asyncio.get_running_loop().create_task(ws.receive())
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                ):
                    g.code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
                    g.reason = msg.extra or "" if msg.type is aiohttp.WSMsgType.CLOSE else ""
                    break
                if msg.type is not aiohttp.WSMsgType.BINARY or not msg.data:
                    continue  # e.g. the server's ICE text
                kind, body = msg.data[0], msg.data[1:]
                if kind == SIGNAL:
                    session.receive_answer(body, _now_ms())
                    g.answered = True
                    await ws.send_bytes(bytes([RELAY]) + session.stream_header())
                    continue
                for event in session.receive_data(body, _now_ms()):
                    if isinstance(event, events.SessionOpened) and not g.opened:
                        g.opened = True
                        await ws.send_bytes(wire(session.close(_now_ms())))
                        await ws.close()
    except TimeoutError:
        g.code, g.reason = -2, "no close within the wait"
    finally:
        receiver.cancel()
        if not ws.closed:
            await ws.close()
        _report(g)


def _report(g: _Guest) -> None:
    _print("guest", i=g.i, addr=g.addr, answered=g.answered, opened=g.opened,
           code=g.code, reason=g.reason)  # fmt: skip


def _now_ms() -> int:
    return int(time.time() * 1000)
