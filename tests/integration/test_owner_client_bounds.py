"""The owner client's bound of guests a room, against a scripted server.

A server may hold more guest sockets of a room than the owner tracks (``--guests-per-room``
up to 1024, the owner's ``Limits.max_guests_per_owner`` 64): the guest over the bound is
refused on its own (CLOSE_GUEST 4429), and the room's connection stays up. It once
took that GUEST_OPENED for a bad frame and closed the room (1002), dropping every guest.
"""

from __future__ import annotations

import os
import struct
import time

from aiohttp import web

from signaling.app import OWNER_CLOSE_GUEST, OWNER_GUEST_OPENED, Limits
from tests.integration.signaling_fakes import FakeOwner, new_room_id
from tests.integration.test_remote_owner import ScriptedServer, async_until, ready

SIGNAL = 0x01


async def test_a_guest_over_the_owners_bound_is_refused_and_the_room_stays() -> None:
    from signaling.owner_client import OwnerClient

    bound = Limits().max_guests_per_owner
    ids = [os.urandom(8) for _ in range(bound + 3)]
    closes: list[tuple[bytes, int, str]] = []
    ended: list[int | None] = []

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_str(ready())
        for raw_id in ids:
            await ws.send_bytes(bytes([OWNER_GUEST_OPENED]) + raw_id + b"192.0.2.7")
            await ws.send_bytes(bytes([SIGNAL]) + raw_id + b"offer")
        async for msg in ws:
            data = msg.data
            if isinstance(data, bytes) and data[:1] == bytes([OWNER_CLOSE_GUEST]):
                (code,) = struct.unpack(">H", data[9:11])
                closes.append((data[1:9], code, data[11:].decode()))
        ended.append(ws.close_code)

    scripted = ScriptedServer([script])
    runner = web.AppRunner(scripted.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    statuses: list[str] = []
    owner = FakeOwner()
    client = OwnerClient(
        f"http://127.0.0.1:{port}", owner, ssl=False, on_status=lambda s, _d: statuses.append(s)
    )
    try:
        await client.async_open_room(
            new_room_id(), expires_at=time.time() + 600, claim=os.urandom(32)
        )
        await async_until(
            lambda: bool(ended) or (len(closes) >= 3 and len(owner.messages) >= bound)
        )
        # The first `bound` guests reach the owner; the rest are refused, one by one.
        assert [m[2] for m in owner.messages] == [bytes([SIGNAL]) + b"offer"] * bound
        assert sorted(c[0] for c in closes) == sorted(ids[bound:])
        assert {(c[1], c[2]) for c in closes} == {
            (4429, "too many guests in this room: try again later")
        }
        assert ended == [], ended  # the room's connection is still up
        assert statuses == ["connecting", "connected"], statuses
        assert len(scripted.hellos) == 1
    finally:
        await client.async_close()
        await runner.cleanup()
