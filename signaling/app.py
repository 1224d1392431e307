"""The signaling web application: guest page, static assets, the guest WebSocket relay
and, in standalone mode, the owner WebSocket.

The server is untrusted by design (docs/threat-model.md): it sees room ids and opaque
blobs, never the link secret. It stores nothing and never parses a payload; the only
byte it reads is the first one of a guest message (its type), to refuse junk early.

Routes
------
``GET /c/{room_id}``
    The guest page (``static/index.html``) while the room is live, else one generic
    "link not valid" page with status 404 for unknown, expired, used-up, revoked and
    malformed room ids alike, built with the same work on both paths.
``GET /static/{name}``
    The page's assets; no listing, symlinks never followed outside the directory.
``GET /ws/{room_id}``
    The guest WebSocket (docs/guest-protocol.md): binary messages whose first byte is
    ``0x01`` SIGNAL, ``0x02`` RELAY or ``0x03`` FILE, handed whole (type byte included)
    to the owner (FILE messages have a byte budget: past it the server reads more
    slowly, it never closes the guest).
    A room that is not live: close 4404 ``link not valid``.
``GET /owner/{room_id}`` (standalone mode only, ``owner=None``)
    The owner WebSocket, see below.

Every response carries the security headers of docs/guest-protocol.md (set in an
``on_response_prepare`` hook, so WebSocket upgrades and aiohttp's own error pages get
them too).

Owner modes
-----------
*Embedded*: the node passes itself as ``owner`` (:class:`OwnerHooks`) and opens and
revokes rooms in the shared :class:`~signaling.rooms.RoomRegistry`. Guests reach it as
:class:`GuestConnection` handles.

*Standalone* (``owner=None``, ``p2pchat signal-server``): an owner claims a room by
opening ``wss://HOST:PORT/owner/{room_id}`` (with ``Authorization: Bearer <token>``
when the server has an owner token). Its first message, within 10 s, is text
``{"expires_at": <unix seconds>, "claim": "<b64url, 32 bytes>"}``; the server claims
the room in its :class:`~signaling.room_store.RoomStore` (expiry clamped to at most
24 h ahead) and answers ``{"type": "ready", "expires_at": <clamped>, "reclaimed":
<bool>[, "ice": <IceOffer>]}``. The same claim token re-claims the room from a new
connection (the old one is closed 4409, its guests 1012); another token gets 4409.
Later text messages from the owner: ``{"room": "used-up"}`` or ``{"room": "revoked"}``
(no new guests; connected guests stay). When the owner says goodbye (close 1000) the
room is forgotten and each of its guests gets ``{"type": "owner_left"}`` and a close
(1001); a connection that drops otherwise keeps the room for a re-claim
(docs/guest-protocol.md "Standalone server"). With a shared store and a ``bus``, a
guest and its owner may be on different instances (:mod:`signaling.remote_peers`).

Binary framing on the owner socket (``id`` = the guest connection id, 8 bytes, the
same bytes as :attr:`GuestConnection.id` in hex)::

    0x01 SIGNAL / 0x02 RELAY / 0x03 FILE
                              both ways   [type][id][payload]
                              server→owner: a guest sent [type][payload]
                              owner→server: send [type][payload] to that guest
    0x10 GUEST_OPENED  server→owner  [0x10][id][guest address, UTF-8]
                       (sent once, before that guest's first message)
    0x11 GUEST_CLOSED  server→owner  [0x11][id]
    0x12 CLOSE_GUEST   owner→server  [0x12][id][close code, u16 big-endian][reason, UTF-8]
    0x13 GUEST_DRAINED server→owner  [0x13][id][u64 big-endian: bytes of FILE messages
                       written to that guest's socket so far] (only to an owner whose
                       hello had ``"flow": 1``; its ready says ``"flow": true``)

Flow control for files: an owner that asked for it counts the FILE bytes it sent to a
guest and waits while more than its bound is not yet written to the guest's socket
(:meth:`GuestConnection.async_wait_queue_below`), so a guest slower than its owner
slows the owner's file down instead of overflowing its queue here. Reports go out when
the guest's queue holds no FILE message any more, or every FLOW_REPORT_BYTES.

A message for a guest that has gone is dropped (the GUEST_CLOSED is on its way).
Malformed owner frames close the owner socket with 1002.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import math
import re
import secrets
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol

import aiohttp
from aiohttp import web
from yarl import URL

from signaling import bus as frames
from signaling.bounds import AddressBuckets, ByteBudget, Outbox, TokenBucket
from signaling.bus import Bus, FrameError, OnFrame, OnResult, decode_frame
from signaling.connection_caps import ConnectionCaps
from signaling.metrics import Metrics
from signaling.ops import HealthHook, Ops
from signaling.remote_peers import BusGuest, BusOwner
from signaling.room_store import (
    CLAIM_TOKEN_BYTES,
    Join,
    MemoryRoomStore,
    RoomStateName,
    RoomStore,
    claim_hash,
    new_connection_id,
)
from signaling.rooms import RoomRegistry, is_valid_room_id

logger = logging.getLogger(__name__)

TYPE_SIGNAL: Final = 0x01
TYPE_RELAY: Final = 0x02
TYPE_FILE: Final = 0x03  # one sealed file chunk (relay path), either way
GUEST_TYPES: Final = frozenset({TYPE_SIGNAL, TYPE_RELAY, TYPE_FILE})
OWNER_GUEST_OPENED: Final = 0x10
OWNER_GUEST_CLOSED: Final = 0x11
OWNER_CLOSE_GUEST: Final = 0x12
OWNER_GUEST_DRAINED: Final = 0x13
DRAINED_FRAME_BYTES: Final = 1 + 8 + 8
# A guest's FILE bytes written to its socket are reported at least this often (and
# whenever its queue holds no FILE message): one small frame per chunk at most.
FLOW_REPORT_BYTES: Final = 64 * 1024
GUEST_ID_BYTES: Final = 8
OWNER_HEADER_BYTES: Final = 1 + GUEST_ID_BYTES

CLOSE_LINK_NOT_VALID: Final = 4404
CLOSE_ROOM_CLAIMED: Final = 4409
CLOSE_SERVICE_RESTART: Final = 1012  # standalone: reconnect at once (another instance)
REASON_LINK_NOT_VALID: Final = "link not valid"
REASON_ROOM_EXPIRED: Final = "room expired"
REASON_OWNER_AWAY: Final = "the owner is reconnecting: try again"
REASON_OWNER_RECONNECTED: Final = "the owner reconnected"
REASON_TOO_MANY_GUESTS: Final = "too many guests in this room: try again later"
HELLO_SHAPE: Final = (
    'hello must be {"expires_at": <future unix seconds>, "claim": <b64url 32 bytes>}'
)
ICE_PUSH_MIN_S: Final = 0.5
# The guest page says which ICE servers it may use: none (LAN) or the ones the server
# sends on the socket; a server with an IceSource serves it rewritten.
ICE_META_LAN: Final = b'<meta name="p2pchat-ice" content="lan">'
ICE_META_SERVER: Final = b'<meta name="p2pchat-ice" content="server">'

CSP: Final = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final[dict[str, str]] = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
}

# In the guest page's own look (its stylesheet, same origin, allowed by the CSP), and
# the same bytes for every reason a link is not valid: nothing tells them apart.
INVALID_LINK_PAGE: Final = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<meta name="color-scheme" content="dark">
<meta name="theme-color" content="#05080a">
<title>p2pchat: link not valid</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<div class="app">
  <header class="bar">
    <p class="brand"><span class="prompt" aria-hidden="true">&gt;</span>p2pchat<span class="cursor" aria-hidden="true">_</span></p>
    <p class="status" data-state="failed"><span class="dot" aria-hidden="true"></span>link not valid</p>
  </header>
  <main class="main">
  <section class="panel invalid">
    <h1>This link is not valid</h1>
    <p>It expired, was used up or was revoked: ask for a new one.</p>
  </section>
  </main>
</div>
</body>
</html>
"""
MISSING_PAGE: Final = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>p2pchat</title></head>
<body><p>The guest page is not installed on this server.</p></body></html>
"""
# A well-formed room id that is never opened: malformed ids are looked up as this one,
# so both paths of the page handler do the same work.
_NEVER_A_ROOM: Final = "A" * 22


# Open TCP connections (TLS handshakes included), checked at accept: a browser opens
# about 6 at once beside its WebSocket, and up to Limits.connections_per_address guests
# may share an address.
INVITE_CONNECTION_CAPS: Final = ConnectionCaps(per_address=64)
# Owner sockets per address by default (Limits.owners_per_address): each live remote
# invite of a node holds one, and a home NAT puts a few nodes behind one address.
OWNERS_PER_ADDRESS_WITH_TOKEN: Final = 32
OWNERS_PER_ADDRESS_OPEN: Final = 4


@dataclass(frozen=True)
class Limits:
    """Every bound of the application (docs/guest-protocol.md; DESIGN §3)."""

    max_msg_size: int = 128 * 1024  # one guest message; over it aiohttp closes with 1009
    heartbeat: float = 20.0  # seconds between pings
    connections_per_address: int = 8  # guest WebSockets per client address
    connections_per_room: int = 8  # guest WebSockets per room
    total_connections: int = 512  # guest WebSockets in all
    messages_per_second: float = 50.0  # per guest WebSocket, token bucket...
    message_burst: int = 100  # ...with this many tokens (FILE messages: the next three)
    # FILE messages from one guest: bytes a second and a burst (two windows of chunks);
    # past it the server waits before reading on (the page's socket buffer fills up and
    # its sender waits), so a file is slowed, never cut. Each message costs at least
    # file_message_min_bytes, so tiny messages cannot make it a flood of hook calls.
    file_bytes_per_second: float = 32.0 * 1024 * 1024
    file_burst_bytes: int = 2 * 1024 * 1024
    file_message_min_bytes: int = 64 * 1024  # one real chunk: ≤ 512 FILE messages/s
    send_queue_bytes: int = 1024 * 1024  # queued towards one guest; over it: disconnect
    send_queue_messages: int = 512
    requests_per_second: float = 20.0  # HTTP requests per client address (bucket)
    request_burst: int = 100
    addresses_tracked: int = 4096  # rate-limit buckets kept (least recent dropped)
    # Standalone: owner WebSockets per address; None: OWNERS_PER_ADDRESS_WITH_TOKEN when
    # owners need a token (nodes behind one home NAT share it, one socket per live
    # invite), else OWNERS_PER_ADDRESS_OPEN (anyone may claim: keep squatters small).
    owners_per_address: int | None = None
    total_owners: int = 256
    owner_messages_per_second: float = 800.0
    owner_message_burst: int = 1600
    owner_queue_bytes: int = 8 * 1024 * 1024  # queued towards one owner
    owner_queue_messages: int = 4096
    owner_hello_timeout: float = 10.0
    max_room_lifetime: float = 24 * 3600.0  # standalone: furthest expiry an owner may set
    max_guests_per_owner: int = 64  # owner client: guests tracked per room
    guest_sweep: float = 2.0  # with a shared store: seconds between owner checks
    tcp: ConnectionCaps = INVITE_CONNECTION_CAPS  # TCP connections, capped at accept


class GuestConnection(Protocol):
    """One guest WebSocket, as the owner sees it."""

    @property
    def id(self) -> str:
        """Random per connection: 16 hex digits (8 bytes)."""
        ...

    @property
    def remote(self) -> str:
        """The guest's address, for display."""
        ...

    def send(self, data: bytes) -> None:
        """Queue one whole guest message (type byte first). Never blocks; a guest that
        falls too far behind is disconnected. ``ValueError`` for an empty or oversized
        message (local misuse)."""
        ...

    async def async_wait_queue_below(self, limit: int) -> None:
        """Return once at most ``limit`` bytes wait to go to this guest (or the
        connection has gone): a bulk sender (file chunks) waits here, so it never
        fills the queue towards the disconnect bound and chat stays close behind."""
        ...

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after what is queued has been sent."""
        ...


class IceSource(Protocol):
    """ICE servers for a room (STUN/TURN with fresh credentials), or None."""

    def for_room(self, room_id: str, now: float) -> dict[str, object] | None:
        """A JSON-ready IceOffer (docs/guest-protocol.md) with ``expires_at``."""
        ...


class OwnerHooks(Protocol):
    """What the owner (the node, or the owner client) is told. Called on the event
    loop; must return quickly and never raise for a guest's bad data."""

    def on_guest_message(self, room_id: str, guest: GuestConnection, data: bytes) -> None:
        """A guest sent ``data`` (whole message, type byte first: SIGNAL, RELAY or FILE)."""
        ...

    def on_guest_closed(self, room_id: str, guest: GuestConnection) -> None:
        """A guest that was passed to :meth:`on_guest_message` has gone."""
        ...


