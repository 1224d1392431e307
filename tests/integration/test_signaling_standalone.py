"""Standalone mode on real loopback sockets: owners claim rooms over ``/owner/{room}``
with the real ``OwnerClient``; guests relay through the server to the owner's hooks.
Plus the ``signal-server`` command in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from signaling.app import Limits, relay_of
from signaling.owner_client import OwnerClient, OwnerClientError
from signaling.server import SignalingServer
from tests.integration.conftest import StartStandalone
from tests.integration.signaling_fakes import FakeOwner, new_room_id, ws_url

TOKEN = "owner-token-0123456789"


@pytest.fixture
async def server(start_standalone: StartStandalone) -> SignalingServer:
    return await start_standalone(owner_token=TOKEN, limits=Limits(owner_hello_timeout=0.5))


@pytest.fixture
async def owner(server: SignalingServer) -> AsyncIterator[tuple[OwnerClient, FakeOwner]]:
    hooks = FakeOwner()
    client = OwnerClient(server.base_url, hooks, owner_token=TOKEN)
    yield client, hooks
    await client.async_close()


async def expect_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, list[str]]:
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


async def test_relay_through_a_claimed_room_both_ways(
    server: SignalingServer, owner: tuple[OwnerClient, FakeOwner], http: aiohttp.ClientSession
) -> None:
    client, hooks = owner
    room = new_room_id()
    granted = await client.async_open_room(room, expires_at=time.time() + 600)
    assert abs(granted - (time.time() + 600)) < 5
    assert server.registry.is_live(room, time.time())
    async with http.get(f"{server.base_url}/c/{room}") as response:
        assert response.status == 503  # live, but this test server has no guest page

    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest_ws:
        await guest_ws.send_bytes(b"\x01offer")
        await hooks.wait_for(lambda: len(hooks.messages) == 1)
        room_id, guest, data = hooks.messages[0]
        assert (room_id, data) == (room, b"\x01offer")
        assert guest.remote == "127.0.0.1"
        server_side = next(iter(relay_of(server.app).guests[room].values()))
        assert guest.id == server_side.id  # the same id on both ends
        guest.send(b"\x01answer")
        guest.send(b"\x02header")
        assert (await guest_ws.receive_bytes(timeout=5)) == b"\x01answer"
        assert (await guest_ws.receive_bytes(timeout=5)) == b"\x02header"
        await guest_ws.send_bytes(b"\x02frame")
        await hooks.wait_for(lambda: len(hooks.messages) == 2)
        assert hooks.messages[1][1] is guest
        assert hooks.messages[1][2] == b"\x02frame"
    await hooks.wait_for(lambda: len(hooks.closed) == 1)
    assert hooks.closed[0][1] is guest

    # The owner closes a guest with its own code.
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest_ws:
        await guest_ws.send_bytes(b"\x01again")
        await hooks.wait_for(lambda: len(hooks.messages) == 3)
        second = hooks.messages[2][1]
        assert second.id != guest.id
        second.send(b"\x02bye")
        second.close(4000, "session over")
        assert (await guest_ws.receive_bytes(timeout=5)) == b"\x02bye"
        code, _ = await expect_close(guest_ws)
        assert code == 4000


async def test_first_owner_wins_and_the_room_ends_with_its_owner(
    server: SignalingServer, owner: tuple[OwnerClient, FakeOwner], http: aiohttp.ClientSession
) -> None:
    client, hooks = owner
    hooks.echo = True
    room = new_room_id()
    await client.async_open_room(room, expires_at=time.time() + 600)
    rival = OwnerClient(server.base_url, FakeOwner(), owner_token=TOKEN)
    try:
        with pytest.raises(OwnerClientError, match=r"4409.*already claimed"):
            await rival.async_open_room(room, expires_at=time.time() + 600)
    finally:
        await rival.async_close()

    guest_ws = await http.ws_connect(ws_url(server, f"/ws/{room}"))
    await guest_ws.send_bytes(b"\x01hello")
    assert (await guest_ws.receive_bytes(timeout=5)) == b"\x01hello"
    await client.async_mark_used_up(room)
    await asyncio.sleep(0.1)
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as late:
        code, _ = await expect_close(late)
        assert code == 4404
    await guest_ws.send_bytes(b"\x02still relayed")  # a connected guest stays
    assert (await guest_ws.receive_bytes(timeout=5)) == b"\x02still relayed"

    await client.async_leave_room(room)
    code, texts = await expect_close(guest_ws)
    assert code == 1001
    assert json.loads(texts[-1]) == {"type": "owner_left"}
    await hooks.wait_for(lambda: len(hooks.closed) == 1)
    assert room not in server.registry
    async with http.get(f"{server.base_url}/c/{room}") as response:
        assert response.status == 404
    assert client.rooms == {}
    # Once given up, the room can be claimed again.
    await client.async_open_room(room, expires_at=time.time() + 60)
    assert room in client.rooms


async def test_owner_needs_the_token_a_valid_room_and_a_hello(
    server: SignalingServer, http: aiohttp.ClientSession
) -> None:
    room = new_room_id()
    nobody = OwnerClient(server.base_url, FakeOwner())
    wrong = OwnerClient(server.base_url, FakeOwner(), owner_token="x" * 22)
    try:
        with pytest.raises(OwnerClientError, match="401"):
            await nobody.async_open_room(room, expires_at=time.time() + 60)
        with pytest.raises(OwnerClientError, match="401"):
            await wrong.async_open_room(room, expires_at=time.time() + 60)
    finally:
        await nobody.async_close()
        await wrong.async_close()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http.ws_connect(ws_url(server, "/owner/not-a-room"), headers=auth) as ws:
        code, _ = await expect_close(ws)
        assert code == 4404
    async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=auth) as ws:
        code, texts = await expect_close(ws)  # no hello within the (test's) 0.5 s
        assert code == 1008
        assert "no hello" in texts[0]
    for hello in ('{"expires_at": "soon"}', "[]", '{"expires_at": NaN}'):
        async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=auth) as ws:
            await ws.send_str(hello)
            code, _ = await expect_close(ws)
            assert code == 1002, hello
    async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=auth) as ws:
        await ws.send_str('{"expires_at": 1}')  # in the past: final, not a bad hello
        code, texts = await expect_close(ws)
        assert code == 4404
        assert "room expired" in texts[0]
    async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=auth) as ws:
        await ws.send_str(json.dumps({"expires_at": time.time() + 10 * 86400}))
        ready = json.loads(await ws.receive_str(timeout=5))
        assert ready["type"] == "ready"
        assert ready["expires_at"] <= time.time() + 24 * 3600 + 1  # clamped to 24 h
        await ws.send_bytes(b"\x01short")  # shorter than the 9-byte header
        code, _ = await expect_close(ws)
        assert code == 1002
    assert room not in server.registry


async def test_owner_frames_for_unknown_guests_are_dropped_bad_ones_close(
    server: SignalingServer, http: aiohttp.ClientSession
) -> None:
    room = new_room_id()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=auth) as ws:
        await ws.send_str(json.dumps({"expires_at": time.time() + 60}))
        await ws.receive_str(timeout=5)
        async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest_ws:
            await guest_ws.send_bytes(b"\x02blob")
            opened = await ws.receive_bytes(timeout=5)
            assert opened[0] == 0x10
            raw_id = opened[1:9]
            assert opened[9:] == b"127.0.0.1"
            assert (await ws.receive_bytes(timeout=5)) == b"\x02" + raw_id + b"blob"
            await ws.send_bytes(b"\x02" + os.urandom(8) + b"nobody")  # dropped
            await ws.send_bytes(b"\x01" + raw_id + b"for you")
            assert (await guest_ws.receive_bytes(timeout=5)) == b"\x01for you"
            await ws.send_bytes(b"\x12" + raw_id + struct.pack(">H", 4001) + b"done")
            code, _ = await expect_close(guest_ws)
            assert code == 4001
        assert (await ws.receive_bytes(timeout=5)) == b"\x11" + raw_id
        await ws.send_bytes(b"\x12" + raw_id + struct.pack(">H", 1006))  # reserved code
        code, _ = await expect_close(ws)
        assert code == 1002


async def test_an_owner_frame_too_big_for_a_guest_closes_the_owner_in_one_line(
    server: SignalingServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The owner socket takes a guest id more than a guest message: a frame whose guest
    message is one byte over the bound is refused (1009), not a traceback."""
    room = new_room_id()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=auth) as ws:
        await ws.send_str(json.dumps({"expires_at": time.time() + 60}))
        await ws.receive_str(timeout=5)
        async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest_ws:
            await guest_ws.send_bytes(b"\x02hi")
            raw_id = (await ws.receive_bytes(timeout=5))[1:9]
            await ws.receive_bytes(timeout=5)
            too_big = b"\x02" * (relay_of(server.app).limits.max_msg_size + 1)
            await ws.send_bytes(too_big[:1] + raw_id + too_big[1:])
            code, _ = await expect_close(ws)
            assert code == 1009
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_signal_server_command_serves_https_and_warns_on_plain_http(tmp_path: Path) -> None:
    def run(*args: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling.cli", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening on" in line, line
            if "--insecure-http" not in args:
                line += proc.stdout.readline()
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        return line + out + err

    text = run("--data-dir", str(tmp_path))
    assert "https://127.0.0.1:" in text
    assert "certificate SHA-256 fingerprint: " in text
    assert ((tmp_path / "signaling-key.pem").stat().st_mode & 0o777) == 0o600
    text = run("--insecure-http")
    assert "http://127.0.0.1:" in text
    assert "WARNING: plain HTTP: this server must sit behind a TLS-terminating proxy" in text
    bad = subprocess.run(
        [sys.executable, "-m", "signaling.cli", "--cert", "x.pem"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "--cert and --key go together" in bad.stderr
