"""LAN signaling: sealed envelopes over HTTP on the port we advertise in mDNS.

``POST /v1/envelope`` with the envelope as the body; the reply body, if any, is
the answering envelope. The server never looks inside: the node's handler does,
and refuses with :class:`SignalingRefused` (a 4xx and one line of text).
Bodies, request rates per address and concurrent handlers are bounded; junk
gets a 4xx and the node carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from p2pchat.crypto.envelope import MAX_ENVELOPE_BYTES
from signaling.connection_caps import CappedSite, ConnectionCaps
from signaling.http_log import http_server_logger

logger = logging.getLogger(__name__)

ENVELOPE_PATH = "/v1/envelope"
CONTENT_TYPE = "application/octet-stream"
RATE_PER_SECOND = 20.0  # envelopes per client address; bursts up to RATE_BURST
RATE_BURST = 40
MAX_CLIENTS_TRACKED = 4096
MAX_CONCURRENT_HANDLERS = 32
# Of those, one client address may hold this many: a slow or flooding host cannot
# take every slot (each holds a body for up to REQUEST_BODY_TIMEOUT) from the others.
MAX_HANDLERS_PER_ADDRESS = 4
# A client that has not sent a whole request head, or a whole body, by then is cut
# off (slow clients that hold connections open a byte at a time).
REQUEST_HEAD_TIMEOUT = 10.0  # seconds, from the connection or the previous request
REQUEST_BODY_TIMEOUT = 10.0  # seconds
# Open TCP connections: a node posts one envelope per connection, a few at once; a
# host may be several nodes behind one NAT.
CONNECTION_CAPS = ConnectionCaps(per_address=32)

EnvelopeHandler = Callable[[bytes, str], Awaitable[bytes | None]]


class SignalingRefused(Exception):
    """The handler refuses an envelope: HTTP ``status`` with a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class SignalingError(Exception):
    """We could not deliver an envelope to a peer (one line, for the user)."""


class _RateLimiter:
    """A token bucket per client address, with a bounded number of addresses."""

    def __init__(self, rate: float, burst: int, max_clients: int) -> None:
        self._rate, self._burst, self._max = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        tokens, stamp = self._buckets.pop(client, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if len(self._buckets) >= self._max:
            self._buckets.popitem(last=False)  # forget the address heard from least recently
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1, now)
        return True


class LanSignalingServer:
    def __init__(
        self,
        handler: EnvelopeHandler,
        *,
        hosts: Sequence[str],
        port: int,
        caps: ConnectionCaps = CONNECTION_CAPS,
    ) -> None:
        self._handler = handler
        self._hosts = list(hosts)
        self._caps = caps
        self._limiter = _RateLimiter(RATE_PER_SECOND, RATE_BURST, MAX_CLIENTS_TRACKED)
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HANDLERS)
        self._in_flight: dict[str, int] = {}  # handlers per client address (only > 0)
        self._runner: web.AppRunner | None = None
        self.port = port

    async def async_start(self) -> None:
        app = web.Application(client_max_size=MAX_ENVELOPE_BYTES)
        app.router.add_post(ENVELOPE_PATH, self._handle)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            logger=http_server_logger(),
            keepalive_timeout=REQUEST_HEAD_TIMEOUT,
        )
        await self._runner.setup()
        # Every address (no hosts): IPv4 and IPv6 on the one port we advertise.
        site = CappedSite(self._runner, self._hosts, self.port, caps=self._caps)
        await site.start()
        self.port = site.port

    async def async_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        client = request.remote or "?"
        if not self._limiter.allow(client, time.monotonic()):
            return web.Response(status=429, text="too many requests: slow down")
        if request.content_length is not None and request.content_length > MAX_ENVELOPE_BYTES:
            return web.Response(status=413, text="envelope too large")
        if self._in_flight.get(client, 0) >= MAX_HANDLERS_PER_ADDRESS:
            return web.Response(status=429, text="too many requests at once: slow down")
        if self._slots.locked():  # before reading: a slot bounds bodies in memory too
            return web.Response(status=503, text="busy: try again")
        self._in_flight[client] = self._in_flight.get(client, 0) + 1
        try:
            return await self._handle_in_slot(request, client)
        finally:
            left = self._in_flight.pop(client) - 1
            if left:
                self._in_flight[client] = left

    async def _handle_in_slot(self, request: web.Request, client: str) -> web.Response:
        async with self._slots:
            try:
                async with asyncio.timeout(REQUEST_BODY_TIMEOUT):
                    body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return web.Response(status=413, text="envelope too large")
            except TimeoutError:
                return web.Response(
                    status=408, text="envelope too slow", headers={"Connection": "close"}
                )
            try:
                reply = await self._handler(body, client)
            except SignalingRefused as exc:
                return web.Response(status=exc.status, text=str(exc))
            except Exception:
                logger.exception("envelope handler failed")
                return web.Response(status=400, text="envelope could not be handled")
        if reply is None:
            return web.Response(status=202)
        return web.Response(body=reply, content_type=CONTENT_TYPE)


async def async_post_envelope(
    addresses: Sequence[str], port: int, envelope: bytes, *, timeout: float = 5.0
) -> bytes | None:
    """Send an envelope to the first address that answers; the reply envelope, if any."""
    problems: list[str] = []
    client_timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 2.0))
    async with aiohttp.ClientSession(timeout=client_timeout) as http:
        for address in addresses:
            host = f"[{address}]" if ":" in address else address
            url = f"http://{host}:{port}{ENVELOPE_PATH}"
            try:
                async with http.post(
                    url, data=envelope, headers={"Content-Type": CONTENT_TYPE}
                ) as response:
                    body = await _read_bounded(response, MAX_ENVELOPE_BYTES)
                    if response.status == 202:
                        return None
                    if response.status != 200:
                        reason = body[:200].decode("utf-8", "replace")
                        raise SignalingError(f"peer refused ({response.status}): {reason}")
                    return body
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                problems.append(f"{address}: {type(exc).__name__}")
    raise SignalingError("peer unreachable (" + ", ".join(problems or ["no address"]) + ")")


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or ``SignalingError`` past ``limit`` bytes.

    (``content.read(n)`` returns what is buffered so far, not the whole body.)
    """
    if response.content_length is not None and response.content_length > limit:
        raise SignalingError("peer replied with an oversized envelope")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > limit:
            raise SignalingError("peer replied with an oversized envelope")
        chunks.append(chunk)
    return b"".join(chunks)