def make_app(
    registry: RoomRegistry | RoomStore,
    *,
    static_dir: Path | None,
    owner: OwnerHooks | None,
    limits: Limits | None = None,
    owner_token: str | None = None,
    trusted_proxies: Collection[str] = (),
    clock: Callable[[], float] = time.time,
    bus: Bus | None = None,
    ice: IceSource | None = None,
    metrics: Metrics | None = None,
    metrics_allow: Collection[str] = (),
    health: HealthHook | None = None,
) -> web.Application:
    """The aiohttp application.

    ``registry``: the rooms, in this process (a :class:`RoomRegistry`, the node's), or
    any :class:`RoomStore` (shared between instances with ``bus``, the way frames reach
    the other instances). ``owner``: the node's hooks (embedded mode), or ``None`` for
    standalone mode (the ``/owner/{room_id}`` route). ``owner_token``: standalone owners
    must present it as a bearer token. ``trusted_proxies``: peer addresses whose
    ``X-Forwarded-For`` is believed (the TLS proxy in front of a standalone server), so
    per-address bounds apply to the real clients. ``clock``: wall-clock seconds (tests).
    ``ice``: ICE servers for owners and guests (a server with STUN/TURN). ``metrics``:
    the counters (a new :class:`Metrics` by default); ``metrics_allow``: addresses
    besides loopback that may read ``/metrics``; ``health``: what ``/healthz`` asks.
    """
    store = MemoryRoomStore(registry) if isinstance(registry, RoomRegistry) else registry
    relay = _Relay(
        store,
        bus=bus,
        ice=ice,
        static_dir=static_dir,
        owner=owner,
        limits=limits or Limits(),
        owner_token=owner_token,
        trusted_proxies=frozenset(trusted_proxies),
        clock=clock,
        metrics=metrics or Metrics(),
    )
    ops = Ops(
        relay.metrics, health=health, allowed=metrics_allow, serve_metrics=owner is None,
        client_address=relay.client_address, trusted_proxies=trusted_proxies,
    )  # fmt: skip
    relay.ops = ops
    app = web.Application(middlewares=[relay.rate_limit_middleware], client_max_size=4096)
    app[RELAY_KEY] = relay
    app.on_response_prepare.append(_add_security_headers)
    app.cleanup_ctx.append(relay.lifetime)
    app.on_shutdown.append(relay.on_shutdown)
    # Anything under /c/ gets the page or the one 404 page: nothing to probe.
    app.router.add_get("/c/{room_id:.*}", relay.guest_page)
    app.router.add_get("/ws/{room_id}", relay.guest_socket)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/metrics", ops.metrics)
    app.on_shutdown.insert(0, ops.on_shutdown)
    if owner is None:
        app.router.add_get("/owner/{room_id}", relay.owner_socket)
    if static_dir is not None and static_dir.is_dir():
        app.router.add_static("/static", static_dir, follow_symlinks=False, show_index=False)
    else:
        logger.warning("no static directory at %s: the guest page will not work", static_dir)
    return app


