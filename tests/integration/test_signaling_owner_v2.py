"""Owner hello v2 on one in-process server (no Redis): the claim token re-claims a room
from a new connection, shutdown says 1012, and the ICE hook reaches owners, guests and
the page."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from signaling.app import Limits, relay_of
from signaling.owner_client import OwnerClient
from signaling.room_store import Claim, MemoryRoomStore
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
from tests.integration.conftest import StartStandalone
from tests.integration.signaling_fakes import (
    FakeOwner,
    claim_token,
    close_of,
    new_room_id,
    until_not_valid,
    ws_url,
)


class FakeIce:
    """An IceSource whose offers live ``ttl`` seconds; counts what it minted."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.minted: list[str] = []

    def for_room(self, room_id: str, now: float) -> dict[str, object] | None:
        self.minted.append(room_id)
        return {
            "ice_servers": [{"urls": ["stun:192.0.2.1:3478"]}],
            "policy": "all",
            "expires_at": now + self.ttl,
            "n": len(self.minted),
        }


async def owner_hello(
    http: aiohttp.ClientSession, server: SignalingServer, room: str, hello: dict[str, object]
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, object]]:
    ws = await http.ws_connect(ws_url(server, f"/owner/{room}"))
    await ws.send_str(json.dumps(hello))
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return ws, json.loads(msg.data)


async def test_the_same_claim_token_reclaims_and_the_old_connection_goes(
    start_standalone: StartStandalone, http: aiohttp.ClientSession
) -> None:
    server = await start_standalone()
    room, claim = new_room_id(), claim_token()
    expires = time.time() + 600
    first, ready = await owner_hello(http, server, room, {"expires_at": expires, "claim": claim})
    assert ready["type"] == "ready"
    assert ready["reclaimed"] is False
    guest = await http.ws_connect(ws_url(server, f"/ws/{room}"))
    await guest.send_bytes(b"\x01hi")
    assert (await first.receive_bytes(timeout=5))[0] == 0x10  # GUEST_OPENED

    for hello in ({"expires_at": expires, "claim": claim_token()}, {"expires_at": expires}):
        rival, refused = await owner_hello(http, server, room, hello)
        assert refused["type"] == "error"
        assert await close_of(rival) == 4409
    bad, refused = await owner_hello(http, server, room, {"expires_at": expires, "claim": "x"})
    assert await close_of(bad) == 1002

    second, ready = await owner_hello(http, server, room, {"expires_at": expires, "claim": claim})
    assert ready["reclaimed"] is True
    assert ready["expires_at"] == pytest.approx(expires)
    assert await close_of(first) == 4409
    assert await close_of(guest) == 1012  # reconnect at once, to the new connection
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as again:
        await again.send_bytes(b"\x01back")
        assert (await second.receive_bytes(timeout=5))[0] == 0x10
        data = await second.receive_bytes(timeout=5)
        assert data[:1] + data[9:] == b"\x01back"
    await second.close()  # a clean goodbye: the room goes
    await until_not_valid(http, ws_url(server, f"/ws/{room}"))


async def test_a_dropped_owner_keeps_its_room_for_its_own_re_claim_without_redis(
    start_standalone: StartStandalone, http: aiohttp.ClientSession
) -> None:
    """Not a clean goodbye (a network blip): guests hear "reconnecting" (1013), not
    "link not valid"; another claim token cannot take the room; the same one can."""
    server = await start_standalone()
    room, claim = new_room_id(), claim_token()
    expires = time.time() + 600
    first, _ = await owner_hello(http, server, room, {"expires_at": expires, "claim": claim})
    await first.close(code=1001)  # going away, not goodbye
    guest = await http.ws_connect(ws_url(server, f"/ws/{room}"))
    assert await close_of(guest) == 1013
    rival, refused = await owner_hello(
        http, server, room, {"expires_at": expires, "claim": claim_token()}
    )
    assert refused["type"] == "error"
    assert await close_of(rival) == 4409
    back, ready = await owner_hello(http, server, room, {"expires_at": expires, "claim": claim})
    assert ready["type"] == "ready"
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as again:
        await again.send_bytes(b"\x01back")
        assert (await back.receive_bytes(timeout=5))[0] == 0x10  # GUEST_OPENED
    await back.close()


async def test_shutdown_tells_owners_and_guests_to_reconnect_at_once(
    start_standalone: StartStandalone, http: aiohttp.ClientSession
) -> None:
    server = await start_standalone()
    room = new_room_id()
    owner, _ = await owner_hello(
        http, server, room, {"expires_at": time.time() + 600, "claim": claim_token()}
    )
    guest = await http.ws_connect(ws_url(server, f"/ws/{room}"))
    await guest.send_bytes(b"\x01hi")
    await owner.receive_bytes(timeout=5)
    await server.async_stop()
    assert await close_of(owner) == 1012
    assert await close_of(guest) == 1012


