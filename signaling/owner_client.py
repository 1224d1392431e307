"""The owner's side of a standalone signaling server (``p2pchat signal-server``).

One owner WebSocket per room (``/owner/{room_id}``, framing in :mod:`signaling.app`).
Guests reach the node's :class:`~signaling.app.OwnerHooks` exactly as with the embedded
server: ``on_guest_message(room_id, guest, data)`` with the whole guest message (type
byte first), ``on_guest_closed(room_id, guest)``, and ``guest.send`` / ``guest.close``.
So the node code is the same whether its server is embedded or remote.

Everything the server sends is bounded here too: frame sizes (``max_msg_size``), the
number of guests tracked per room, the outgoing queue per room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import ssl
import struct
from dataclasses import dataclass, field

import aiohttp

from signaling.app import (
    GUEST_TYPES,
    OWNER_CLOSE_GUEST,
    OWNER_GUEST_CLOSED,
    OWNER_GUEST_OPENED,
    OWNER_HEADER_BYTES,
    Limits,
    OwnerHooks,
    aiohttp_max_msg_size,
)
from signaling.bounds import Outbox
from signaling.rooms import is_valid_room_id

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


class OwnerClientError(Exception):
    """The server refused the room, or could not be reached (one line, for the user)."""


class RemoteGuest:
    """A guest of a remote server: the :class:`~signaling.app.GuestConnection`."""

    __slots__ = ("_closed", "_max_msg", "_room", "id", "raw_id", "remote")

    def __init__(self, room: _RoomSocket, raw_id: bytes, remote: str, max_msg: int) -> None:
        self._room = room
        self.raw_id = raw_id
        self.id = raw_id.hex()
        self.remote = remote
        self._max_msg = max_msg
        self._closed = False

    def send(self, data: bytes) -> None:
        if not data or len(data) > self._max_msg:
            raise ValueError(f"a guest message is 1 to {self._max_msg} bytes, not {len(data)}")
        if data[0] not in GUEST_TYPES:
            raise ValueError(f"unknown guest message type {data[0]:#04x}")
        if self._closed:
            return
        if not self._room.outbox.push(data[:1] + self.raw_id + data[1:]):
            logger.info("guest %s: the server is too far behind, closing the guest", self.id)
            self.close(1013, "too far behind: reconnect")

    async def async_wait_queue_below(self, limit: int) -> None:
        # One queue towards the server for all guests of the room: it is what fills up.
        await self._room.outbox.async_wait_below(limit)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        frame = (
            bytes([OWNER_CLOSE_GUEST])
            + self.raw_id
            + struct.pack(">H", code)
            + reason.encode()[:123]
        )
        self._room.outbox.push(frame, force=True)

    def mark_closed(self) -> None:
        """The server says this guest has gone: later sends are dropped."""
        self._closed = True

    def __repr__(self) -> str:
        return f"<remote guest {self.id} from {self.remote}>"


@dataclass
class _RoomSocket:
    room_id: str
    ws: aiohttp.ClientWebSocketResponse
    outbox: Outbox
    expires_at: float
    guests: dict[bytes, RemoteGuest] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)  # guests handed to the hooks
    reader: asyncio.Task[None] | None = None


class OwnerClient:
    """Claims rooms on a standalone server and relays its guests to ``hooks``.

    ``base_url``: ``https://host:port`` of the server. ``ssl``: an
    :class:`ssl.SSLContext` (e.g. trusting the server's self-signed certificate),
    ``True`` for the system's trust store, ``False`` only for tests.
    """

    def __init__(
        self,
        base_url: str,
        hooks: OwnerHooks,
        *,
        ssl: ssl.SSLContext | bool = True,
        owner_token: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._base = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
        self._hooks = hooks
        self._ssl = ssl
        self._token = owner_token
        self._limits = limits or Limits()
        self._session: aiohttp.ClientSession | None = None
        self._rooms: dict[str, _RoomSocket] = {}

    @property
    def rooms(self) -> dict[str, float]:
        """Room id → expiry, for the rooms claimed now."""
        return {room_id: room.expires_at for room_id, room in self._rooms.items()}

    async def async_open_room(self, room_id: str, *, expires_at: float) -> float:
        """Claim ``room_id`` until ``expires_at`` (wall-clock seconds); the expiry the
        server granted (it may clamp it). :class:`OwnerClientError` if refused."""
        if not is_valid_room_id(room_id):
            raise ValueError("room id must be 22 characters of canonical base64url")
        if room_id in self._rooms:
            raise ValueError("this room is open already")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        limits = self._limits
        try:
            ws = await self._session.ws_connect(
                f"{self._base}/owner/{room_id}",
                ssl=self._ssl,
                headers=headers,
                max_msg_size=aiohttp_max_msg_size(limits.max_msg_size + OWNER_HEADER_BYTES),
                compress=0,
                heartbeat=limits.heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT),
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise OwnerClientError(f"the server refused the room ({exc.status})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise OwnerClientError(f"cannot reach the signaling server: {exc}") from exc
        try:
            await ws.send_str(json.dumps({"expires_at": expires_at}))
            granted = await self._await_ready(ws)
        except BaseException:
            await ws.close()
            raise
        room = _RoomSocket(
            room_id,
            ws,
            Outbox(ws, limits.owner_queue_bytes, limits.owner_queue_messages),
            granted,
        )
        self._rooms[room_id] = room
        room.reader = asyncio.get_running_loop().create_task(self._read(room))
        return granted

    async def async_mark_used_up(self, room_id: str) -> None:
        """No new guests (connected ones stay): the invite is used up."""
        self._room_text(room_id, {"room": "used-up"})

    async def async_revoke(self, room_id: str) -> None:
        """No new guests (connected ones stay): the invite is revoked."""
        self._room_text(room_id, {"room": "revoked"})

    async def async_leave_room(self, room_id: str) -> None:
        """Give the room up: the server forgets it and closes its guests."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        await room.ws.close()
        if room.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await room.reader

    async def async_close(self) -> None:
        for room_id in list(self._rooms):
            await self.async_leave_room(room_id)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- private ---

    async def _await_ready(self, ws: aiohttp.ClientWebSocketResponse) -> float:
        msg = await ws.receive(timeout=CONNECT_TIMEOUT)
        if msg.type is aiohttp.WSMsgType.TEXT:
            reply = _json_object(msg.data)
            expires_at = reply.get("expires_at") if reply else None
            if (
                reply is not None
                and reply.get("type") == "ready"
                and isinstance(expires_at, int | float)
                and math.isfinite(expires_at)
            ):
                return float(expires_at)
            message = reply.get("message") if reply else None
            if reply is not None and reply.get("type") == "error" and isinstance(message, str):
                await ws.receive(timeout=CONNECT_TIMEOUT)  # the close, for its code
                raise OwnerClientError(
                    f"the server refused the room ({ws.close_code}): {message[:200]}"
                )
        raise OwnerClientError(f"the server refused the room ({ws.close_code})")

    def _room_text(self, room_id: str, command: dict[str, str]) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            raise ValueError("this room is not open")
        room.outbox.push(json.dumps(command), force=True)

    async def _read(self, room: _RoomSocket) -> None:
        try:
            async for msg in room.ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    if not self._handle_frame(room, msg.data):
                        await room.ws.close(code=1002, message=b"bad frame from the server")
                        break
                elif msg.type is aiohttp.WSMsgType.TEXT:
                    reply = _json_object(msg.data)
                    logger.info("server says about room %s…: %s", room.room_id[:4], reply)
                else:
                    break
        finally:
            room.outbox.cancel()
            self._rooms.pop(room.room_id, None)
            for raw_id in list(room.seen):
                self._closed(room, raw_id)
            room.guests.clear()
            logger.info("room %s… closed by the server (%s)", room.room_id[:4], room.ws.close_code)

    def _handle_frame(self, room: _RoomSocket, data: bytes) -> bool:
        """Dispatch one frame from the server; False if it is malformed."""
        if len(data) < OWNER_HEADER_BYTES:
            return False
        kind, raw_id, rest = data[0], data[1:OWNER_HEADER_BYTES], data[OWNER_HEADER_BYTES:]
        if kind == OWNER_GUEST_OPENED:
            if raw_id in room.guests or len(room.guests) >= self._limits.max_guests_per_owner:
                return raw_id in room.guests
            remote = rest[:64].decode("utf-8", "replace")
            room.guests[raw_id] = RemoteGuest(room, raw_id, remote, self._limits.max_msg_size)
            return True
        if kind == OWNER_GUEST_CLOSED:
            self._closed(room, raw_id)
            room.guests.pop(raw_id, None)
            return True
        if kind in GUEST_TYPES and rest:
            guest = room.guests.get(raw_id)
            if guest is None:  # over our bound of guests, or the server's bug: drop it
                return True
            room.seen.add(raw_id)
            try:
                self._hooks.on_guest_message(room.room_id, guest, data[:1] + rest)
            except Exception as exc:
                logger.error("owner hook on_guest_message failed: %s", type(exc).__name__)
                guest.close(1011, "internal error")
            return True
        return False

    def _closed(self, room: _RoomSocket, raw_id: bytes) -> None:
        guest = room.guests.get(raw_id)
        if raw_id in room.seen and guest is not None:
            room.seen.discard(raw_id)
            guest.mark_closed()
            try:
                self._hooks.on_guest_closed(room.room_id, guest)
            except Exception:
                logger.exception("owner hook on_guest_closed failed")


def _json_object(text: str) -> dict[str, object] | None:
    if len(text) > 4096:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # "[" * 1000 is short enough
        return None
    return value if isinstance(value, dict) else None