def aiohttp_max_msg_size(largest: int) -> int:
    """aiohttp's ``max_msg_size`` that lets messages of ``largest`` bytes through (it
    refuses a message of ``max_msg_size`` bytes or more)."""
    return largest + 1


def relay_of(app: web.Application) -> _Relay:
    """The application's relay state (tests, the server's statistics)."""
    return app[RELAY_KEY]


# --- private ---------------------------------------------------------------------


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Server"] = "p2pchat"


class _GuestSocket:
    """A guest WebSocket: the :class:`GuestConnection` handed to the owner."""

    __slots__ = (
        "_closing",
        "_file_reported",
        "_files_queued",
        "_max_msg",
        "_metrics",
        "_outbox",
        "file_written",
        "id",
        "on_drained",
        "owner",
        "raw_id",
        "remote",
        "room_id",
        "seen",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        room_id: str,
        remote: str,
        limits: Limits,
        metrics: Metrics | None = None,
    ) -> None:
        self.raw_id = secrets.token_bytes(GUEST_ID_BYTES)
        self.id = self.raw_id.hex()
        self.room_id = room_id
        self.remote = remote
        self.seen = False  # handed to the owner at least once
        self.owner: BusOwner | None = None  # set when the owner is on another instance
        self._max_msg = limits.max_msg_size
        self._outbox = Outbox(
            ws, limits.send_queue_bytes, limits.send_queue_messages, on_sent=self._sent
        )
        self._closing = False
        self._metrics = metrics
        # Flow control (standalone): FILE bytes written to the socket, told to the owner.
        self.on_drained: Callable[[int], None] | None = None
        self.file_written = 0
        self._file_reported = 0
        self._files_queued = 0

    def send(self, data: bytes) -> None:
        if not data or len(data) > self._max_msg:
            raise ValueError(f"a guest message is 1 to {self._max_msg} bytes, not {len(data)}")
        if self._closing:
            return
        if not self._outbox.push(bytes(data)):
            logger.info("guest %s is too far behind: disconnecting it", self.id)
            reason = "too far behind: reconnect"
            if self._metrics is not None:
                self._metrics.refused("too-slow")
            self.fail(1013, reason, notice=_error_notice(reason))
        elif data[0] == TYPE_FILE:
            self._files_queued += 1

    def _sent(self, item: bytes | str) -> None:
        if isinstance(item, str) or item[0] != TYPE_FILE:
            return
        self._files_queued -= 1
        self.file_written += len(item)
        due = self._files_queued <= 0 or (
            self.file_written - self._file_reported >= FLOW_REPORT_BYTES
        )
        if due and self.on_drained is not None and not self._closing:
            self._file_reported = self.file_written
            # Not from inside the drain task: a report that cannot go out fails us.
            asyncio.get_running_loop().call_soon(self._report, self.file_written)

    def _report(self, total: int) -> None:
        if self.on_drained is not None and not self._closing:
            self.on_drained(total)

    async def async_wait_queue_below(self, limit: int) -> None:
        await self._outbox.async_wait_below(limit)

    def send_text(self, text: str) -> None:
        """A small server notice (the ICE servers), queued like any message."""
        if not self._closing:
            self._outbox.push(text, force=True)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._closing:
            self._closing = True
            self._outbox.close(code, reason)

    def fail(self, code: int, reason: str, *, notice: str | None = None) -> None:
        """Close now, dropping what is queued; ``notice`` goes first as a text message."""
        if self._closing:
            return
        self._closing = True
        self._outbox.cancel()
        if notice is not None:
            self._outbox.push(notice)
        self._outbox.close(code, reason)

    def stop(self) -> None:
        """The socket is gone or about to be closed by its handler: drop the queue."""
        self._closing = True
        self._outbox.clear()

    def __repr__(self) -> str:  # never the queue: it holds payloads
        return f"<guest {self.id} room {self.room_id[:4]}… from {self.remote}>"


