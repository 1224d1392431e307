"""The owner's side of a standalone signaling server (``p2pchat signal-server``).

One owner WebSocket per room (``/owner/{room_id}``, framing in :mod:`signaling.app`).
Guests reach the node's :class:`~signaling.app.OwnerHooks` exactly as with the embedded
server: ``on_guest_message(room_id, guest, data)`` with the whole guest message (type
byte first), ``on_guest_closed(room_id, guest)``, and ``guest.send`` / ``guest.close``.
So the node code is the same whether its server is embedded or remote.

Each room's hello carries a random 32-byte claim token; a lost socket is claimed again
with it by itself (:class:`Backoff`), until the room expires or the server refuses it
for good (4409, 4404, 401). ICE offers from ``ready`` and later ``{"type": "ice"}``
texts are kept per room (:meth:`OwnerClient.ice_for`).

Everything the server sends is bounded here too: frame sizes (``max_msg_size``), the
number of guests tracked per room, the outgoing queue per room.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import ssl
import ssl as _ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from signaling.app import (
    GUEST_TYPES,
    OWNER_CLOSE_GUEST,
    OWNER_GUEST_CLOSED,
    OWNER_GUEST_DRAINED,
    OWNER_GUEST_OPENED,
    OWNER_HEADER_BYTES,
    TYPE_FILE,
    Limits,
    OwnerHooks,
    aiohttp_max_msg_size,
)
from signaling.bounds import Outbox
from signaling.rooms import is_valid_room_id

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
CLAIM_BYTES = 32
# Reconnect back-off (seconds), each step ±20 % jitter; back to the first step once a
# connection lasted STABLE_AFTER_S (a server that drops us at once is not hammered).
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0)
JITTER = 0.2
STABLE_AFTER_S = 30.0
# Closes after which trying again cannot help: the room is someone else's (4409) or
# not valid here (4404). A bad owner token is a 401 before the upgrade.
REFUSED_CLOSES = frozenset({4404, 4409})
# An expired room whose guests are still connected (the relay path) is given up
# when the last one has gone: checked this often.
EXPIRED_CHECK_S = 5.0
MAX_ICE_TEXT = 4096  # the bound of _json_object
# A guest over Limits.max_guests_per_owner: refused, the room and its guests stay.
CLOSE_TOO_MANY_GUESTS = 4429
REASON_TOO_MANY_GUESTS = "too many guests in this room: try again later"


class OwnerClientError(Exception):
    """The server refused the room, or could not be reached (one line, for the user).

    ``kind``: "unreachable" (network, timeout), "tls" (certificate not trusted),
    "token" (401/403 before the upgrade), "refused" (a close that retrying cannot
    help), "busy" (a close worth retrying: 1008, 1012, 1013...)."""

    def __init__(self, message: str, *, kind: str = "refused") -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def final(self) -> bool:
        """Trying again cannot help (a reconnect loop stops: state ``refused``)."""
        return self.kind in ("token", "refused")


StatusCallback = Callable[[str, str], None]  # (state, detail)


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """The wait before reconnect ``attempt`` (0 = the first after a loss)."""
    base = BACKOFF_S[min(max(attempt, 0), len(BACKOFF_S) - 1)]
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


class Backoff:
    """Reconnect waits: one step further per failure, reset after a stable connection."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.SystemRandom()
        self._attempt = 0
        self._connected_at: float | None = None

    def connected(self, now: float) -> None:
        self._connected_at = now

    def next_delay(self, now: float) -> float:
        if self._connected_at is not None and now - self._connected_at >= STABLE_AFTER_S:
            self._attempt = 0
        self._connected_at = None
        delay = backoff_delay(self._attempt, self._rng)
        self._attempt += 1
        return delay


class RemoteGuest:
    """A guest of a remote server: the :class:`~signaling.app.GuestConnection`.

    With a server that does flow control (its ready said ``"flow": true``), the FILE
    bytes sent to this guest and not yet written to its socket over there count as
    queued too: they are what fills the server's queue towards a slow guest."""

    __slots__ = (
        "_closed",
        "_drained",
        "_file_sent",
        "_file_written",
        "_max_msg",
        "_room",
        "id",
        "raw_id",
        "remote",
    )

    def __init__(self, room: _RoomSocket, raw_id: bytes, remote: str, max_msg: int) -> None:
        self._room = room
        self.raw_id = raw_id
        self.id = raw_id.hex()
        self.remote = remote
        self._max_msg = max_msg
        self._closed = False
        self._file_sent = 0  # FILE message bytes handed to send()
        self._file_written = 0  # ...that the server wrote to the guest's socket
        self._drained = asyncio.Event()

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
        elif data[0] == TYPE_FILE:
            self._file_sent += len(data)

    @property
    def file_in_flight(self) -> int:
        """FILE bytes sent to this guest that the server has not yet written to it."""
        return self._file_sent - self._file_written if self._room.flow else 0

    async def async_wait_queue_below(self, limit: int) -> None:
        # One queue towards the server for all guests of the room, and (flow control)
        # what the server holds for this guest: both must be below ``limit``.
        while True:
            await self._room.outbox.async_wait_below(limit)
            if self._closed or self.file_in_flight <= limit:
                return
            self._drained.clear()
            await self._drained.wait()

    def drained(self, total: int) -> None:
        """The server wrote ``total`` FILE bytes to this guest's socket so far."""
        if total > self._file_written:
            self._file_written = min(total, self._file_sent)  # a server's bug: no credit
            self._drained.set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self.mark_closed()
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
        self._drained.set()  # nobody waits for a guest that has gone

    def __repr__(self) -> str:
        return f"<remote guest {self.id} from {self.remote}>"


