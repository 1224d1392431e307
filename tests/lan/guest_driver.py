"""A browser guest without a browser: the guest's side of docs/guest-protocol.md in Python.

Two halves:

* test side: :class:`GuestProcess` starts one guest in a host of a
  :class:`~tests.lan.netns.Lan`, collects what it reports, makes it send and leave;
* guest side: ``python -c "from tests.lan.guest_driver import guest_main; guest_main()"
  URL GUEST_ID NAME [MODE]`` opens the invite's WebSocket, sends a sealed OFFER carrying
  ``GUEST_ID`` (which a real page keeps per link in ``sessionStorage``: here the test
  chooses it) and runs the session. It prints one JSON object per line
  (``answered``, ``opened``, ``message``, ``closed`` with the close code and reason)
  and sends each line of its stdin as a chat message; end of stdin: it leaves.
  MODE ``quit-after-answer``: it leaves as soon as the ANSWER comes, without starting
  the session (a guest whose connection never opens). MODE ``probe``: first a probe
  (``"probe": "1"``, reported as ``closed``); ``probe-keep``: first a probe asking to
  keep the socket (reports ``usable``), then the OFFER on that socket, as the page
  does; ``probe-keep-stay``: the same probe, then it holds the socket and never offers
  (a page left at its Join form) until stdin ends; ``probe-twice``: two such probes.

It always takes the relay path: it never applies the ANSWER, so its data channel never
opens, and it sends its stream header as a RELAY message, as the page does when the
direct path does not open in time. Everything else is the real owner: its daemon, its
invite server, its handshake and session code.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lan.netns import Host

REPO_ROOT = Path(__file__).resolve().parents[2]
_LAUNCH = "from tests.lan.guest_driver import guest_main; guest_main()"
SIGNAL = 0x01
RELAY = 0x02
Report = dict[str, Any]


# --- test side -----------------------------------------------------------------------


class GuestProcess:
    """One Python guest running in ``host``."""

    def __init__(self, host: Host, url: str, guest_id: str, name: str, mode: str = "chat") -> None:
        self.guest_id = guest_id
        self.reports: list[Report] = []
        self._cond = threading.Condition()
        self.proc = host.python(
            _LAUNCH, url, guest_id, name, mode, cwd=str(REPO_ROOT),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def wait_for(self, *events: str, timeout: float = 60.0, **fields: Any) -> Report:
        """The first report of one of ``events`` with ``fields``; AssertionError after
        ``timeout`` (which only catches a hang)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for report in self.reports:
                    if report.get("event") in events and all(
                        report.get(k) == v for k, v in fields.items()
                    ):
                        return report
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"guest {self.guest_id}: no {events} {fields}; reports {self.reports};"
                        f" stderr {''.join(self._stderr)[-2000:]}"
                    )
                self._cond.wait(left)

    def events(self, event: str) -> list[Report]:
        with self._cond:
            return [r for r in self.reports if r.get("event") == event]

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def leave(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

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

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.decode("utf-8", "replace"))


# --- guest side ----------------------------------------------------------------------


def guest_main() -> None:
    url, guest_id, name, mode = sys.argv[1:5]
    asyncio.run(_async_guest(url, guest_id, name, mode))


def _report(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def _async_guest(url: str, guest_id: str, name: str, mode: str) -> None:
    import aiohttp
    from yarl import URL

    from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
    from p2pchat.crypto.link import LinkSecret
    from p2pchat.protocol import events
    from p2pchat.protocol.batch import encode_batch
    from p2pchat.protocol.session import Role, Session
    from p2pchat.transport.webrtc import DataChannelLink

    link = URL(url)
    secret = LinkSecret.from_fragment(link.fragment)
    session = Session(Role.INITIATOR, LinkEnvelopes(secret.envelope_key, ReplayGuard()))
    channel, sdp = await DataChannelLink.async_create_offer(
        on_message=lambda _data: None,
        files_channel=False,  # a browser has no files channel yet
    )
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    _read_stdin(asyncio.get_running_loop(), lines.put_nowait)
    ws_url = f"wss://{link.host}:{link.port}/ws/{link.path.rsplit('/', 1)[-1]}"
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http,
        http.ws_connect(ws_url, max_msg_size=0) as ws,
    ):
        probing = mode.startswith("probe")
        if probing and not await _probe(ws, secret.envelope_key, guest_id, mode, lines):
            await channel.async_close()
            return
        offer = session.make_offer(sdp, _now_ms(), {"guest": guest_id, "name": name})
        await ws.send_bytes(bytes([SIGNAL]) + offer)

        def wire(sealed: bytes) -> bytes:  # a batch of one, once both ends announced them
            return bytes([RELAY]) + (encode_batch([sealed]) if session.batching else sealed)

        async def send_lines() -> None:
            while (text := await lines.get()) is not None:
                _, data = session.send_text(text, _now_ms())
                await ws.send_bytes(wire(data))
            await ws.send_bytes(wire(session.close(_now_ms())))
            await ws.close()

        sender = asyncio.create_task(send_lines())
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                _report("closed", code=msg.data, reason=msg.extra or "")
                break
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                _report("closed", code=ws.close_code, reason="")
                break
            if msg.type is aiohttp.WSMsgType.TEXT:
                _report("notice", text=msg.data)
                continue
            if msg.type is not aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            kind, body = msg.data[0], msg.data[1:]
            if kind == SIGNAL:
                answer = session.receive_answer(body, _now_ms())
                _report("answered", owner=answer.info.get("name", ""))
                if mode == "quit-after-answer":
                    await ws.close()
                    _report("closed", code=ws.close_code, reason="we left")
                    break
                await ws.send_bytes(bytes([RELAY]) + session.stream_header())
                continue
            for event in session.receive_data(body, _now_ms()):
                if isinstance(event, events.SessionOpened):
                    _report("opened")
                elif isinstance(event, events.MessageReceived):
                    _report("message", text=event.text)
                    await ws.send_bytes(wire(session.send_receipt(event.message_id, _now_ms())))
                elif isinstance(event, events.PingReceived):
                    await ws.send_bytes(wire(session.pong(event.ping_id, _now_ms())))
        sender.cancel()
    await channel.async_close()


async def _probe(ws: Any, envelope_key: bytes, guest_id: str, mode: str, lines: Any) -> bool:
    """The page's probe (docs/guest-protocol.md "Probe"); True: go on to the OFFER."""
    import aiohttp

    from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
    from p2pchat.protocol.session import Role, Session

    for _ in range(2 if mode == "probe-twice" else 1):
        probe = Session(Role.INITIATOR, LinkEnvelopes(envelope_key, ReplayGuard()))
        info = {"guest": guest_id, "probe": "1" if mode == "probe" else "keep"}
        await ws.send_bytes(bytes([SIGNAL]) + probe.make_offer("v=0\r\n", _now_ms(), info))
        msg = await ws.receive()
        if msg.type is aiohttp.WSMsgType.BINARY and msg.data == bytes([SIGNAL]) + b"usable":
            _report("usable")
            continue
        code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
        _report("closed", code=code, reason=msg.extra or "")
        return False
    if mode == "probe-keep-stay":
        while await lines.get() is not None:
            pass
        await ws.close()
        _report("closed", code=ws.close_code, reason="we left")
        return False
    return mode == "probe-keep"


def _read_stdin(loop: asyncio.AbstractEventLoop, put: Callable[[str | None], None]) -> None:
    def run() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(put, line.rstrip("\n"))
        loop.call_soon_threadsafe(put, None)

    threading.Thread(target=run, daemon=True).start()


def _now_ms() -> int:
    return int(time.time() * 1000)
