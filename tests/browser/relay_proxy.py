"""A recording (and optionally tampering) reverse proxy in front of a node's invite server,
or of a standalone ``p2pchat signal-server`` (then for the owner node too).

It plays the untrusted signaling relay of DESIGN.md section 3: the guest's browser talks
to it as if it were the node (same ``/c/<room>`` path and fragment, the proxy's own
self-signed certificate), and it forwards ``GET /c/...``, ``GET /static/...`` and the
WebSocket ``/ws/<room>`` to the node over TLS (no verification). On the upstream
WebSocket request it sets ``Origin`` and ``Host`` to the upstream's ``host:port``, since
the server refuses WebSockets whose Origin is not its own Host.

In front of a standalone server it also forwards the owner's WebSocket
``/owner/<room>``, with its ``Authorization`` header (the owner token) if any: the owner
node is then given the proxy's URL (``invite --server``), so the proxy sees everything
the server sees. ``--cert``/``--key`` make it serve a given chain (a test CA's leaf that
the node and Chromium trust) instead of its own self-signed one.

Recording (``--record FILE``): every HTTP request the clients send (request line,
headers as received, body) and every WebSocket message in either direction, as records
``[tag: 1 byte][length: u32 big-endian][data]``; :func:`read_recording` reads them back.
Tags: ``H`` request head, ``B`` request body, ``g`` guest→server WebSocket binary,
``t`` guest→server WebSocket text, ``G`` server→guest binary, ``T`` server→guest text;
on the owner socket ``o`` owner→server binary, ``q`` owner→server text, ``O``
server→owner binary, ``Q`` server→owner text.
HTTP response bodies (the page and its scripts) are not recorded: they are the node's
public assets, not what the clients say.

Tampering (``--mode``), each an attack of a malicious relay on the handshake:

``pass``
    Forward untouched.
``flip``
    Flip one bit inside the ciphertext of every guest→owner SIGNAL (the OFFER
    envelope), so every attempt of the guest fails authentication at the owner.
``reflect``
    Forward the guest's OFFER; when the owner's ANSWER comes back, give the guest its
    own OFFER instead (the guest must refuse it as reflected), and send the owner's
    ANSWER back to the owner as an OFFER on a fresh upstream WebSocket (the owner must
    refuse it as reflected).
``replay``
    Forward the first guest connection untouched, remembering its OFFER and ANSWER.
    Then send that OFFER again to the owner on a fresh upstream WebSocket (the owner
    must refuse it as replayed). On every later guest connection, give the guest the
    remembered ANSWER instead of the owner's new one (the guest must refuse it: it
    belongs to an earlier session).

``damage-file``
    Flip the last byte (inside the AEAD tag) of one FILE message (type 0x03: a sealed
    file chunk) in each direction: the 20th guest→owner and the 20th owner→guest one.
    The receiver must resume the transfer from its last verified block, not fail it.

The owner's ``usable`` answer to a probe (a SIGNAL that is no envelope, see
docs/guest-protocol.md "Probe") passes untouched in every mode: the attacks are on the
OFFER and ANSWER envelopes.

Events go to stdout as JSON lines (``{"event": "ready", "port": N}`` first, then e.g.
``{"event": "attacker_closed", "code": 4400, "reason": "..."}`` for the sockets the
proxy opened itself). The tampering modes touch guest sockets only; owner sockets are
always forwarded untouched.

    python tests/browser/relay_proxy.py --upstream 10.0.0.1:8443 --record rec.bin \\
        --cert-dir /tmp/x [--mode flip] [--port 0] [--cert chain.pem --key key.pem]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.lan.netns import Host

SIGNAL = 0x01
RELAY = 0x02
FILE = 0x03
DAMAGED_FILE_MESSAGE = 20  # damage-file mode: which FILE message each way is damaged
USABLE = bytes([SIGNAL]) + b"usable"  # the owner's answer to a probe kept open
#: SIGNAL type byte + envelope version + scheme + 24-byte nonce: the ciphertext follows.
CIPHERTEXT_OFFSET = 1 + 2 + 24
MODES = ("pass", "flip", "reflect", "replay", "damage-file")
#: Recording tags per socket kind: (client binary, client text, server binary, server text).
WS_TAGS = {"guest": ("g", "t", "G", "T"), "owner": ("o", "q", "O", "Q")}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "upgrade",
}


def read_recording(path: Path) -> list[tuple[str, bytes]]:
    """The records of a recording file, in order: ``(tag, data)``."""
    raw = path.read_bytes()
    records: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(raw):
        tag = chr(raw[pos])
        (size,) = struct.unpack_from(">I", raw, pos + 1)
        records.append((tag, raw[pos + 5 : pos + 5 + size]))
        pos += 5 + size
    return records


class ProxyProcess:
    """This script running in ``host`` (tests drive it): ``args`` are its flags besides
    ``--record``; its JSON events are kept, :meth:`wait_for` waits for one."""

    def __init__(self, host: Host, workdir: Path, args: Sequence[str]) -> None:
        from tests.lan.netns import PYTHON

        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recording = self.dir / "recording.bin"
        self.host = host
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.proc = host.popen(
            [PYTHON, __file__, "--record", str(self.recording), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait_for(lambda e: e["event"] == "ready", timeout=30)["port"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 45.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    err = b""
                    if self.proc.poll() is not None and self.proc.stderr is not None:
                        err = self.proc.stderr.read()
                    raise AssertionError(f"proxy: timed out; events {self.events} {err!r}")
                self._cond.wait(min(left, 0.5))

    def records(self) -> list[tuple[str, bytes]]:
        return read_recording(self.recording)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Recorder:
    def __init__(self, path: Path) -> None:
        self._file = path.open("ab", buffering=0)

    def record(self, tag: str, data: bytes) -> None:
        self._file.write(tag.encode("ascii") + struct.pack(">I", len(data)) + data)


class Proxy:
    def __init__(self, upstream: str, recorder: Recorder, mode: str) -> None:
        self.upstream = upstream
        self.recorder = recorder
        self.mode = mode
        self.client_ssl = ssl.create_default_context()
        self.client_ssl.check_hostname = False
        self.client_ssl.verify_mode = ssl.CERT_NONE
        self.connections = 0
        self.first_offer: bytes | None = None  # replay mode
        self.first_answer: bytes | None = None
        self.file_messages: dict[str, int] = {}  # damage-file mode: FILE messages each way
        self.session: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- HTTP -----------------------------------------------------------------------

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        head = f"{request.method} {request.raw_path} HTTP/{request.version.major}.{request.version.minor}\r\n"
        head += "".join(
            f"{k.decode('latin-1')}: {v.decode('latin-1')}\r\n" for k, v in request.raw_headers
        )
        self.recorder.record("H", head.encode("latin-1") + b"\r\n")
        body = await request.read()
        if body:
            self.recorder.record("B", body)
        if request.path.startswith("/ws/"):
            return await self.websocket(request, "guest")
        if request.path.startswith("/owner/"):
            return await self.websocket(request, "owner")
        if not (request.path.startswith("/c/") or request.path.startswith("/static/")):
            return web.Response(status=404, text="not proxied")
        async with self.session.get(
            f"https://{self.upstream}{request.raw_path}",
            ssl=self.client_ssl,
            allow_redirects=False,
            headers={"Accept": request.headers.get("Accept", "*/*")},
        ) as upstream:
            data = await upstream.read()
            headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=data, headers=headers)

    # -- WebSocket -------------------------------------------------------------------

    async def websocket(self, request: Any, kind: str) -> Any:
        import aiohttp
        from aiohttp import web

        owner = kind == "owner"
        up_binary, up_text, down_binary, down_text = WS_TAGS[kind]
        if not owner:  # attacks are on the guest's handshake only
            self.connections += 1
        index = self.connections
        # An owner socket carries every guest's frames plus an 8-byte header each.
        downstream = web.WebSocketResponse(autoping=True, max_msg_size=4 << 20)
        await downstream.prepare(request)
        url = f"wss://{self.upstream}{request.raw_path}"
        headers = {}
        if owner and "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        try:
            upstream = await self.session.ws_connect(
                url,
                ssl=self.client_ssl,
                origin=None if owner else f"https://{self.upstream}",
                headers=headers,
                autoping=True,
                max_msg_size=4 << 20,
            )
        except aiohttp.ClientError as exc:
            emit(event="upstream_failed", error=str(exc))
            await downstream.close(code=1011, message=b"upstream failed")
            return downstream
        emit(event="ws_open", index=index, path=request.path)
        state: dict[str, Any] = {"offer": None}

        async def guest_to_owner() -> None:
            async for msg in downstream:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    data = bytes(msg.data)
                    self.recorder.record(up_binary, data)
                    sent: bytes | None = data
                    if not owner:
                        sent = await self.tamper_up(index, data, state, request.raw_path)
                    if sent is not None:
                        await upstream.send_bytes(sent)
                elif msg.type is aiohttp.WSMsgType.TEXT:
                    self.recorder.record(up_text, msg.data.encode())
                    await upstream.send_str(msg.data)
                else:
                    break
            await upstream.close()

        async def owner_to_guest() -> None:
            while True:
                msg = await upstream.receive()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    data = bytes(msg.data)
                    self.recorder.record(down_binary, data)
                    sent: bytes | None = data
                    if not owner:
                        sent = await self.tamper_down(index, data, state, request.raw_path)
                    if sent is not None:
                        await downstream.send_bytes(sent)
                elif msg.type is aiohttp.WSMsgType.TEXT:
                    self.recorder.record(down_text, msg.data.encode())
                    await downstream.send_str(msg.data)
                else:
                    if msg.type is aiohttp.WSMsgType.CLOSE:
                        state["close"] = (int(msg.data), str(msg.extra or ""))
                    break

        tasks = [asyncio.ensure_future(guest_to_owner()), asyncio.ensure_future(owner_to_guest())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        # The owner's close code and reason (4403 used up, 4400 handshake failed…) reach
        # the guest unchanged.
        code, reason = state.get("close") or (upstream.close_code or 1000, "")
        emit(event="ws_closed", index=index, kind=kind, code=code, reason=reason)
        if not downstream.closed:
            await downstream.close(code=code, message=reason.encode())
        if not upstream.closed:
            await upstream.close()
        return downstream

    # -- tampering ---------------------------------------------------------------------

    async def tamper_up(
        self, index: int, data: bytes, state: dict[str, Any], path: str
    ) -> bytes | None:
        if self.mode == "damage-file" and data[:1] == bytes([FILE]):
            return self.damage_file(data, "up", index)
        if not data or data[0] != SIGNAL:
            return data
        state["offer"] = data
        if self.mode == "flip" and len(data) > CIPHERTEXT_OFFSET + 8:
            flipped = bytearray(data)
            flipped[CIPHERTEXT_OFFSET + 4] ^= 0x01
            emit(event="flipped", index=index)
            return bytes(flipped)
        if self.mode == "replay" and self.first_offer is None:
            self.first_offer = data
        return data

    async def tamper_down(
        self, index: int, data: bytes, state: dict[str, Any], path: str
    ) -> bytes | None:
        if self.mode == "damage-file" and data[:1] == bytes([FILE]):
            return self.damage_file(data, "down", index)
        if not data or data[0] != SIGNAL or data == USABLE:
            return data
        if self.mode == "reflect" and state["offer"] is not None:
            emit(event="reflected", index=index)
            self.spawn(self.attack(path, data, "reflect"))
            return state["offer"]
        if self.mode == "replay":
            if self.first_answer is None:
                self.first_answer = data
                assert self.first_offer is not None
                self.spawn(self.attack(path, self.first_offer, "replay"))
                return data
            emit(event="replayed_answer", index=index)
            return self.first_answer
        return data

    def damage_file(self, data: bytes, way: str, index: int) -> bytes:
        """damage-file mode: the 20th FILE message each way gets its last byte flipped."""
        seen = self.file_messages[way] = self.file_messages.get(way, 0) + 1
        if seen != DAMAGED_FILE_MESSAGE:
            return data
        emit(event="damaged_file", index=index, way=way)
        return data[:-1] + bytes([data[-1] ^ 0x01])

    async def attack(self, path: str, data: bytes, what: str) -> None:
        """Send ``data`` to the owner on a WebSocket of our own; report how it ends."""
        import aiohttp

        await asyncio.sleep(0.5)
        try:
            ws = await self.session.ws_connect(
                f"wss://{self.upstream}{path}",
                ssl=self.client_ssl,
                origin=f"https://{self.upstream}",
            )
        except aiohttp.ClientError as exc:
            emit(event="attacker_failed", what=what, error=str(exc))
            return
        await ws.send_bytes(data)
        try:
            msg = await asyncio.wait_for(ws.receive(), timeout=30)
            extra = msg.extra if msg.type is aiohttp.WSMsgType.CLOSE else None
            emit(
                event="attacker_closed",
                what=what,
                type=str(msg.type),
                code=int(msg.data) if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code,
                reason=extra if isinstance(extra, str) else None,
            )
        except TimeoutError:
            emit(event="attacker_timeout", what=what)
        await ws.close()


async def main(argv: list[str]) -> None:
    import aiohttp
    from aiohttp import web

    from signaling.tls import load_or_create_certificate, ssl_context

    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the node's invite server")
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--cert-dir", type=Path, help="its own self-signed certificate's home")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="pass")
    parser.add_argument("--cert", type=Path, help="PEM chain to serve (with --key)")
    parser.add_argument("--key", type=Path)
    args = parser.parse_args(argv)

    if (args.cert is None) != (args.key is None) or (args.cert is None and args.cert_dir is None):
        parser.error("give --cert and --key, or --cert-dir")
    if args.cert is not None:
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(args.cert, args.key)
    else:
        args.cert_dir.mkdir(parents=True, exist_ok=True)
        server_ssl = ssl_context(load_or_create_certificate(args.cert_dir))
    proxy = Proxy(args.upstream, Recorder(args.record), args.mode)
    proxy.session = aiohttp.ClientSession()
    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=server_ssl)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emit(event="ready", port=port)
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.session.close()
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
