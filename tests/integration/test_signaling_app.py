"""The signaling server on real loopback sockets, embedded mode: pages, headers, static
files, the guest WebSocket and its bounds, real TLS, and a recording check that the
server keeps and logs no payload.

The owner is a fake ``OwnerHooks`` here on purpose: what is under test is the server.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import logging
import os
import ssl
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from signaling import tls
from signaling.app import CSP, SECURITY_HEADERS, GuestConnection, Limits, relay_of
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
from tests.integration.signaling_fakes import FakeOwner, new_room_id

NOW_SLACK = 600.0
INDEX = b"<!doctype html><title>guest</title><script type=module src=/static/app.js></script>"
SECRET = b"TOP-SECRET-OUTSIDE-STATIC"


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "sub").mkdir(parents=True)
    (static / "index.html").write_bytes(INDEX)
    (static / "app.js").write_text("export const ok = 1;\n")
    (static / "sub" / "style.css").write_text("body { color: black; }\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (static / "leak.txt").symlink_to(outside / "secret.txt")
    (static / "leakdir").symlink_to(outside, target_is_directory=True)
    return static


Start = Callable[..., Awaitable[SignalingServer]]


@pytest.fixture
async def start_server(static_dir: Path) -> AsyncIterator[Start]:
    servers: list[SignalingServer] = []

    async def start(
        *,
        owner: Any = None,
        registry: RoomRegistry | None = None,
        limits: Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        standalone: bool = False,
        **kwargs: Any,
    ) -> SignalingServer:
        server = SignalingServer(
            registry or RoomRegistry(),
            host="127.0.0.1",
            port=0,
            ssl_context=ssl_context,
            static_dir=static_dir,
            owner_hooks=None if standalone else (owner or FakeOwner()),
            limits=limits,
            **kwargs,
        )
        await server.async_start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.async_stop()


def open_room(server: SignalingServer, *, ttl: float = NOW_SLACK) -> str:
    import time

    room_id = new_room_id()
    server.registry.open_room(room_id, expires_at=time.time() + ttl, now=time.time())
    return room_id


def ws_url(server: SignalingServer, room_id: str) -> str:
    return server.base_url.replace("http", "ws", 1) + f"/ws/{room_id}"


async def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.1 exchange (no client-side path normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
        return status, headers, body
    finally:
        writer.close()


def assert_security_headers(headers: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name


async def expect_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, list[str]]:
    """Read to the close; the close code the server sent and the texts seen before it."""
    texts = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                texts.append(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data), texts
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return ws.close_code, texts


# --- pages ------------------------------------------------------------------------


async def test_live_room_gets_the_page_every_other_room_the_same_404(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    import time

    server = await start_server()
    live = open_room(server)
    expired, revoked, used_up = new_room_id(), open_room(server), open_room(server)
    server.registry.open_room(expired, expires_at=time.time() - 1, now=time.time())
    server.registry.revoke(revoked)
    server.registry.close(used_up)

    async with http.get(f"{server.base_url}/c/{live}") as response:
        assert response.status == 200
        assert await response.read() == INDEX
        assert response.content_type == "text/html"

    answers = []
    not_live = [new_room_id(), expired, revoked, used_up]
    malformed = ["short", "A" * 21 + "B", "A" * 23, "", "a/b", "A" * 21 + "%3D", "a" * 200]
    for room_id in not_live + malformed:
        async with http.get(f"{server.base_url}/c/{room_id}") as response:
            headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
            answers.append((response.status, headers, await response.read()))
    assert answers[0][0] == 404
    assert b"not valid" in answers[0][2]
    assert b"expired, was used up or was revoked" in answers[0][2]
    assert all(answer == answers[0] for answer in answers), "404s must be identical"
    # A GET consumes nothing: the live room is still live.
    async with http.get(f"{server.base_url}/c/{live}") as response:
        assert response.status == 200


async def test_security_headers_on_every_response(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    server = await start_server(limits=Limits(requests_per_second=0.001, request_burst=6))
    live = open_room(server)
    for path in (f"/c/{live}", f"/c/{new_room_id()}", "/static/app.js", "/nowhere", "/static/"):
        async with http.get(server.base_url + path) as response:
            assert_security_headers(response.headers)
            assert "aiohttp" not in response.headers.get("Server", "")
    assert "frame-ancestors 'none'" in CSP
    # The WebSocket upgrade (101) too, read raw.
    status, headers, _ = await raw_request(
        server.port,
        f"GET /ws/{live} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode(),
    )
    assert status == 101
    assert_security_headers({k.title(): v for k, v in headers.items()})
    # Over the per-address request rate: 429, headers still there.
    async with http.get(f"{server.base_url}/c/{live}") as response:
        assert response.status == 429
        assert_security_headers(response.headers)


# --- static -----------------------------------------------------------------------


async def test_static_serves_files_but_no_symlink_out_no_traversal_no_listing(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    server = await start_server()
    async with http.get(f"{server.base_url}/static/app.js") as response:
        assert response.status == 200
        assert await response.read() == b"export const ok = 1;\n"
    async with http.get(f"{server.base_url}/static/sub/style.css") as response:
        assert response.status == 200
    for path in ("/static/leak.txt", "/static/leakdir/secret.txt", "/static/", "/static/sub/"):
        async with http.get(server.base_url + path) as response:
            body = await response.read()
            assert response.status in (403, 404), path
            assert SECRET not in body
            assert b"style.css" not in body
            assert b"index.html" not in body
    for raw_path in (
        "/static/../outside/secret.txt",
        "/static/..%2foutside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/sub/../../outside/secret.txt",
        "/static/..%5coutside%5csecret.txt",
    ):
        status, _headers, body = await raw_request(
            server.port, f"GET {raw_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert status != 200, raw_path
        assert SECRET not in body


# --- guest WebSocket, embedded --------------------------------------------------------


async def test_embedded_relay_both_directions(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner)
    room = open_room(server)
    async with http.ws_connect(ws_url(server, room)) as ws:
        await ws.send_bytes(b"\x01offer-envelope")
        await owner.wait_for(lambda: len(owner.messages) == 1)
        room_id, guest, data = owner.messages[0]
        assert (room_id, data) == (room, b"\x01offer-envelope")
        assert len(guest.id) == 16
        assert int(guest.id, 16) >= 0
        assert guest.remote == "127.0.0.1"
        guest.send(b"\x01answer-envelope")
        guest.send(b"\x02stream-header")
        assert (await ws.receive_bytes(timeout=5)) == b"\x01answer-envelope"
        assert (await ws.receive_bytes(timeout=5)) == b"\x02stream-header"
        await ws.send_bytes(b"\x02relayed-frame")
        await owner.wait_for(lambda: len(owner.messages) == 2)
        assert owner.messages[1][1] is guest
        assert owner.messages[1][2] == b"\x02relayed-frame"
        # A second guest gets its own id.
        async with http.ws_connect(ws_url(server, room)) as other:
            await other.send_bytes(b"\x01x")
            await owner.wait_for(lambda: len(owner.messages) == 3)
            assert owner.messages[2][1].id != guest.id
    await owner.wait_for(lambda: len(owner.closed) == 2)
    assert {g.id for _, g in owner.closed} == {guest.id, owner.messages[2][1].id}
    relay = relay_of(server.app)
    assert relay.guest_count == 0
    assert relay.guests == {}


async def test_owner_closes_a_guest_after_its_queued_messages(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner)
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        await ws.send_bytes(b"\x01hi")
        await owner.wait_for(lambda: bool(owner.messages))
        guest = owner.messages[0][1]
        guest.send(b"\x02last")
        guest.close(4000, "session over")
        assert (await ws.receive_bytes(timeout=5)) == b"\x02last"
        code, _ = await expect_close(ws)
        assert code == 4000
        with pytest.raises(ValueError, match="guest message"):
            guest.send(b"")


async def test_a_guest_too_far_behind_is_disconnected(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner, limits=Limits(send_queue_messages=4))
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        await ws.send_bytes(b"\x01hi")
        await owner.wait_for(lambda: bool(owner.messages))
        guest = owner.messages[0][1]
        for _ in range(50):  # all at once, before the loop can send any
            guest.send(b"\x02" + bytes(1000))
        code, texts = await expect_close(ws)
        assert code == 1013
        assert any("too far behind" in t for t in texts)


async def test_text_from_a_guest_closes_1003(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner)
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        await ws.send_str('{"sdp": "v=0"}')
        code, texts = await expect_close(ws)
    assert code == 1003
    assert '"binary messages only"' in texts[0]
    assert owner.messages == []


@pytest.mark.parametrize("payload", [b"\x00junk", b"\x04junk", b"\xffjunk"])
async def test_unknown_message_type_closes_1003(
    start_server: Start, http: aiohttp.ClientSession, payload: bytes
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner)
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        await ws.send_bytes(payload)
        code, _ = await expect_close(ws)
    assert code == 1003
    assert owner.messages == []


async def test_oversized_message_closes_1009(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner)
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        await ws.send_bytes(b"\x02" + bytes(128 * 1024 - 1))  # exactly the bound: fine
        await owner.wait_for(lambda: bool(owner.messages))
        await ws.send_bytes(b"\x02" + bytes(128 * 1024))
        code, _ = await expect_close(ws)
    assert code == 1009
    assert len(owner.messages) == 1


async def test_message_rate_over_the_bucket_closes_1008(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(
        owner=owner, limits=Limits(messages_per_second=1.0, message_burst=5)
    )
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        for i in range(20):
            await ws.send_bytes(b"\x02%d" % i)
        code, texts = await expect_close(ws)
    assert code == 1008
    assert "too many messages" in texts[-1]
    assert len(owner.messages) == 5
    await owner.wait_for(lambda: len(owner.closed) == 1)


async def test_file_messages_both_ways_outside_the_message_bucket(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    """FILE (0x03) chunks go through like RELAY ones, and a file's hundreds of chunks
    do not spend the chat's message bucket: the guest is not closed mid-file."""
    owner = FakeOwner()
    server = await start_server(
        owner=owner, limits=Limits(messages_per_second=1.0, message_burst=5)
    )
    chunk = b"\x03" + bytes(65_608)  # the largest chunk message
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        for _ in range(40):
            await ws.send_bytes(chunk)
        await ws.send_bytes(b"\x02chat")  # chat still has its bucket
        await owner.wait_for(lambda: len(owner.messages) == 41)
        assert [d[:1] for _, _, d in owner.messages] == [b"\x03"] * 40 + [b"\x02"]
        guest = owner.messages[0][1]
        guest.send(b"\x03sealed")
        assert (await ws.receive_bytes(timeout=5)) == b"\x03sealed"
        assert not ws.closed
    await owner.wait_for(lambda: len(owner.closed) == 1)


