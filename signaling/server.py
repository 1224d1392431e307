"""Run the signaling application on a port: embedded in the node, or standalone."""

from __future__ import annotations

import ssl
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from signaling.app import IceSource, Limits, OwnerHooks, make_app
from signaling.bus import Bus
from signaling.connection_caps import CappedSite
from signaling.http_log import http_server_logger
from signaling.metrics import Metrics
from signaling.ops import HealthHook
from signaling.room_store import RoomStore
from signaling.rooms import RoomRegistry

STATIC_DIR = Path(__file__).resolve().parent / "static"
SHUTDOWN_TIMEOUT = 5.0
# A client that has not sent a whole request head this long after connecting (or after
# its previous request) is cut off: slow clients cannot hold connections for an hour,
# aiohttp's default.
REQUEST_HEAD_TIMEOUT = 15.0


class SignalingServer:
    """The signaling app served on ``host`` (one address, or several on one port).

    ``port`` 0 lets the OS choose; :attr:`port` holds the real one after
    :meth:`async_start`. ``ssl_context`` None serves plain HTTP (only behind a
    TLS-terminating proxy, or in tests). ``store``/``bus``: rooms shared with other
    instances (Redis) instead of ``registry``; ``ice``: STUN/TURN for owners and guests.
    ``reuse_port``: ``SO_REUSEPORT``, so several processes can listen on one address
    and port (the kernel spreads connections).
    ``metrics``, ``metrics_allow``, ``health``: see :func:`signaling.app.make_app`.
    """

    def __init__(
        self,
        registry: RoomRegistry,
        *,
        host: str | Sequence[str],
        port: int,
        ssl_context: ssl.SSLContext | None,
        static_dir: Path | None = STATIC_DIR,
        owner_hooks: OwnerHooks | None,
        limits: Limits | None = None,
        owner_token: str | None = None,
        trusted_proxies: Collection[str] = (),
        store: RoomStore | None = None,
        bus: Bus | None = None,
        ice: IceSource | None = None,
        reuse_port: bool = False,
        metrics: Metrics | None = None,
        metrics_allow: Collection[str] = (),
        health: HealthHook | None = None,
    ) -> None:
        self.registry = registry
        self.hosts = [host] if isinstance(host, str) else list(host)
        self.port = port
        self.ssl_context = ssl_context
        self.reuse_port = reuse_port
        limits = limits or Limits()
        # A trusted proxy brings many clients' connections from its one address.
        self._caps = replace(limits.tcp, exempt=limits.tcp.exempt | frozenset(trusted_proxies))
        self.app = make_app(
            store or registry,
            static_dir=static_dir,
            owner=owner_hooks,
            limits=limits,
            owner_token=owner_token,
            trusted_proxies=trusted_proxies,
            bus=bus,
            ice=ice,
            metrics=metrics,
            metrics_allow=metrics_allow,
            health=health,
        )
        self._runner: web.AppRunner | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.ssl_context is None else "https"

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` for the first host (for logs and tests)."""
        host = self.hosts[0] if self.hosts else "127.0.0.1"
        any_address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
        host = any_address.get(host, host)
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def async_start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the signaling server is running already")
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            logger=http_server_logger(),
            keepalive_timeout=REQUEST_HEAD_TIMEOUT,
        )
        await runner.setup()
        try:
            site = CappedSite(
                runner, [host or None for host in self.hosts], self.port,
                caps=self._caps, ssl_context=self.ssl_context, reuse_port=self.reuse_port,
            )  # fmt: skip
            await site.start()
            self.port = site.port
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def async_stop(self) -> None:
        """Close every WebSocket (1001) and stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