class _OwnerSocket:
    """A standalone owner's WebSocket; it is the :class:`OwnerHooks` of its guests."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        room_id: str,
        remote: str,
        limits: Limits,
        metrics: Metrics | None = None,
    ) -> None:
        self.ws = ws
        self._metrics = metrics
        self.room_id = room_id
        self.remote = remote
        self.ready = False
        self.conn = new_connection_id()
        self.replaced = False  # a newer connection of the same owner took the room
        self.flow = False  # its hello asked for GUEST_DRAINED frames
        self.guests: dict[bytes, _GuestSocket | BusGuest] = {}
        self._outbox = Outbox(ws, limits.owner_queue_bytes, limits.owner_queue_messages)
        self._opened: set[bytes] = set()
        self.ice_task: asyncio.Task[None] | None = None

    def on_guest_message(self, room_id: str, guest: GuestConnection, data: bytes) -> None:
        assert isinstance(guest, _GuestSocket | BusGuest)
        if guest.raw_id not in self._opened:
            # Control frames are small and sent once per guest: never refused.
            opened = bytes([OWNER_GUEST_OPENED]) + guest.raw_id + guest.remote.encode()
            self._outbox.push(opened, force=True)
            self._opened.add(guest.raw_id)
        if not self._outbox.push(data[:1] + guest.raw_id + data[1:]):
            if self._metrics is not None:
                self._metrics.refused("too-slow")
            guest.fail(1013, "the owner is too far behind: reconnect")

    def on_guest_closed(self, room_id: str, guest: GuestConnection) -> None:
        assert isinstance(guest, _GuestSocket | BusGuest)
        if guest.raw_id in self._opened:
            self._opened.discard(guest.raw_id)
            self._outbox.push(bytes([OWNER_GUEST_CLOSED]) + guest.raw_id, force=True)

    def on_guest_drained(self, guest: _GuestSocket | BusGuest, total: int) -> None:
        """``total`` FILE bytes have reached ``guest``'s socket: tell a flow owner."""
        if not self.flow or guest.raw_id not in self._opened:
            return
        frame = bytes([OWNER_GUEST_DRAINED]) + guest.raw_id + struct.pack(">Q", total)
        if not self._outbox.push(frame):  # bounded like any frame: an owner that far
            guest.fail(1013, "the owner is too far behind: reconnect")  # behind waits no more

    def send_text(self, text: str) -> None:
        self._outbox.push(text, force=True)

    def fail(self, code: int, reason: str) -> None:
        self._outbox.close(code, reason, drop_queued=True)

    def stop(self) -> None:
        self._outbox.clear()
        if self.ice_task is not None:
            self.ice_task.cancel()

    def end_guests(self, *, left: bool) -> None:
        """The owner has gone (``left``: for good) or reconnected elsewhere."""
        notice = json.dumps({"type": "owner_left"})
        for guest in list(self.guests.values()):
            if isinstance(guest, BusGuest):
                if left:
                    guest.owner_left()
                else:
                    guest.close(CLOSE_SERVICE_RESTART, REASON_OWNER_RECONNECTED)
            elif left:
                guest.fail(1001, "owner left", notice=notice)
            else:
                reason = REASON_OWNER_RECONNECTED
                guest.fail(CLOSE_SERVICE_RESTART, reason, notice=_error_notice(reason))
        self.guests.clear()


