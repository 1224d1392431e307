"""Fakes shared by the signaling tests: the node's side of the relay."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from signaling.app import GuestConnection


def new_room_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


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