@dataclass
class _RoomSocket:
    room_id: str
    ws: aiohttp.ClientWebSocketResponse
    outbox: Outbox
    expires_at: float
    flow: bool = False  # the server reports FILE bytes written to each guest
    guests: dict[bytes, RemoteGuest] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)  # guests handed to the hooks


@dataclass
class _Claim:
    """A room we hold, or want back after losing its socket."""

    room_id: str
    expires_at: float
    claim: bytes = field(repr=False)  # re-claims the room on any instance
    socket: _RoomSocket | None = None
    room_text: str | None = None  # the last {"room": ...} sent: sent again on reconnect
    ice: dict[str, object] | None = None  # the server's latest ICE offer for this room
    leaving: bool = False
    task: asyncio.Task[None] | None = None
    expiry: asyncio.Task[None] | None = None  # gives the room up once it has expired


class OwnerClient:
    """Claims rooms on a standalone server and relays its guests to ``hooks``.

    ``base_url``: ``https://host:port`` of the server. ``ssl``: an
    :class:`ssl.SSLContext` (e.g. trusting the server's self-signed certificate),
    ``True`` for the system's trust store (``SSL_CERT_FILE`` honoured), ``False`` only
    for tests. A room whose socket is lost is claimed again with the same claim token
    (back-off :data:`BACKOFF_S`) until it expires or the server refuses it for good;
    ``on_status(state, detail)`` hears connecting | connected | reconnecting | refused.
    """

    def __init__(
        self,
        base_url: str,
        hooks: OwnerHooks,
        *,
        ssl: ssl.SSLContext | bool = True,
        owner_token: str | None = None,
        limits: Limits | None = None,
        on_status: StatusCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._base = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
        self._hooks = hooks
        # aiohttp's own default context is made at import: make ours now, so that
        # SSL_CERT_FILE set before this client (tests, a private CA) is honoured.
        self._ssl: _ssl.SSLContext | bool = _ssl.create_default_context() if ssl is True else ssl
        self._token = owner_token
        self._limits = limits or Limits()
        self._on_status = on_status
        self._rng = rng or random.SystemRandom()
        self._session: aiohttp.ClientSession | None = None
        self._claims: dict[str, _Claim] = {}
        self.state = "connecting"
        self.detail = ""
        self.certificate_sha256 = ""  # the server's leaf certificate, as we saw it

    @property
    def rooms(self) -> dict[str, float]:
        """Room id → expiry, for the rooms claimed now."""
        return {
            room_id: claim.socket.expires_at
            for room_id, claim in self._claims.items()
            if claim.socket is not None
        }

    def ice_for(self, room_id: str) -> dict[str, object] | None:
        """The server's latest ICE offer for ``room_id`` (raw JSON object), if any."""
        claim = self._claims.get(room_id)
        return claim.ice if claim is not None else None

    async def async_open_room(
        self, room_id: str, *, expires_at: float, claim: bytes | None = None
    ) -> float:
        """Claim ``room_id`` until ``expires_at`` (wall-clock seconds); the expiry the
        server granted (it may clamp it). :class:`OwnerClientError` if refused: the
        first claim is never retried (the user is there to read why)."""
        if not is_valid_room_id(room_id):
            raise ValueError("room id must be 22 characters of canonical base64url")
        if room_id in self._claims:
            raise ValueError("this room is open already")
        if claim is not None and len(claim) != CLAIM_BYTES:
            raise ValueError(f"a claim token is {CLAIM_BYTES} bytes")
        held = _Claim(room_id, expires_at, claim or os.urandom(CLAIM_BYTES))
        first = not self._claims  # later rooms do not change how the server is doing
        if first:
            self._status("connecting", "")
        try:
            held.socket = await self._async_connect(held)
        except OwnerClientError as exc:
            if first:  # nothing is retried: the caller tells the user why
                self._status("refused", str(exc))
            raise
        self._claims[room_id] = held
        self._status("connected", "")
        loop = asyncio.get_running_loop()
        held.task = loop.create_task(self._keep(held))
        held.expiry = loop.create_task(self._give_up_when_expired(held))
        return held.socket.expires_at

    async def async_mark_used_up(self, room_id: str) -> None:
        """No new guests (connected ones stay): the invite is used up."""
        self.set_room_state(room_id, "used-up")

    async def async_revoke(self, room_id: str) -> None:
        """No new guests (connected ones stay): the invite is revoked."""
        self.set_room_state(room_id, "revoked")

    def set_room_state(self, room_id: str, state: str) -> None:
        """``{"room": state}`` now (if connected) and after every re-claim."""
        held = self._claims.get(room_id)
        if held is None:
            raise ValueError("this room is not open")
        held.room_text = json.dumps({"room": state})
        if held.socket is not None:
            held.socket.outbox.push(held.room_text, force=True)

    async def async_leave_room(self, room_id: str) -> None:
        """Give the room up: the server forgets it and closes its guests."""
        held = self._claims.get(room_id)
        if held is None:
            return
        held.leaving = True
        if held.expiry is not None and held.expiry is not asyncio.current_task():
            held.expiry.cancel()
        if held.socket is not None:
            await held.socket.ws.close()  # 1000: the server forgets the room
        if held.task is not None:
            held.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held.task
        self._claims.pop(room_id, None)

    async def async_close(self) -> None:
        for room_id in list(self._claims):
            await self.async_leave_room(room_id)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- private ---

    async def _async_connect(self, held: _Claim) -> _RoomSocket:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT)
            )
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        limits = self._limits
        try:
            ws = await self._session.ws_connect(
                f"{self._base}/owner/{held.room_id}",
                ssl=self._ssl,
                headers=headers,
                max_msg_size=aiohttp_max_msg_size(limits.max_msg_size + OWNER_HEADER_BYTES),
                compress=0,
                heartbeat=limits.heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT),
            )
        except aiohttp.WSServerHandshakeError as exc:
            kind = "token" if exc.status in (401, 403) else "busy"
            raise OwnerClientError(
                f"the server refused the room ({exc.status})", kind=kind
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise OwnerClientError(
                f"the server's certificate is not trusted: {exc.certificate_error}", kind="tls"
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise OwnerClientError(
                f"cannot reach the signaling server: {exc or type(exc).__name__}",
                kind="unreachable",
            ) from exc
        try:
            hello = {"expires_at": held.expires_at, "claim": _b64url(held.claim), "flow": 1}
            await ws.send_str(json.dumps(hello))
            granted, ice, flow = await self._await_ready(ws)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await ws.close()
            raise OwnerClientError(
                f"the connection to the signaling server broke: {exc or type(exc).__name__}",
                kind="unreachable",
            ) from exc
        except BaseException:
            await ws.close()
            raise
        # The server may grant less than asked (its 24 h cap): the room ends then, and
        # a re-claim asks for no more (a later one would be refused as expired).
        held.expires_at = min(held.expires_at, granted)
        self.certificate_sha256 = _peer_certificate_sha256(ws) or self.certificate_sha256
        if ice is not None:
            held.ice = ice
        room = _RoomSocket(
            held.room_id,
            ws,
            Outbox(ws, limits.owner_queue_bytes, limits.owner_queue_messages),
            granted,
            flow,
        )
        if held.room_text is not None:  # a new room on a restarted server: same state
            room.outbox.push(held.room_text, force=True)
        return room

    async def _await_ready(
        self, ws: aiohttp.ClientWebSocketResponse
    ) -> tuple[float, dict[str, object] | None, bool]:
        """(granted expiry, ICE offer, flow control); an old server says no flow."""
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
                ice = reply.get("ice")
                flow = reply.get("flow") is True
                return float(expires_at), ice if isinstance(ice, dict) else None, flow
            message = reply.get("message") if reply else None
            if reply is not None and reply.get("type") == "error" and isinstance(message, str):
                await ws.receive(timeout=CONNECT_TIMEOUT)  # the close, for its code
                raise OwnerClientError(
                    f"the server refused the room ({ws.close_code}): {message[:200]}",
                    kind=_close_kind(ws.close_code),
                )
        raise OwnerClientError(
            f"the server refused the room ({ws.close_code})", kind=_close_kind(ws.close_code)
        )

    async def _keep(self, held: _Claim) -> None:
        """Relay the room's socket; when it is lost, claim the room again."""
        backoff = Backoff(self._rng)
        backoff.connected(time.monotonic())
        try:
            while held.socket is not None:
                await self._read(held, held.socket)
                code = held.socket.ws.close_code
                held.socket = None
                if held.leaving or time.time() >= held.expires_at:
                    return
                if code in REFUSED_CLOSES:
                    self._status("refused", f"the server closed the room ({code})")
                    return
                why = f"the server closed the connection ({code})" if code else "connection lost"
                held.socket = await self._async_reclaim(held, backoff, why)
                if held.socket is not None:
                    backoff.connected(time.monotonic())
                    self._status("connected", "")
        finally:
            if not held.leaving:
                self._claims.pop(held.room_id, None)
                if held.expiry is not None:
                    held.expiry.cancel()

    async def _give_up_when_expired(self, held: _Claim) -> None:
        """An expired room takes nobody new: its socket would only hold one of the
        server's owner sockets per address. Guests still connected keep it open."""
        while True:
            socket = held.socket
            expires_at = min(held.expires_at, socket.expires_at) if socket else held.expires_at
            left = expires_at - time.time()
            if left <= 0 and (socket is None or not socket.guests):
                break
            await asyncio.sleep(left if left > 0 else EXPIRED_CHECK_S)
        logger.info("room %s… expired: giving it up", held.room_id[:4])
        await self.async_leave_room(held.room_id)

    async def _async_reclaim(self, held: _Claim, backoff: Backoff, why: str) -> _RoomSocket | None:
        while not held.leaving:
            delay = backoff.next_delay(time.monotonic())
            self._status("reconnecting", f"{why}: trying again in {delay:.1f} s")
            await asyncio.sleep(delay)
            if time.time() >= held.expires_at:
                return None
            try:
                return await self._async_connect(held)
            except OwnerClientError as exc:
                if exc.final:
                    self._status("refused", str(exc))
                    return None
                why = str(exc)
        return None

    def _status(self, state: str, detail: str) -> None:
        if (state, detail) == (self.state, self.detail) and state != "connecting":
            return
        self.state, self.detail = state, detail
        logger.info("signaling server %s: %s %s", self._base, state, detail)
        if self._on_status is not None:
            try:
                self._on_status(state, detail)
            except Exception:
                logger.exception("owner status callback failed")

    async def _read(self, held: _Claim, room: _RoomSocket) -> None:
        try:
            async for msg in room.ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    if not self._handle_frame(room, msg.data):
                        await room.ws.close(code=1002, message=b"bad frame from the server")
                        break
                elif msg.type is aiohttp.WSMsgType.TEXT:
                    reply = _json_object(msg.data)
                    if reply is not None and reply.get("type") == "ice":
                        held.ice = {k: v for k, v in reply.items() if k != "type"}
                    else:
                        logger.info("server says about room %s…: %.200r", room.room_id[:4], reply)
                else:
                    break
        finally:
            room.outbox.cancel()
            for raw_id in list(room.seen):
                self._closed(room, raw_id)
            for guest in room.guests.values():
                guest.mark_closed()
            room.guests.clear()
            logger.info("room %s… closed by the server (%s)", room.room_id[:4], room.ws.close_code)

    def _handle_frame(self, room: _RoomSocket, data: bytes) -> bool:
        """Dispatch one frame from the server; False if it is malformed."""
        if len(data) < OWNER_HEADER_BYTES:
            return False
        kind, raw_id, rest = data[0], data[1:OWNER_HEADER_BYTES], data[OWNER_HEADER_BYTES:]
        if kind == OWNER_GUEST_OPENED:
            if raw_id in room.guests:
                return True
            if len(room.guests) >= self._limits.max_guests_per_owner:
                # One guest too many for our bound, not a bad server (a room may take
                # more sockets, --guests-per-room): refuse that guest, keep the room.
                RemoteGuest(room, raw_id, "", self._limits.max_msg_size).close(
                    CLOSE_TOO_MANY_GUESTS, REASON_TOO_MANY_GUESTS
                )
                return True
            remote = rest[:64].decode("utf-8", "replace")
            room.guests[raw_id] = RemoteGuest(room, raw_id, remote, self._limits.max_msg_size)
            return True
        if kind == OWNER_GUEST_CLOSED:
            self._closed(room, raw_id)
            room.guests.pop(raw_id, None)
            return True
        if kind == OWNER_GUEST_DRAINED:
            if not room.flow or len(rest) != 8:
                return False
            guest = room.guests.get(raw_id)
            if guest is not None:  # else it has gone meanwhile
                guest.drained(struct.unpack(">Q", rest)[0])
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


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _close_kind(code: int | None) -> str:
    return "refused" if code in REFUSED_CLOSES else "busy"


def _peer_certificate_sha256(ws: aiohttp.ClientWebSocketResponse) -> str | None:
    """The server's leaf certificate as colon hex (as browsers show it), if on TLS."""
    ssl_object = ws.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _json_object(text: str) -> dict[str, object] | None:
    if len(text) > 4096:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # "[" * 1000 is short enough
        return None
    return value if isinstance(value, dict) else None