async def test_file_messages_past_the_byte_budget_are_slowed_not_closed(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    limits = Limits(file_bytes_per_second=2 * 1024 * 1024, file_burst_bytes=128 * 1024)
    server = await start_server(owner=owner, limits=limits)
    async with http.ws_connect(ws_url(server, open_room(server))) as ws:
        started = time.monotonic()
        for i in range(32):  # 2 MiB: 16 times the burst
            await ws.send_bytes(b"\x03" + bytes([i]) * 65_536)
        await owner.wait_for(lambda: len(owner.messages) == 32, timeout=30)
        took = time.monotonic() - started
        assert [d[1] for _, _, d in owner.messages] == list(range(32))  # all, in order
        assert not ws.closed
    # Slowed: past the burst the server reads no faster than the budget. A lower bound
    # (the server's own sleeps), which a slow machine can only exceed.
    least = (32 * 65_537 - limits.file_burst_bytes) / limits.file_bytes_per_second
    assert took >= least * 0.95, f"{took:.3f} s for what the budget spreads over {least:.3f} s"


async def test_a_sender_waits_for_room_towards_the_guest(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    """``async_wait_queue_below``: a bulk sender that waits before each message never
    hits the queue bound that disconnects a guest."""
    owner = FakeOwner()
    limits = Limits(send_queue_bytes=256 * 1024, send_queue_messages=8)
    server = await start_server(owner=owner, limits=limits)
    async with http.ws_connect(ws_url(server, open_room(server)), max_msg_size=0) as ws:
        await ws.send_bytes(b"\x01hi")
        await owner.wait_for(lambda: bool(owner.messages))
        guest = owner.messages[0][1]

        async def send_all() -> None:
            for i in range(64):  # 4 MiB: 16 times the queue bound
                await guest.async_wait_queue_below(128 * 1024)
                guest.send(b"\x03" + bytes([i]) * 65_536)

        sender = asyncio.get_running_loop().create_task(send_all())
        for i in range(64):
            data = await ws.receive_bytes(timeout=10)
            assert data[:2] == bytes([3, i])
        await sender


async def test_connections_per_address_per_room_and_in_total_are_capped(
    start_server: Start,
) -> None:
    server = await start_server(
        limits=Limits(connections_per_address=2, connections_per_room=3, total_connections=4)
    )
    room, other_room = open_room(server), open_room(server)

    def session(source: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))

    sessions = [session(f"127.0.0.{n}") for n in (1, 2, 3)]
    try:
        first = [await sessions[0].ws_connect(ws_url(server, room)) for _ in range(2)]
        third = await sessions[0].ws_connect(ws_url(server, other_room))
        code, texts = await expect_close(third)
        assert code == 1008
        assert "too many connections from your address" in texts[0]
        # Another address may still join the room, up to the room's cap.
        second = await sessions[1].ws_connect(ws_url(server, room))
        fourth = await sessions[2].ws_connect(ws_url(server, room))
        code, texts = await expect_close(fourth)
        assert code == 1008
        assert "too many connections to this room" in texts[0]
        # And a fourth connection in all fills the server.
        other = await sessions[2].ws_connect(ws_url(server, other_room))
        busy = await sessions[1].ws_connect(ws_url(server, other_room))
        code, texts = await expect_close(busy)
        assert code == 1013
        # Closing one frees its slot.
        await first[0].close()
        await asyncio.sleep(0.1)
        again = await sessions[0].ws_connect(ws_url(server, room))
        await again.send_bytes(b"\x01ok")
        assert not again.closed
        for ws in [first[1], second, other, again]:
            await ws.close()
    finally:
        for s in sessions:
            await s.close()


async def test_room_not_live_closes_4404(start_server: Start, http: aiohttp.ClientSession) -> None:
    import time

    server = await start_server()
    revoked, expired = open_room(server), new_room_id()
    server.registry.revoke(revoked)
    server.registry.open_room(expired, expires_at=time.time() - 1, now=time.time())
    for room_id in (new_room_id(), revoked, expired, "not-a-room-id"):
        async with http.ws_connect(ws_url(server, room_id)) as ws:
            code, texts = await expect_close(ws)
        assert code == 4404
        assert texts == ['{"type": "error", "message": "link not valid"}']


async def test_revoking_a_room_keeps_connected_guests(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    """Used up / revoked stops new guests; a guest mid-session (relay path) stays."""
    owner = FakeOwner(echo=True)
    server = await start_server(owner=owner)
    room = open_room(server)
    async with http.ws_connect(ws_url(server, room)) as ws:
        server.registry.close(room)
        await ws.send_bytes(b"\x02still here")
        assert (await ws.receive_bytes(timeout=5)) == b"\x02still here"
        async with http.ws_connect(ws_url(server, room)) as late:
            code, _ = await expect_close(late)
        assert code == 4404


async def test_server_stop_closes_guests_1001(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    server = await start_server()
    ws = await http.ws_connect(ws_url(server, open_room(server)))
    await server.async_stop()
    code, _ = await expect_close(ws)
    assert code == 1001


# --- TLS --------------------------------------------------------------------------


async def test_real_tls_with_the_self_signed_certificate(
    start_server: Start, tmp_path: Path
) -> None:
    files = tls.load_or_create_certificate(tmp_path / "data", addresses=["127.0.0.1"])
    owner = FakeOwner(echo=True)
    server = await start_server(owner=owner, ssl_context=tls.ssl_context(files))
    assert server.base_url.startswith("https://127.0.0.1:")
    room = open_room(server)
    trust = ssl.create_default_context(cafile=str(files.cert))  # hostname checked: IP SAN
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/c/{room}", ssl=trust) as response:
            assert response.status == 200
            assert_security_headers(response.headers)
        wss = f"wss://127.0.0.1:{server.port}/ws/{room}"
        async with http.ws_connect(wss, ssl=trust) as ws:
            await ws.send_bytes(b"\x01over tls")
            assert (await ws.receive_bytes(timeout=5)) == b"\x01over tls"
        # Without trusting the certificate, a client refuses the server.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{server.base_url}/c/{room}")
    pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", server.port))
    der = ssl.PEM_cert_to_DER_cert(pem)
    shown = tls.sha256_fingerprint(files)
    assert shown == hashlib.sha256(der).digest().hex(":").upper()


# --- nothing kept, nothing logged -----------------------------------------------------


def _strings_reachable_from(*roots: object) -> list[bytes]:
    """Every bytes/str reachable from ``roots`` through plain objects (not modules,
    classes, functions' globals, the event loop: those reach the test itself)."""
    skip = (
        types.ModuleType,
        type,
        types.FunctionType,
        types.CodeType,
        types.BuiltinFunctionType,
        types.FrameType,
        asyncio.AbstractEventLoop,
        logging.Logger,
    )
    seen: set[int] = set()
    found: list[bytes] = []
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray | memoryview):
            found.append(bytes(obj))
            continue
        if isinstance(obj, str):
            found.append(obj.encode("utf-8", "surrogatepass"))
            continue
        if isinstance(obj, skip):
            continue
        if isinstance(obj, types.MethodType):
            stack.append(obj.__self__)
            continue
        stack.extend(gc.get_referents(obj))
        slots = getattr(type(obj), "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if hasattr(obj, name):
                stack.append(getattr(obj, name))
    return found


async def test_recording_server_keeps_and_logs_no_payload(
    start_server: Start,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorded: list[bytes] = []
    original_receive = web.WebSocketResponse.receive

    async def recording_receive(self: web.WebSocketResponse, timeout: float | None = None) -> Any:
        msg = await original_receive(self, timeout)
        if isinstance(msg.data, bytes | str):
            recorded.append(msg.data if isinstance(msg.data, bytes) else msg.data.encode())
        return msg

    monkeypatch.setattr(web.WebSocketResponse, "receive", recording_receive)

    class Sink(FakeOwner):
        """The owner answers each blob with another; it keeps only a count."""

        count: int = 0

        def on_guest_message(self, room_id: str, guest: GuestConnection, data: bytes) -> None:
            self.count += 1
            self.event.set()
            guest.send(data[:1] + os.urandom(48))

    owner = Sink()
    server = await start_server(owner=owner)
    blobs = [bytes([1 + i % 2]) + os.urandom(64) for i in range(40)]
    replies = []
    for chunk in (blobs[:20], blobs[20:]):
        async with http.ws_connect(ws_url(server, open_room(server))) as ws:
            for blob in chunk:
                await ws.send_bytes(blob)
                replies.append(await ws.receive_bytes(timeout=5))
            await ws.send_str("text: " + chunk[0][1:].hex())  # refused, must not be logged
            await expect_close(ws)
    assert owner.count == 40
    # The recording proves the blobs did reach the server...
    assert all(blob in recorded for blob in blobs)
    # ...which logged none of them (raw, hex or base64), nor the replies it relayed...
    logs = caplog.text.encode() + "".join(capfd.readouterr()).encode()
    for blob in blobs + replies:
        body = blob[1:]
        for form in (body, body.hex().encode(), base64.b64encode(body)[:40]):
            assert form not in logs
        assert base64.urlsafe_b64encode(body)[:40] not in logs
    # ...and keeps none: nothing reachable from the application holds a payload.
    gc.collect()
    held = _strings_reachable_from(server.app, server.registry)
    assert held, "the walk found the application's strings"
    for blob in blobs + replies:
        assert not any(blob[1:17] in s for s in held)
    # Control: the walk does see into the relay's state.
    relay_of(server.app).guests["planted"] = {b"k": blobs[0]}  # type: ignore[dict-item]
    assert any(blobs[0][1:17] in s for s in _strings_reachable_from(server.app))
    del relay_of(server.app).guests["planted"]


async def test_cross_origin_websocket_is_refused(
    start_server: Start, http: aiohttp.ClientSession
) -> None:
    owner = FakeOwner()
    server = await start_server(owner=owner)
    room = open_room(server)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(ws_url(server, room), headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    same = {"Origin": f"http://127.0.0.1:{server.port}"}
    async with http.ws_connect(ws_url(server, room), headers=same) as ws:
        await ws.send_bytes(b"\x01same origin")
        await owner.wait_for(lambda: bool(owner.messages))