class _Relay:
    """All state of one application: counters, sockets, rate limits."""

    def __init__(
        self,
        store: RoomStore,
        *,
        bus: Bus | None,
        ice: IceSource | None,
        static_dir: Path | None,
        owner: OwnerHooks | None,
        limits: Limits,
        owner_token: str | None,
        trusted_proxies: frozenset[str],
        clock: Callable[[], float],
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.metrics = metrics
        bus = _CountingBus(bus, metrics) if bus is not None else None
        self.ops: Ops | None = None  # set by make_app: /healthz and /metrics
        self.bus = bus
        self._iid = bytes.fromhex(store.instance_id)
        self._ice = ice
        self.limits = limits
        self._owner = owner
        self._owner_token = owner_token.encode() if owner_token else None
        self._owner_cap = limits.owners_per_address or (
            OWNERS_PER_ADDRESS_WITH_TOKEN if owner_token else OWNERS_PER_ADDRESS_OPEN
        )
        self._trusted_proxies = trusted_proxies
        self._clock = clock
        self._page = _PageFile(
            static_dir / "index.html" if static_dir else None, server_ice=ice is not None
        )
        self._requests = AddressBuckets(
            limits.requests_per_second, limits.request_burst, limits.addresses_tracked
        )
        self.guests: dict[str, dict[bytes, _GuestSocket]] = {}  # room id → guests
        self.guest_count = 0
        self.owners: dict[str, _OwnerSocket] = {}  # standalone: room id → owner
        self._per_address: dict[str, int] = {}
        self._owners_per_address: dict[str, int] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._owner_sockets = 0
        self._shutting_down = False
        self._last_bad_frame_log = 0.0
        metrics.gauge("guest_connections", "Guest WebSockets open here.", lambda: self.guest_count)
        metrics.gauge("owner_connections", "Owner WebSockets open here.", lambda: len(self.owners))
        metrics.gauge("rooms", "Rooms whose owner is connected here.", lambda: len(self.owners))

    def _ice_offer(self, room_id: str, now: float) -> dict[str, object] | None:
        """A fresh ICE offer for ``room_id`` (TURN credentials minted: counted)."""
        offer = self._ice.for_room(room_id, now) if self._ice is not None else None
        if offer is not None:
            self.metrics.turn_credentials.inc()
        return offer

    async def _refuse(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        """Close ``ws`` with ``code``; a refusal of a known kind is counted."""
        label = _refusal_label(code, reason)
        if label is not None:
            self.metrics.refused(label)
        await _refuse(ws, code, reason)

    # --- HTTP ---

    @web.middleware
    async def rate_limit_middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        unlimited = self.ops is not None and self.ops.unlimited(request)
        if not unlimited and not self._requests.allow(
            self.client_address(request), time.monotonic()
        ):
            self.metrics.refused("rate-limit")
            return web.Response(status=429, text="too many requests: slow down")
        return await handler(request)

    async def guest_page(self, request: web.Request) -> web.Response:
        # Same work whatever the answer: a regex, one lookup, one page read, one choice.
        room_id = request.match_info["room_id"]
        well_formed = is_valid_room_id(room_id)
        try:
            live = await self.store.is_live(
                room_id if well_formed else _NEVER_A_ROOM, self._clock()
            )
        except Exception as exc:  # the shared store is down: not "link not valid"
            logger.warning("room store unavailable: %s", type(exc).__name__)
            return web.Response(status=503, text="server busy: try again in a moment")
        page = self._page.read()
        if well_formed and live:
            body, status = (page, 200) if page is not None else (MISSING_PAGE, 503)
        else:
            body, status = INVALID_LINK_PAGE, 404
        return web.Response(body=body, status=status, content_type="text/html", charset="utf-8")

    def client_address(self, request: web.Request) -> str:
        peer = request.remote or "?"
        if peer in self._trusted_proxies:
            forwarded = request.headers.get("X-Forwarded-For", "")[:1024]
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last[:64]
        return peer

    def _same_origin(self, request: web.Request) -> bool:
        """A browser's ``Origin`` must be this server (no cross-site WebSocket from
        another page in the guest's browser); clients without one (owners) pass."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        host = request.host
        if (request.remote or "") in self._trusted_proxies:
            host = request.headers.get("X-Forwarded-Host", host)
        try:
            url = URL(origin)
            if url.scheme not in ("http", "https"):
                return False
            served = URL.build(scheme=url.scheme, authority=host)
        except (ValueError, TypeError):
            return False
        return (url.host, url.port) == (served.host, served.port)

    # --- guest WebSocket ---

    async def guest_socket(self, request: web.Request) -> web.StreamResponse:
        room_id = request.match_info["room_id"]
        address = self.client_address(request)
        if not self._same_origin(request):
            self.metrics.refused("origin")
            return web.Response(status=403, text="cross-origin WebSocket refused")
        ws = self._new_socket(self.limits.max_msg_size)
        refusal = self._guest_refusal(room_id, address)
        reserved = refusal is None
        if reserved:
            self._reserve(address)  # before the first await: the bounds hold under races
        try:
            await ws.prepare(request)
            joined: Join | None = None
            if refusal is None:
                joined, refusal = await self._join(room_id)
            if joined is None or refusal is not None:
                await self._refuse(ws, *(refusal or (1011, "internal error")))
                return ws
            await self._guest_session(ws, room_id, address, joined)
        finally:
            if reserved:
                self._unreserve(address)
        return ws

    async def _guest_session(
        self, ws: web.WebSocketResponse, room_id: str, address: str, joined: Join
    ) -> None:
        """A joined guest (counted in the store), until its socket closes."""
        guest = _GuestSocket(ws, room_id, address, self.limits, self.metrics)
        try:
            hooks = self._hooks_for(guest, joined)
            if hooks is None and self.bus is not None:  # it left a moment ago: it may be back
                await self._refuse(ws, 1013, REASON_OWNER_AWAY)
                return
            if hooks is None:  # the owner is not (or no longer) here
                await self._refuse(ws, CLOSE_LINK_NOT_VALID, REASON_LINK_NOT_VALID)
                return
            self._add_guest(guest)
            self._sockets.add(ws)
            if isinstance(hooks, _OwnerSocket):
                owner_socket = hooks
                guest.on_drained = lambda total: owner_socket.on_guest_drained(guest, total)
            elif isinstance(hooks, BusOwner):
                bus_owner = hooks
                guest.on_drained = lambda total: bus_owner.on_guest_drained(room_id, total)
            failure: tuple[int, str] | None = None
            try:
                offer = self._ice_offer(room_id, self._clock())
                if offer is not None:  # before anything else: the page waits for it
                    guest.send_text(json.dumps({"type": "ice", **offer}))
                failure = await self._guest_loop(ws, guest, hooks)
            finally:
                self._sockets.discard(ws)
                self._remove_guest(guest)
                guest.stop()
                if guest.seen:
                    try:
                        hooks.on_guest_closed(room_id, guest)
                    except Exception:
                        logger.exception("owner hook on_guest_closed failed")
            if failure is not None:
                await self._refuse(ws, *failure)
        finally:
            await self.store.leave(room_id)

    def _guest_refusal(self, room_id: str, address: str) -> tuple[int, str] | None:
        if not is_valid_room_id(room_id):
            return CLOSE_LINK_NOT_VALID, REASON_LINK_NOT_VALID
        if self.guest_count >= self.limits.total_connections:
            return 1013, "server busy: try again later"
        if self._per_address.get(address, 0) >= self.limits.connections_per_address:
            return 1008, "too many connections from your address"
        return None

    async def _join(self, room_id: str) -> tuple[Join | None, tuple[int, str] | None]:
        """Count a guest socket into its room (cluster-wide with a shared store)."""
        try:
            joined = await self.store.join(
                room_id, cap=self.limits.connections_per_room, now=self._clock()
            )
        except Exception as exc:  # the shared store is down: the guest retries
            logger.warning("room store unavailable: %s", type(exc).__name__)
            return None, (1013, "server busy: try again later")
        if joined.outcome == "ok":
            return joined, None
        if joined.outcome == "room-full":
            return None, (1008, "too many connections to this room")
        if joined.outcome in ("owner-away", "restoring"):
            return None, (1013, REASON_OWNER_AWAY)
        return None, (CLOSE_LINK_NOT_VALID, REASON_LINK_NOT_VALID)

    def _hooks_for(self, guest: _GuestSocket, joined: Join) -> OwnerHooks | None:
        if self._owner is not None:
            return self._owner
        if joined.owner_iid == self.store.instance_id or self.bus is None:
            return self.owners.get(guest.room_id)
        if not _is_instance_id(joined.owner_iid):  # a damaged Redis reply: "try again"
            return None
        guest.owner = BusOwner(
            self.bus,
            guest,
            my_iid=self._iid,
            owner_iid=bytes.fromhex(joined.owner_iid),
            conn=joined.conn,
            max_msg=self.limits.max_msg_size,
        )
        return guest.owner

    def _reserve(self, address: str) -> None:
        self.guest_count += 1
        self._per_address[address] = self._per_address.get(address, 0) + 1

    def _unreserve(self, address: str) -> None:
        self.guest_count -= 1
        count = self._per_address.get(address, 0) - 1
        if count > 0:
            self._per_address[address] = count
        else:
            self._per_address.pop(address, None)

    async def _guest_loop(
        self, ws: web.WebSocketResponse, guest: _GuestSocket, hooks: OwnerHooks
    ) -> tuple[int, str] | None:
        """Receive until the socket closes; a (code, reason) when we must close it."""
        limits = self.limits
        bucket = TokenBucket(limits.messages_per_second, limits.message_burst, time.monotonic())
        file_budget = ByteBudget(
            limits.file_bytes_per_second, limits.file_burst_bytes, time.monotonic()
        )
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                data: bytes = msg.data
                if data[:1] == bytes([TYPE_FILE]):
                    cost = max(len(data), limits.file_message_min_bytes)
                    wait = file_budget.take(cost, time.monotonic())
                    if wait > 0:
                        await asyncio.sleep(wait)  # read on later: the page's sender waits
                elif not bucket.take(time.monotonic()):
                    return 1008, "too many messages: slow down"
                if not data or data[0] not in GUEST_TYPES:
                    return 1003, "unsupported message type"
                guest.seen = True
                try:
                    hooks.on_guest_message(guest.room_id, guest, data)
                except Exception as exc:
                    logger.error("owner hook on_guest_message failed: %s", type(exc).__name__)
                    return 1011, "internal error"
                self.metrics.relayed("to_owner", len(data))
            elif msg.type is aiohttp.WSMsgType.TEXT:
                return 1003, "binary messages only"
            else:  # ERROR: aiohttp has closed it (1009 for an oversized message)
                break
        return None

    def _add_guest(self, guest: _GuestSocket) -> None:
        self.guests.setdefault(guest.room_id, {})[guest.raw_id] = guest
        owner = self.owners.get(guest.room_id)
        if self._owner is None and owner is not None and guest.owner is None:
            owner.guests[guest.raw_id] = guest

    def _remove_guest(self, guest: _GuestSocket) -> None:
        room = self.guests.get(guest.room_id)
        if room is not None and room.pop(guest.raw_id, None) is not None and not room:
            del self.guests[guest.room_id]
        owner = self.owners.get(guest.room_id)
        if owner is not None and owner.guests.get(guest.raw_id) is guest:
            del owner.guests[guest.raw_id]

    # --- owner WebSocket (standalone) ---

    async def owner_socket(self, request: web.Request) -> web.StreamResponse:
        room_id = request.match_info["room_id"]
        address = self.client_address(request)
        if not self._same_origin(request):
            self.metrics.refused("origin")
            return web.Response(status=403, text="cross-origin WebSocket refused")
        if self._owner_token is not None and not self._token_ok(request):
            self.metrics.refused("owner-token")
            return web.Response(status=401, text="owner token required")
        ws = self._new_socket(self.limits.max_msg_size + OWNER_HEADER_BYTES)
        await ws.prepare(request)
        refusal = self._owner_refusal(room_id, address)
        if refusal is not None:
            await self._refuse(ws, *refusal)
            return ws
        owner = _OwnerSocket(ws, room_id, address, self.limits, self.metrics)
        self._owner_sockets += 1
        self._owners_per_address[address] = self._owners_per_address.get(address, 0) + 1
        self._sockets.add(ws)
        failure: tuple[int, str] | None = None
        claimed = False
        try:
            hello = await self._owner_hello(ws, owner)
            if hello == "ready":
                claimed = True
                failure = await self._owner_loop(ws, owner)
            elif hello != "closed":  # closed before its hello: it never held the room
                failure = hello
        finally:
            self._sockets.discard(ws)
            self._owner_sockets -= 1
            count = self._owners_per_address[address] - 1
            if count > 0:
                self._owners_per_address[address] = count
            else:
                del self._owners_per_address[address]
            owner.stop()
            if claimed:
                # The owner said goodbye (or broke the protocol): the room goes with it.
                # Otherwise it may re-claim the room, here or on another instance.
                left = failure is not None or ws.close_code == 1000
                await self._owner_gone(owner, left=left and not self._shutting_down)
        if failure is not None:
            await self._refuse(ws, *failure)
        return ws

    async def _owner_gone(self, owner: _OwnerSocket, *, left: bool) -> None:
        room_id = owner.room_id
        if self.owners.get(room_id) is owner:
            del self.owners[room_id]
        if owner.replaced:  # the newer connection holds the room
            owner.end_guests(left=False)
            return
        try:
            if left:
                await self.store.forget(room_id, conn=owner.conn)
            else:
                left = not await self.store.release(room_id, conn=owner.conn)
        except Exception as exc:  # the shared store is down: the lease runs out
            logger.warning("room store unavailable: %s", type(exc).__name__)
        owner.end_guests(left=left)

    def _token_ok(self, request: web.Request) -> bool:
        assert self._owner_token is not None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._owner_token
        )

    def _owner_refusal(self, room_id: str, address: str) -> tuple[int, str] | None:
        if not is_valid_room_id(room_id):
            return CLOSE_LINK_NOT_VALID, "room id not valid"
        if self._owner_sockets >= self.limits.total_owners:
            return 1013, "server busy: try again later"
        if self._owners_per_address.get(address, 0) >= self._owner_cap:
            return 1008, "too many rooms from your address"
        return None

    async def _owner_hello(
        self, ws: web.WebSocketResponse, owner: _OwnerSocket
    ) -> tuple[int, str] | Literal["ready", "closed"]:
        try:
            msg = await ws.receive(timeout=self.limits.owner_hello_timeout)
        except TimeoutError:
            return 1008, "no hello from the owner"
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return (1002, "the first message must be the hello") if _is_data(msg) else "closed"
        hello = _parse_hello(msg.data)
        now = self._clock()
        if hello is None:
            return 1002, HELLO_SHAPE
        if hello[0] <= now:  # a re-claim after the room's (granted) expiry: final
            return CLOSE_LINK_NOT_VALID, REASON_ROOM_EXPIRED
        expires_at = min(hello[0], now + self.limits.max_room_lifetime)
        owner.flow = hello[2]
        token = hello[1] or secrets.token_bytes(CLAIM_TOKEN_BYTES)  # no token: no re-claim
        try:
            claim = await self.store.claim(
                owner.room_id,
                conn=owner.conn,
                claim_hash=claim_hash(token),
                expires_at=expires_at,
                now=now,
            )
        except Exception as exc:
            logger.warning("room store unavailable: %s", type(exc).__name__)
            return 1013, "server busy: try again later"
        if claim.outcome == "claimed":
            return CLOSE_ROOM_CLAIMED, "room already claimed"
        if claim.outcome == "expired":
            return CLOSE_LINK_NOT_VALID, REASON_ROOM_EXPIRED
        if claim.outcome == "busy":
            return 1013, "server busy: too many rooms"
        previous = self.owners.get(owner.room_id)
        if previous is not None and previous is not owner:
            self._replace(previous)
        self.owners[owner.room_id] = owner
        owner.ready = True
        reply: dict[str, object] = {
            "type": "ready",
            "expires_at": claim.expires_at,
            "reclaimed": bool(claim.previous_owner),
        }
        if owner.flow:
            reply["flow"] = True
        offer = self._ice_offer(owner.room_id, now)
        if offer is not None:
            reply["ice"] = offer
            owner.ice_task = asyncio.get_running_loop().create_task(self._push_ice(owner, offer))
        owner.send_text(json.dumps(reply))
        return "ready"

    def _replace(self, owner: _OwnerSocket) -> None:
        """A newer connection of this owner took its room: close this one."""
        owner.replaced = True
        owner.fail(CLOSE_ROOM_CLAIMED, "room claimed by a newer connection")

    def _on_moved(self, room_id: str, conn: str) -> None:
        owner = self.owners.get(room_id)
        if owner is not None and owner.conn == conn:
            del self.owners[room_id]
            self._replace(owner)

    async def _push_ice(self, owner: _OwnerSocket, offer: dict[str, object]) -> None:
        """Fresh ICE credentials for the owner about every half lifetime."""
        assert self._ice is not None
        while True:
            expires_at = offer.get("expires_at")
            left = float(expires_at) - self._clock() if isinstance(expires_at, int | float) else 0
            await asyncio.sleep(max(ICE_PUSH_MIN_S, left / 2))
            next_offer = self._ice_offer(owner.room_id, self._clock())
            if next_offer is not None:
                offer = next_offer
                owner.send_text(json.dumps({"type": "ice", **offer}))

    async def _owner_loop(
        self, ws: web.WebSocketResponse, owner: _OwnerSocket
    ) -> tuple[int, str] | None:
        limits = self.limits
        bucket = TokenBucket(
            limits.owner_messages_per_second, limits.owner_message_burst, time.monotonic()
        )
        async for msg in ws:
            if not _is_data(msg):
                break
            if not bucket.take(time.monotonic()):
                return 1008, "too many messages: slow down"
            if msg.type is aiohttp.WSMsgType.TEXT:
                state = _parse_room_state(msg.data)
                if state != "used-up" and state != "revoked":
                    return 1002, 'text must be {"room": "used-up" | "revoked"}'
                new_state: RoomStateName = "used-up" if state == "used-up" else "revoked"
                with contextlib.suppress(Exception):  # store down: the owner's node still counts
                    await self.store.set_state(owner.room_id, conn=owner.conn, state=new_state)
                continue
            data: bytes = msg.data
            if len(data) < OWNER_HEADER_BYTES:
                return 1002, "owner frame too short"
            kind, guest_id = data[0], data[1:OWNER_HEADER_BYTES]
            guest = owner.guests.get(guest_id)
            if kind in GUEST_TYPES:
                if len(data) == OWNER_HEADER_BYTES:
                    return 1002, "empty message for a guest"
                if len(data) - GUEST_ID_BYTES > self.limits.max_msg_size:
                    return 1009, "message for a guest too big"
                if guest is not None:
                    guest.send(data[:1] + data[OWNER_HEADER_BYTES:])
                    self.metrics.relayed("to_guest", len(data) - GUEST_ID_BYTES)
            elif kind == OWNER_CLOSE_GUEST:
                parsed = _parse_close_guest(data[OWNER_HEADER_BYTES:])
                if parsed is None:
                    return 1002, "bad CLOSE_GUEST frame"
                if guest is not None:
                    guest.close(*parsed)
            else:
                return 1002, "unknown owner frame type"
        return None

    # --- other instances (shared store) ---

    def _on_bus_frame(self, data: bytes) -> None:
        try:
            frame = decode_frame(data, max_payload=self.limits.max_msg_size)
        except FrameError as exc:
            now = time.monotonic()
            if now - self._last_bad_frame_log >= 60.0:
                self._last_bad_frame_log = now
                logger.warning("dropping a bad frame from another instance: %s", exc)
            self.metrics.bus_dropped.inc()
            return
        self.metrics.bus_frames.inc("in")
        if frame.kind in _TO_OWNER:
            self._frame_for_owner(frame)
        else:
            self._frame_for_guest(frame)

    def _frame_for_owner(self, frame: frames.Frame) -> None:
        owner = self.owners.get(frame.room_id)
        bus = self.bus
        assert bus is not None
        stray = owner is None or not owner.ready
        guest = None if owner is None else owner.guests.get(frame.guest_id)
        reason = REASON_OWNER_AWAY
        if (
            frame.kind == frames.GUEST_OPENED
            and owner is not None
            and guest is None
            and not stray
            and len(owner.guests) >= self.limits.max_guests_per_owner
        ):
            stray, reason = True, REASON_TOO_MANY_GUESTS  # not "reconnecting": it is here
        if stray:
            if frame.kind != frames.GUEST_CLOSED:  # stale news, or one guest too many
                BusGuest(
                    bus,
                    my_iid=self._iid,
                    from_iid=frame.from_iid,
                    room_id=frame.room_id,
                    raw_id=frame.guest_id,
                    remote="",
                    max_msg=self.limits.max_msg_size,
                    on_gone=lambda _: None,
                ).close(1013, reason)
            return
        assert owner is not None
        if frame.kind == frames.GUEST_OPENED:
            if guest is None:
                owner.guests[frame.guest_id] = BusGuest(
                    bus,
                    my_iid=self._iid,
                    from_iid=frame.from_iid,
                    room_id=frame.room_id,
                    raw_id=frame.guest_id,
                    remote=frame.payload.decode("utf-8"),
                    max_msg=self.limits.max_msg_size,
                    on_gone=lambda gone: self._bus_guest_gone(owner, gone),
                )
            return
        if not isinstance(guest, BusGuest) or guest.from_iid != frame.from_iid:
            return
        if frame.kind == frames.GUEST_DATA:
            owner.on_guest_message(frame.room_id, guest, frame.payload)
        elif frame.kind == frames.GUEST_DRAINED:
            owner.on_guest_drained(guest, struct.unpack(">Q", frame.payload)[0])
        else:
            guest.closed = True
            self._bus_guest_gone(owner, guest)

    def _bus_guest_gone(self, owner: _OwnerSocket, guest: BusGuest) -> None:
        if owner.guests.get(guest.raw_id) is guest:
            del owner.guests[guest.raw_id]
            owner.on_guest_closed(owner.room_id, guest)

    def _frame_for_guest(self, frame: frames.Frame) -> None:
        guest = self.guests.get(frame.room_id, {}).get(frame.guest_id)
        if guest is None or guest.owner is None or guest.owner.owner_iid != frame.from_iid:
            return
        if frame.kind == frames.OWNER_DATA:
            guest.send(frame.payload)
        elif frame.kind == frames.OWNER_CLOSE:
            guest.close(*frames.parse_close_payload(frame.payload))
        else:
            guest.fail(1001, "owner left", notice=json.dumps({"type": "owner_left"}))

    async def _sweep(self) -> None:
        """Guests whose owner is elsewhere: is it still there? Owners' guests from
        elsewhere: is their instance still alive?"""
        remote: dict[str, list[_GuestSocket]] = {}
        for room_id, room in self.guests.items():
            for guest in room.values():
                if guest.owner is not None:
                    remote.setdefault(room_id, []).append(guest)
        records = await self.store.owners(list(remote)) if remote else {}
        grace = self.store.in_restore_grace(time.monotonic())
        for room_id, guests in remote.items():
            record = records.get(room_id)
            for guest in guests:
                assert guest.owner is not None
                if record is None:
                    if not grace:
                        guest.fail(1001, "owner left", notice=json.dumps({"type": "owner_left"}))
                elif record.conn != guest.owner.conn:
                    reason = REASON_OWNER_RECONNECTED
                    guest.fail(CLOSE_SERVICE_RESTART, reason, notice=_error_notice(reason))
                elif record.away:
                    guest.fail(1013, REASON_OWNER_AWAY, notice=_error_notice(REASON_OWNER_AWAY))
        bus_guests = [
            peer
            for owner in self.owners.values()
            for peer in owner.guests.values()
            if isinstance(peer, BusGuest)
        ]
        if bus_guests:
            alive = await self.store.live_instances({g.from_iid.hex() for g in bus_guests})
            for peer in bus_guests:
                if peer.from_iid.hex() not in alive:
                    peer.gone()

    # --- lifetime ---

    def _new_socket(self, max_msg_size: int) -> web.WebSocketResponse:
        return web.WebSocketResponse(
            max_msg_size=aiohttp_max_msg_size(max_msg_size),
            compress=False,
            heartbeat=self.limits.heartbeat,
        )

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Start the store and the bus; purge expired rooms now and then (the registry
        is pure: it has no timer); with a bus, sweep guests of other instances."""
        store = self.store

        async def purge_forever() -> None:
            while True:
                await asyncio.sleep(30.0)
                if isinstance(store, MemoryRoomStore):
                    store.registry.purge(self._clock())

        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(self.limits.guest_sweep)
                try:
                    await self._sweep()
                except Exception as exc:  # the store is down: next round
                    logger.debug("guest sweep failed: %s", exc)

        await store.async_start()
        store.set_moved_callback(self._on_moved)
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(purge_forever())]
        if self.bus is not None:
            await self.bus.async_start(self._on_bus_frame, store.kick)
            tasks.append(loop.create_task(sweep_forever()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.bus is not None:
                await self.bus.async_stop()
            await store.async_stop()

    async def on_shutdown(self, app: web.Application) -> None:
        self._shutting_down = True
        # Standalone: another instance is (or soon will be) there: reconnect at once.
        code = 1001 if self._owner is not None else CLOSE_SERVICE_RESTART
        sockets = list(self._sockets)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=b"server shutting down")


RELAY_KEY: Final = web.AppKey("signaling_relay", _Relay)
_TO_OWNER: Final = frozenset(
    {frames.GUEST_OPENED, frames.GUEST_DATA, frames.GUEST_CLOSED, frames.GUEST_DRAINED}
)


class _PageFile:
    """The guest page, re-read when the file changes (stat on every request)."""

    def __init__(self, path: Path | None, *, server_ice: bool = False) -> None:
        self._path = path
        self._server_ice = server_ice
        self._stamp: tuple[int, int] | None = None
        self._body: bytes | None = None

    def read(self) -> bytes | None:
        if self._path is None:
            return None
        try:
            stat = self._path.stat()
        except OSError:
            self._stamp, self._body = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                self._body = self._path.read_bytes()
                if self._server_ice:  # the page waits for the socket's ICE servers
                    self._body = self._body.replace(ICE_META_LAN, ICE_META_SERVER, 1)
            except OSError:
                self._body = None
            self._stamp = stamp
        return self._body


class _CountingBus:
    """The instance's bus, counting the frames it takes (``bus_frames_total{out}``)."""

    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self._bus = bus
        self._metrics = metrics

    def publish(self, to_iid: bytes, data: bytes, on_result: OnResult | None = None) -> bool:
        taken = self._bus.publish(to_iid, data, on_result)
        if taken:
            self._metrics.bus_frames.inc("out")
        return taken

    async def async_start(self, on_frame: OnFrame, on_reconnect: Callable[[], None]) -> None:
        await self._bus.async_start(on_frame, on_reconnect)

    async def async_stop(self) -> None:
        await self._bus.async_stop()


def _is_instance_id(text: str) -> bool:
    """16 lowercase hex digits: what every instance writes as its id."""
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text)


def _refusal_label(code: int, reason: str) -> str | None:
    """The ``refusals_total`` reason of a close (metrics.REFUSAL_REASONS), if any."""
    if code == CLOSE_LINK_NOT_VALID:
        return "link-not-valid"
    if code == CLOSE_ROOM_CLAIMED:
        return "claimed"
    if reason == REASON_OWNER_AWAY:
        return "owner-away"
    if reason.startswith("server busy"):
        return "server-busy"
    if reason == "too many connections to this room":
        return "room-full"
    if reason.endswith("from your address"):
        return "address-limit"
    if reason.startswith("too many messages"):
        return "rate-limit"
    return None


async def _refuse(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(_error_notice(reason))
        await ws.close(code=code, message=reason.encode())


def _error_notice(reason: str) -> str:
    return json.dumps({"type": "error", "message": reason})


def _is_data(msg: aiohttp.WSMessage) -> bool:
    return msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)


def _parse_json_object(text: str) -> dict[str, object] | None:
    if len(text) > 1024:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # "[" * 1000 is short enough
        return None
    return value if isinstance(value, dict) else None


def _parse_hello(text: str) -> tuple[float, bytes | None, bool] | None:
    """(expires_at, claim token or None, flow control asked); None when malformed."""
    hello = _parse_json_object(text)
    if hello is None:
        return None
    expires_at = hello.get("expires_at")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        return None
    value = float(expires_at)
    if not math.isfinite(value):
        return None
    flow = hello.get("flow") == 1
    claim = hello.get("claim")
    if claim is None:
        return value, None, flow
    if not isinstance(claim, str) or not _CLAIM_PATTERN.fullmatch(claim):
        return None
    return value, base64.urlsafe_b64decode(claim + "="), flow


# 32 bytes in unpadded base64url: 42 free characters and a last one with 4 bits.
_CLAIM_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def _parse_room_state(text: str) -> str | None:
    command = _parse_json_object(text)
    state = command.get("room") if command is not None else None
    return state if isinstance(state, str) else None


def _parse_close_guest(rest: bytes) -> tuple[int, str] | None:
    if len(rest) < 2 or len(rest) > 2 + 123:
        return None
    (code,) = struct.unpack(">H", rest[:2])
    if not (code == 1000 or 3000 <= code <= 4999):
        return None
    try:
        return code, rest[2:].decode("utf-8")
    except UnicodeDecodeError:
        return None
