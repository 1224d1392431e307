"""The operator's routes: ``GET /healthz`` for a load balancer, ``GET /metrics`` for
a Prometheus scraper (contract §5).

``/healthz``: 200 ``ok``, or 503 with a one-line reason, asked of an optional async
hook (the Redis PING of a cluster instance) with a deadline, and 503 ``shutting down``
once the server stops. ``/metrics``: the text format, only to *readers*: loopback
and the ``--metrics-allow`` addresses or networks; anyone else gets exactly the
response of a path that does not exist. Readers are not rate-limited on these two
paths, so a scraper or health checker is never told 429.

Who is a reader is decided on the client address the server believes: behind a
``--trusted-proxy``, the last ``X-Forwarded-For`` entry. A request that carries
forwarding headers from a peer that is *not* a trusted proxy is never a reader: a
reverse proxy on the same host would otherwise turn every outside client into
"loopback".

Embedded mode (the node's own invite server, ``serve_metrics=False``): ``/metrics``
is the generic 404 for everyone. The node has no operator to scrape it, and on a
shared machine the counters would tell other local users when and how much the owner
chats. ``/healthz`` says only ``ok``: harmless, and kept for symmetry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Final

from aiohttp import web

from signaling.metrics import CONTENT_TYPE, Metrics

logger = logging.getLogger(__name__)

#: ``None``: healthy; a string: why not (one line, shown to the load balancer).
HealthHook = Callable[[], Awaitable[str | None]]

HEALTH_TIMEOUT: Final = 2.0  # seconds the hook may take before the answer is 503
MAX_REASON: Final = 200  # characters of a 503 reason
FORWARDING_HEADERS: Final = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
OPS_PATHS: Final = frozenset({"/healthz", "/metrics"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowed(text: str) -> Network:
    """An address or a network (``10.0.0.5``, ``10.0.0.0/24``, ``fd00::/64``);
    ``ValueError`` with a readable message otherwise."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or network: {text!r}") from None


class Ops:
    """The two handlers and the rule that says who may read them."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        health: HealthHook | None,
        allowed: Collection[str],
        serve_metrics: bool,
        client_address: Callable[[web.Request], str],
        trusted_proxies: Collection[str],
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._allowed = tuple(parse_allowed(a) for a in allowed)
        self._serve_metrics = serve_metrics
        self._client_address = client_address
        self._trusted = frozenset(trusted_proxies)
        self._stopping = False

    def is_reader(self, request: web.Request) -> bool:
        """May this request read ``/metrics`` (and skip the rate limit here)?"""
        if (request.remote or "") not in self._trusted and any(
            name in request.headers for name in FORWARDING_HEADERS
        ):
            return False
        address = _ip(self._client_address(request))
        if address is None:
            return False
        return address.is_loopback or any(address in net for net in self._allowed)

    def unlimited(self, request: web.Request) -> bool:
        """No rate limit: a reader asking for ``/healthz`` or ``/metrics``."""
        return request.path in OPS_PATHS and self.is_reader(request)

    async def healthz(self, request: web.Request) -> web.Response:
        reason = "shutting down" if self._stopping else await self._ask()
        if reason is None:
            return web.Response(text="ok")
        return web.Response(status=503, text=reason)

    async def metrics(self, request: web.Request) -> web.Response:
        if not self._serve_metrics or not self.is_reader(request):
            raise web.HTTPNotFound()  # the same response as any path that does not exist
        response = web.Response(text=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def on_shutdown(self, app: web.Application) -> None:
        self._stopping = True

    async def _ask(self) -> str | None:
        if self._health is None:
            return None
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                reason = await self._health()
        except TimeoutError:
            return "health check timed out"
        except Exception as exc:  # the hook's bug must not become a 500 with a traceback
            logger.warning("health check failed: %r", exc)
            return f"health check failed: {type(exc).__name__}"
        if reason is None:
            return None
        line = " ".join(str(reason).split())[:MAX_REASON]
        return line or "unhealthy"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
