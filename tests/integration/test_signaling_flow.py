"""The server's side of file flow control (docs/guest-protocol.md "Standalone"): an
owner whose hello says ``"flow": 1`` hears, per guest, how many bytes of FILE messages
were written to that guest's socket (0x13 GUEST_DRAINED); an owner that does not ask
(an older node) gets exactly today's frames. Raw sockets on an in-process server."""

from __future__ import annotations

import json
import struct
import time

import aiohttp
import pytest

from signaling.server import SignalingServer
from tests.integration.conftest import StartStandalone
from tests.integration.signaling_fakes import new_room_id, ws_url

TOKEN = "owner-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def server(start_standalone: StartStandalone) -> SignalingServer:
    return await start_standalone(owner_token=TOKEN)


@pytest.mark.parametrize("flow", [True, False], ids=["flow-owner", "older-owner"])
async def test_the_owner_hears_what_reached_the_guest_only_when_it_asked(
    server: SignalingServer, http: aiohttp.ClientSession, flow: bool
) -> None:
    room = new_room_id()
    hello: dict[str, object] = {"expires_at": time.time() + 60}
    if flow:
        hello["flow"] = 1
    async with http.ws_connect(ws_url(server, f"/owner/{room}"), headers=AUTH) as owner:
        await owner.send_str(json.dumps(hello))
        ready = json.loads(await owner.receive_str(timeout=5))
        assert ready["type"] == "ready"
        assert ready.get("flow") is (True if flow else None)
        async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest:
            await guest.send_bytes(b"\x01offer")
            opened = await owner.receive_bytes(timeout=5)
            assert opened[0] == 0x10
            guest_id = opened[1:9]
            assert await owner.receive_bytes(timeout=5) == b"\x01" + guest_id + b"offer"

            sent = 0
            for size in (100, 70_000, 3):
                await owner.send_bytes(b"\x03" + guest_id + bytes(size))
                assert await guest.receive_bytes(timeout=5) == b"\x03" + bytes(size)
                sent += 1 + size
                await owner.send_bytes(b"\x02" + guest_id + b"chat")  # never counted
                assert await guest.receive_bytes(timeout=5) == b"\x02chat"
                # The guest answers after it got both: a report was queued before it.
                await guest.send_bytes(b"\x02got it")
                if flow:
                    drained = await owner.receive_bytes(timeout=5)
                    assert drained == b"\x13" + guest_id + struct.pack(">Q", sent)
                assert await owner.receive_bytes(timeout=5) == b"\x02" + guest_id + b"got it"
