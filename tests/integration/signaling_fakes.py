"""Fakes and small helpers shared by the signaling tests: the node's side of the relay,
room ids and claim tokens, how a WebSocket closed."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from signaling.app import CLOSE_LINK_NOT_VALID, GuestConnection


def new_room_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


class HasBaseUrl(Protocol):
    @property
    def base_url(self) -> str: ...


def ws_url(server: HasBaseUrl, path: str) -> str:
    """The ``ws(s)://`` URL of ``path`` on a server (or a cluster instance)."""
    return server.base_url.replace("http", "ws", 1) + path


def claim_token() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


async def close_of(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the close; its code."""
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data)
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return ws.close_code


async def until_not_valid(http: aiohttp.ClientSession, url: str) -> None:
    """A room whose owner said goodbye is soon "not valid" (4404) everywhere; a moment
    before, a guest may still be told to retry (1013) or see the owner leave (1001)."""
    for _ in range(50):
        async with http.ws_connect(url) as ws:
            code = await close_of(ws)
        if code == CLOSE_LINK_NOT_VALID:
            return
        assert code in (1001, 1013), code
        await asyncio.sleep(0.1)
    raise AssertionError("the room never went")


@dataclass
class FakeOwner:
    """Records what the server hands the owner (the node's side); echoes when asked to."""

    echo: bool = False
    messages: list[tuple[str, GuestConnection, bytes]] = field(default_factory=list)
    closed: list[tuple[str, GuestConnection]] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_guest_message(self, room_id: str, guest: GuestConnection, data: bytes) -> None:
        self.messages.append((room_id, guest, data))
        self.event.set()
        if self.echo:
            guest.send(data)

    def on_guest_closed(self, room_id: str, guest: GuestConnection) -> None:
        self.closed.append((room_id, guest))
        self.event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.event.clear()
                await self.event.wait()