async def check_without_ice(
    start_standalone: StartStandalone, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Without an IceSource nothing changes for pages, owners or guests."""
    static = tmp_path / "lan-static"
    static.mkdir()
    page_bytes = b'<head><meta name="p2pchat-ice" content="lan"></head>'
    (static / "index.html").write_bytes(page_bytes)
    server = await start_standalone(static_dir=static)
    room = new_room_id()
    owner, ready = await owner_hello(http, server, room, {"expires_at": time.time() + 600})
    assert "ice" not in ready
    async with http.get(f"{server.base_url}/c/{room}") as page:
        assert await page.read() == page_bytes
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest:
        await guest.send_bytes(b"\x01offer")
        data = await owner.receive_bytes(timeout=5)
        assert data[0] == 0x10  # the owner hears of the guest; the guest got no notice
        with pytest.raises(TimeoutError):
            await guest.receive(timeout=0.2)
    await owner.close()


async def test_ice_reaches_the_owner_every_half_lifetime_and_each_guest_first(
    start_standalone: StartStandalone, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await check_without_ice(start_standalone, http, tmp_path)
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_bytes(
        b'<head><meta name="p2pchat-ice" content="lan"></head><body>page</body>'
    )
    ice = FakeIce(ttl=1.0)
    server = await start_standalone(ice=ice, static_dir=static)
    room = new_room_id()
    owner, ready = await owner_hello(
        http, server, room, {"expires_at": time.time() + 600, "claim": claim_token()}
    )
    offer = ready["ice"]
    assert isinstance(offer, dict)
    assert offer["ice_servers"] == [{"urls": ["stun:192.0.2.1:3478"]}]
    pushed = json.loads(await owner.receive_str(timeout=10))  # a fresh one before expiry
    assert pushed["type"] == "ice"
    assert pushed["n"] > offer["n"]

    async with http.get(f"{server.base_url}/c/{room}") as page:
        body = await page.read()
    assert body == b'<head><meta name="p2pchat-ice" content="server"></head><body>page</body>'
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest:
        first = await guest.receive(timeout=5)
        assert first.type is aiohttp.WSMsgType.TEXT
        assert json.loads(first.data)["type"] == "ice"
    await owner.close()


async def test_a_page_without_the_meta_line_is_served_as_it_is(
    start_standalone: StartStandalone, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_bytes(b"<p>old page</p>")
    server = await start_standalone(ice=FakeIce(ttl=600.0), static_dir=static)
    room = new_room_id()
    owner, _ = await owner_hello(http, server, room, {"expires_at": time.time() + 600})
    async with http.get(f"{server.base_url}/c/{room}") as page:
        assert await page.read() == b"<p>old page</p>"
    await owner.close()


class _SpyStore(MemoryRoomStore):
    """Records which connections the app let go of (forget or release)."""

    def __init__(self, registry: RoomRegistry) -> None:
        super().__init__(registry)
        self.let_go: list[str] = []

    async def forget(self, room_id: str, *, conn: str) -> None:
        self.let_go.append(conn)
        await super().forget(room_id, conn=conn)

    async def release(self, room_id: str, *, conn: str) -> bool:
        self.let_go.append(conn)
        return await super().release(room_id, conn=conn)


async def test_a_socket_closed_before_its_hello_never_held_the_room(
    start_standalone: StartStandalone, http: aiohttp.ClientSession
) -> None:
    """It must not run the owner loop nor let go of a room it never claimed."""
    store = _SpyStore(RoomRegistry())
    server = await start_standalone(store=store)
    relay = relay_of(server.app)
    room, claim = new_room_id(), claim_token()
    owner, _ = await owner_hello(
        http, server, room, {"expires_at": time.time() + 600, "claim": claim}
    )
    for code in (1000, 1001):
        silent = await http.ws_connect(ws_url(server, f"/owner/{room}"))
        await silent.close(code=code)
        async with asyncio.timeout(10):
            while relay._owner_sockets > 1:  # noqa: ASYNC110 - its handler has ended
                await asyncio.sleep(0.01)
    assert store.let_go == []
    async with http.ws_connect(ws_url(server, f"/ws/{room}")) as guest:
        await guest.send_bytes(b"\x01hi")
        assert (await owner.receive_bytes(timeout=5))[0] == 0x10  # GUEST_OPENED
    await owner.close()
    await until_not_valid(http, ws_url(server, f"/ws/{room}"))
    assert len(store.let_go) == 1  # the owner's own goodbye


async def test_a_hello_for_an_expired_room_is_refused_as_expired(
    start_standalone: StartStandalone, http: aiohttp.ClientSession
) -> None:
    """Final (4404 "room expired"), not a bad hello (1002) that the owner would retry."""
    server = await start_standalone()
    hello = {"expires_at": time.time() - 1, "claim": claim_token()}
    ws, refused = await owner_hello(http, server, new_room_id(), hello)
    assert refused == {"type": "error", "message": "room expired"}
    assert await close_of(ws) == 4404


class _ClaimSpy(MemoryRoomStore):
    """Records the expiry of every claim the app asks for."""

    def __init__(self, registry: RoomRegistry) -> None:
        super().__init__(registry)
        self.asked: list[float] = []
        self.claimed = asyncio.Event()

    async def claim(
        self, room_id: str, *, conn: str, claim_hash: str, expires_at: float, now: float
    ) -> Claim:
        self.asked.append(expires_at)
        self.claimed.set()
        return await super().claim(
            room_id, conn=conn, claim_hash=claim_hash, expires_at=expires_at, now=now
        )


async def test_an_owner_keeps_the_expiry_the_server_granted(
    start_standalone: StartStandalone,
) -> None:
    """The server caps a room's life; a re-claim asks for no more than was granted
    (else, once the granted expiry has passed, it would be refused)."""
    store = _ClaimSpy(RoomRegistry())
    server = await start_standalone(store=store, limits=Limits(max_room_lifetime=60.0))
    owner = OwnerClient(server.base_url, FakeOwner())
    room = new_room_id()
    try:
        granted = await owner.async_open_room(room, expires_at=time.time() + 600)
        assert granted < time.time() + 600
        store.claimed.clear()
        relay = relay_of(server.app)
        await relay.owners[room].ws.close(code=1001)  # a blip: the owner re-claims
        async with asyncio.timeout(10):
            await store.claimed.wait()
        assert store.asked[-1] == granted  # exact: JSON round-trips a float
    finally:
        await owner.async_close()
