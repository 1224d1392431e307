"""TCP connections capped at accept: per client address and in all, a deadline for the
TLS handshake, and accept errors logged once a minute, not once per event.

asyncio's ``create_server`` accepts every connection it can; with TLS it does not even
build the application protocol until the handshake is over, so nothing above it can
count a connection that never sends a ClientHello (held for asyncio's default 60 s).
Out of descriptors, asyncio 3.11 logs a traceback for every failed ``accept()`` and
schedules one more retry for each: tens of thousands of lines a second. So
:class:`CappedSite`, an aiohttp site, accepts by itself: a connection counts from the
moment ``accept()`` returns it, one over its address's cap or the total cap is closed
at once, the others go to the loop (``connect_accepted_socket``, with the handshake
deadline) and stop counting when they are lost. The LAN signaling port and the invite
server (embedded or standalone) both serve through it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from p2pchat.transport.listen_sockets import bind_every_family
from signaling.interval_log import IntervalLog
from signaling.open_files import open_file_limit

logger = logging.getLogger(__name__)

LOG_INTERVAL = 60.0  # seconds between two log lines about refused or failed accepts
ACCEPT_RETRY_DELAY = 1.0  # seconds without accepting after running out of descriptors
ACCEPTS_PER_WAKEUP = 128
# By default a server's total cap takes a quarter of the open-file limit: the rest is for
# the other server, the profile, WebRTC sockets, the control socket, outgoing requests.
OPEN_FILES_SHARE = 4
MIN_TOTAL = 64
DEFAULT_TOTAL = 1024

# Out of a resource: accept fails until something is freed, so stop asking for a while.
# A pending error of one connection (accept(2), Linux): the next accept may work.
_CONNECTION_ERROR_NAMES = (
    "ECONNABORTED", "EPROTO", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET",
    "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "EPERM", "ETIMEDOUT",
)  # fmt: skip
_CONNECTION_ERRORS = frozenset(
    getattr(errno, n) for n in _CONNECTION_ERROR_NAMES if hasattr(errno, n)
)


@dataclass(frozen=True)
class ConnectionCaps:
    """The bounds of one server's TCP connections (handshakes in progress included)."""

    per_address: int = 32  # open at once from one client address
    total: int | None = None  # open at once in all; None: a share of the open-file limit
    tls_handshake_timeout: float = 5.0  # seconds; also for the TLS shutdown
    exempt: frozenset[str] = frozenset()  # no per-address cap (a trusted proxy's address)

    def total_now(self) -> int:
        """``total``, or by default a share of the open-file limit in force."""
        if self.total is not None:
            return self.total
        return min(DEFAULT_TOTAL, max(MIN_TOTAL, open_file_limit() // OPEN_FILES_SHARE))


class CappedSite(web.BaseSite):
    """An aiohttp site on one port of one or more ``hosts`` (``None``: every interface),
    serving through :class:`ConnectionCaps`. ``port`` 0 lets the OS choose (the first
    host's); :attr:`port` is the real one once started."""

    def __init__(
        self,
        runner: web.BaseRunner,
        hosts: Sequence[str | None],
        port: int,
        *,
        caps: ConnectionCaps,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._hosts = list(hosts) or [None]
        self._port = port
        self._caps = caps
        self._reuse_port = reuse_port
        self._counts = _AddressCounts(caps.per_address, caps.total_now(), caps.exempt)
        self._listeners: list[socket.socket] = []
        self._paused: dict[int, asyncio.TimerHandle] = {}
        self._pending: set[asyncio.Task[None]] = set()  # accepted, not yet handed over
        self._refusals = IntervalLog(LOG_INTERVAL, logger)
        self._accept_errors = IntervalLog(LOG_INTERVAL, logger)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._hosts[0] or '*'}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def open_connections(self) -> int:
        """Connections counted now (for tests and figures)."""
        return self._counts.total

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        try:
            for host in self._hosts:
                bound = await _bind(loop, host, self._port, self._backlog, self._reuse_port)
                for sock in bound:
                    self._listeners.append(sock)
                    self._port = sock.getsockname()[1]
        except BaseException:
            self._close_listeners()
            raise
        for sock in self._listeners:
            loop.add_reader(sock.fileno(), self._on_readable, sock)

    async def stop(self) -> None:
        self._close_listeners()
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await super().stop()

    # -- accepting ------------------------------------------------------------------

    def _on_readable(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _CONNECTION_ERRORS:
                    continue
                self._accept_errors.warning(
                    "%s: cannot accept connections: %s", self.name, exc.strerror or exc
                )
                self._pause(sock)
                return
            self._admit(conn, peer)

    def _pause(self, sock: socket.socket) -> None:
        """Stop accepting on ``sock`` for a while (what is pending waits in the backlog)."""
        loop = asyncio.get_running_loop()
        fd = sock.fileno()
        loop.remove_reader(fd)
        self._paused[fd] = loop.call_later(ACCEPT_RETRY_DELAY, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        self._paused.pop(sock.fileno(), None)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, sock)

    def _admit(self, conn: socket.socket, peer: Any) -> None:
        address = _address_of(peer)
        if not self._counts.take(address):
            conn.close()
            self._refusals.warning(
                "%s: refusing connections over the cap (%d per address, %d in all); latest"
                " from %s",
                self.name, self._counts.per_address, self._counts.limit, address,
            )  # fmt: skip
            return
        conn.setblocking(False)
        task = asyncio.get_running_loop().create_task(self._hand_over(conn, address))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _hand_over(self, conn: socket.socket, address: str) -> None:
        """Give ``conn`` to the loop (TLS handshake first, if any), counted until lost."""
        slot = _Slot(self._counts, address)
        server = self._runner.server
        protocols: list[_CountedProtocol] = []

        def protocol() -> asyncio.Protocol:
            assert server is not None
            protocols.append(_CountedProtocol(server(), slot.release))
            return protocols[-1]

        tls = self._ssl_context
        timeout = self._caps.tls_handshake_timeout if tls is not None else None
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                protocol, conn, ssl=tls, ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=timeout,
            )  # fmt: skip
        except BaseException as exc:
            # A failed or too slow handshake (the loop has closed the connection), or we
            # are stopping.
            slot.release()
            if not protocols:
                conn.close()
            if not isinstance(exc, Exception):
                raise
            logger.debug("%s: connection from %s dropped: %r", self.name, address, exc)
            return
        if not protocols[0].made:  # lost during the handshake without an error
            slot.release()

    def _close_listeners(self) -> None:
        loop = asyncio.get_running_loop()
        for handle in self._paused.values():
            handle.cancel()
        self._paused.clear()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners.clear()


# --- private ---------------------------------------------------------------------


class _AddressCounts:
    """Open connections per client address (only addresses with some) and in all."""

    def __init__(self, per_address: int, limit: int, exempt: frozenset[str]) -> None:
        self.per_address, self.limit, self._exempt = per_address, limit, exempt
        self._open: dict[str, int] = {}
        self.total = 0

    def take(self, address: str) -> bool:
        held = self._open.get(address, 0)
        if self.total >= self.limit or (held >= self.per_address and address not in self._exempt):
            return False
        self._open[address] = held + 1
        self.total += 1
        return True

    def give_back(self, address: str) -> None:
        left = self._open.pop(address) - 1
        if left:
            self._open[address] = left
        self.total -= 1


class _Slot:
    """One counted connection; :meth:`release` gives it back once, however often called."""

    __slots__ = ("_address", "_counts")

    def __init__(self, counts: _AddressCounts, address: str) -> None:
        self._counts: _AddressCounts | None = counts
        self._address = address

    def release(self) -> None:
        if self._counts is not None:
            self._counts.give_back(self._address)
            self._counts = None


class _CountedProtocol(asyncio.Protocol):
    """The application's protocol, with a callback when the connection is lost."""

    __slots__ = ("_inner", "_on_lost", "made")

    def __init__(self, inner: asyncio.Protocol, on_lost: Callable[[], None]) -> None:
        self._inner, self._on_lost = inner, on_lost
        self.made = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()
        self._inner.connection_lost(exc)


def _address_of(peer: Any) -> str:
    """The client's address, IPv4-mapped IPv6 written as IPv4."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
    return host.removeprefix("::ffff:") if host.startswith("::ffff:") and "." in host else host


async def _bind(
    loop: asyncio.AbstractEventLoop,
    host: str | None,
    port: int,
    backlog: int,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Listening sockets for ``host`` on ``port`` (each address it resolves to; once a
    port is chosen for the first, the others take the same). No host: IPv4 and IPv6
    on one port (IPv4 alone where there is no IPv6). ``reuse_port``: SO_REUSEPORT, so
    other processes of the same user may listen there too (the kernel load-balances)."""
    if not host:
        every = bind_every_family(port, reuse_port=reuse_port)
        try:
            for sock in every:
                sock.listen(backlog)
                sock.setblocking(False)
        except BaseException:
            for sock in every:
                sock.close()
            raise
        return every
    infos = await loop.getaddrinfo(
        host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE,
    )  # fmt: skip
    seen: set[tuple[int, Any]] = set()
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sockets[0] is not sock:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
