"""``p2pchat signal-server``: the signaling server on its own, for owners that connect
with :class:`signaling.owner_client.OwnerClient` (e.g. behind a TLS proxy).

HTTPS always, with the user's ``--cert``/``--key`` or a self-signed certificate kept in
the data directory; plain HTTP only with ``--insecure-http``, for a server that sits
behind a TLS-terminating proxy.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from p2pchat.cli_args import OneLineParser, port_number

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from signaling.bus import RedisBus
    from signaling.metrics import Metrics
    from signaling.ops import HealthHook
    from signaling.redis_store import RedisRoomStore
    from signaling.turn_credentials import IceProvider

DEFAULT_PORT = 8443
DEFAULT_GUESTS_PER_ROOM = 8
DEFAULT_MAX_GUESTS = 512
MAX_OWNERS_PER_ADDRESS = 1024


def add_signal_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``p2pchat signal-server`` (``--data-dir`` is the common one)."""
    parser.add_argument(
        "--host",
        action="append",
        metavar="ADDR",
        help="address to listen on (repeatable; default: all interfaces)",
    )
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--cert",
        metavar="FILE",
        help="TLS certificate chain, PEM (with --key; default: self-signed)",
    )
    parser.add_argument("--key", metavar="FILE", help="TLS private key, PEM (with --cert)")
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP: only behind a TLS-terminating proxy",
    )
    parser.add_argument(
        "--owner-token-file",
        metavar="FILE",
        help="owners must present the token in FILE (default: anyone may claim a room)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDR",
        help="believe X-Forwarded-For from this proxy address (repeatable)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share rooms with other instances: redis://[:PASS@]HOST:PORT/N or rediss://"
        " (default: rooms in this process)",
    )
    parser.add_argument(
        "--guests-per-room",
        type=_bounded(1, 1024),
        default=DEFAULT_GUESTS_PER_ROOM,
        metavar="N",
        help=f"guest sockets per room, across all instances (default: {DEFAULT_GUESTS_PER_ROOM})",
    )
    parser.add_argument(
        "--max-guests",
        type=_bounded(1, 1_000_000),
        default=DEFAULT_MAX_GUESTS,
        metavar="N",
        help=f"guest sockets on this instance (default: {DEFAULT_MAX_GUESTS})",
    )
    parser.add_argument(
        "--owners-per-address",
        type=_bounded(1, MAX_OWNERS_PER_ADDRESS),
        default=None,
        metavar="N",
        help="owner sockets (live remote invites) per client address (default: 32 with"
        " --owner-token-file, else 4)",
    )
    parser.add_argument(
        "--instance-name",
        metavar="NAME",
        help="this instance's name in Redis and logs (default: hostname:pid)",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="share the address and port with other instances (SO_REUSEPORT)",
    )
    parser.add_argument(
        "--metrics-allow",
        action="append",
        metavar="ADDR",
        help="besides loopback, this address or network may read /metrics (repeatable)",
    )
    add_ice_arguments(parser)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, not {value}")
        return value

    return parse


def run_signal_server(args: argparse.Namespace) -> int:
    """Handler of ``p2pchat signal-server``: serve until SIGINT/SIGTERM; exit code."""

    import socket
    from dataclasses import replace

    from signaling import tls
    from signaling.app import Limits
    from signaling.metrics import Metrics
    from signaling.open_files import raise_open_file_limit
    from signaling.ops import parse_allowed
    from signaling.rooms import RoomRegistry
    from signaling.server import SignalingServer

    cert, key = getattr(args, "cert", None), getattr(args, "key", None)
    insecure = bool(getattr(args, "insecure_http", False))
    if (cert is None) != (key is None):
        print("p2pchat: --cert and --key go together", file=sys.stderr)
        return 2
    if insecure and cert is not None:
        print("p2pchat: --insecure-http serves no certificate: drop --cert/--key", file=sys.stderr)
        return 2
    port = int(getattr(args, "port", DEFAULT_PORT))
    if not 0 <= port <= 65535:
        print(f"p2pchat: no such port: {port}", file=sys.stderr)
        return 2
    token = None
    token_file = getattr(args, "owner_token_file", None)
    token_mode = 0
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
            token_mode = os.stat(token_file).st_mode
        except OSError as exc:
            print(f"p2pchat: cannot read the owner token: {exc}", file=sys.stderr)
            return 1
        if len(token) < 16:
            print("p2pchat: the owner token must be at least 16 characters", file=sys.stderr)
            return 2

    try:
        ice = ice_provider_from_args(args)
    except ValueError as exc:  # TurnConfigError: one line that names the flag
        print(f"p2pchat: {exc}", file=sys.stderr)
        return 2
    metrics_allow = list(getattr(args, "metrics_allow", None) or [])
    for text in metrics_allow:
        try:
            parse_allowed(text)
        except ValueError as exc:
            print(f"p2pchat: --metrics-allow: {exc}", file=sys.stderr)
            return 2

    if token_file:  # after the checks: a bad value is the one line the user sees
        warn_if_readable(token_file, token_mode)
    raise_open_file_limit()  # before the server sizes its connection cap from it
    context = None
    fingerprint = None
    if not insecure:
        try:
            if cert is not None and key is not None:
                files = tls.user_certificate(Path(cert), Path(key))
            else:
                from p2pchat.store import StoreError
                from p2pchat.store.data_dir import make_data_dir
                from p2pchat.store.paths import resolve_data_dir

                try:
                    data_dir = resolve_data_dir(getattr(args, "data_dir", None))
                    make_data_dir(data_dir)  # the key goes there: ours alone, 0700
                except StoreError as exc:
                    print(f"p2pchat: {exc}", file=sys.stderr)
                    return 1
                files = tls.load_or_create_certificate(data_dir)
            context = tls.ssl_context(files)
            fingerprint = tls.sha256_fingerprint(files)
        except (tls.CertificateError, OSError) as exc:
            print(f"p2pchat: {exc}", file=sys.stderr)
            return 1

    limits = replace(
        Limits(),
        connections_per_room=int(getattr(args, "guests_per_room", DEFAULT_GUESTS_PER_ROOM)),
        total_connections=int(getattr(args, "max_guests", DEFAULT_MAX_GUESTS)),
    )
    owners = getattr(args, "owners_per_address", None)
    if owners is not None:
        # Each owner socket is a TCP connection too: room beside them for a browser.
        per_address = max(limits.tcp.per_address, int(owners) + 32)
        limits = replace(
            limits,
            owners_per_address=int(owners),
            tcp=replace(limits.tcp, per_address=per_address),
        )
    redis_url: str | None = getattr(args, "redis", None)
    name = getattr(args, "instance_name", None) or f"{socket.gethostname()}:{os.getpid()}"

    # Here, not at the top: `p2pchat --help` imports this module for its options only.
    import asyncio
    import signal

    from signaling import redis_store

    async def serve() -> None:
        cluster = await _async_cluster(redis_url, name) if redis_url else None
        metrics = Metrics()
        health = None
        if cluster is not None:
            store, redis_client = cluster[0], cluster[2][0]
            metrics.redis_errors.follow(lambda: store.errors)
            metrics.redis_restores.follow(lambda: store.restores)
            health = _redis_health(redis_client, metrics)
        server = SignalingServer(
            RoomRegistry(),
            host=list(getattr(args, "host", None) or []),
            port=port,
            ssl_context=context,
            owner_hooks=None,
            owner_token=token,
            trusted_proxies=list(getattr(args, "trusted_proxy", None) or []),
            limits=limits,
            store=cluster[0] if cluster else None,
            bus=cluster[1] if cluster else None,
            ice=ice,
            reuse_port=bool(getattr(args, "reuse_port", False)),
            metrics=metrics,
            metrics_allow=metrics_allow,
            health=health,
        )
        try:
            await _async_serve(server)
        finally:
            for client in cluster[2] if cluster else ():
                await client.aclose()

    async def _async_serve(server: SignalingServer) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await server.async_start()
            if insecure:
                print(
                    "WARNING: plain HTTP: this server must sit behind a TLS-terminating proxy",
                    file=sys.stderr,
                    flush=True,
                )
            print(f"signaling server listening on {server.base_url}", flush=True)
            if redis_url:
                print(f"instance {name}: rooms shared through Redis", flush=True)
            if fingerprint is not None:
                print(f"certificate SHA-256 fingerprint: {fingerprint}", flush=True)
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await server.async_stop()

    try:
        asyncio.run(serve())
    except redis_store.RedisUnavailableError as exc:
        print(f"p2pchat: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"p2pchat: cannot listen on port {port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("signaling server stopped", flush=True)
    return 0


# -- STUN/TURN: --turn-url, --stun-url, --turn-secret-file, --turn-ttl, --ice-policy ------


def add_ice_arguments(parser: argparse.ArgumentParser) -> None:
    """The STUN/TURN options (docs/deploy.md "coturn (TURN)")."""
    parser.add_argument(
        "--turn-url",
        action="append",
        metavar="URL",
        help="TURN server for guests and owners, e.g. turn:turn.example.org:3478?transport=udp "
        "(repeatable; UDP turn: URLs go first, order kept otherwise; needs --turn-secret-file)",
    )
    parser.add_argument(
        "--stun-url",
        action="append",
        metavar="URL",
        help="STUN server, e.g. stun:turn.example.org:3478 (repeatable)",
    )
    parser.add_argument(
        "--turn-secret-file",
        metavar="FILE",
        help="coturn's static-auth-secret: the first line of FILE (at least 16 characters)",
    )
    parser.add_argument(
        "--turn-ttl",
        metavar="S",
        type=int,
        default=None,
        help="lifetime of minted TURN credentials in seconds, 300..3600 (default: 3600)",
    )
    parser.add_argument(
        "--ice-policy",
        metavar="all|relay",
        default=None,
        help="relay: every WebRTC path goes through TURN, hiding addresses (default: all)",
    )


def ice_provider_from_args(args: argparse.Namespace) -> IceProvider | None:
    """The ``IceProvider`` the options ask for, or ``None`` when they name no server.

    Raises ``TurnConfigError`` (one line) for a bad value; warns on stderr when the
    secret file is readable by group or others.
    """
    from signaling.turn_credentials import (
        TURN_TTL_DEFAULT,
        IceProvider,
        TurnConfig,
        TurnConfigError,
    )

    turn_urls = tuple(getattr(args, "turn_url", None) or ())
    stun_urls = tuple(getattr(args, "stun_url", None) or ())
    secret_file = getattr(args, "turn_secret_file", None)
    ttl = getattr(args, "turn_ttl", None)
    policy = getattr(args, "ice_policy", None)
    if not turn_urls and not stun_urls:
        if secret_file is not None or ttl is not None or policy is not None:
            raise TurnConfigError(
                "--turn-secret-file, --turn-ttl and --ice-policy need a --turn-url or --stun-url"
            )
        return None
    if turn_urls and secret_file is None:
        raise TurnConfigError("--turn-url needs --turn-secret-file")
    if secret_file is not None and not turn_urls:
        raise TurnConfigError("--turn-secret-file needs a --turn-url")
    secret = b""
    mode = 0
    if secret_file is not None:
        path = Path(secret_file)
        try:
            with path.open("rb") as file:  # the first line is all we need: a bounded read
                first = file.read(4096).split(b"\n", 1)[0]
                mode = os.fstat(file.fileno()).st_mode
        except OSError as exc:
            raise TurnConfigError(f"cannot read the TURN secret: {exc}") from None
        try:
            secret = first.decode("utf-8").strip().encode()
        except UnicodeDecodeError:
            raise TurnConfigError(f"{secret_file}: the TURN secret is not UTF-8 text") from None
    provider = IceProvider(
        TurnConfig(
            turn_urls=turn_urls,
            stun_urls=stun_urls,
            secret=secret,
            ttl=TURN_TTL_DEFAULT if ttl is None else ttl,
            policy="all" if policy is None else policy,
        )
    )
    if secret_file is not None:  # after the checks: a bad value is the one line the user sees
        warn_if_readable(secret_file, mode)
    return provider


def warn_if_readable(path: str, mode: int) -> None:
    """One line on stderr when a secret file (``mode``: its st_mode) is readable by
    group or others."""
    if mode & 0o077:
        print(f"WARNING: {path} is readable by others: chmod 600 it", file=sys.stderr)


def _redis_health(client: Redis, metrics: Metrics) -> HealthHook:
    """``/healthz`` with Redis: a PING within a second, else 503 with why; the
    ``redis_up`` gauge follows the last answer."""
    import asyncio

    up = [1.0]
    metrics.gauge("redis_up", "1 when the last health check reached Redis.", lambda: up[0])

    async def check() -> str | None:
        try:
            async with asyncio.timeout(1.0):
                await client.ping()
        except Exception as exc:  # any failure is the answer: unhealthy, and why
            up[0] = 0.0
            return f"redis unreachable ({type(exc).__name__})"
        up[0] = 1.0
        return None

    return check


async def _async_cluster(url: str, name: str) -> tuple[RedisRoomStore, RedisBus, list[Redis]]:
    """(store, bus, clients) for ``--redis URL``, checked with a PING."""
    import secrets

    from signaling.bus import RedisBus
    from signaling.redis_store import RedisRoomStore, async_check, connect

    clients = [connect(url), connect(url, single_connection=True), connect(url)]
    try:
        await async_check(clients[0])
    except BaseException:
        for client in clients:
            await client.aclose()
        raise
    iid = secrets.token_hex(8)
    store = RedisRoomStore(clients[0], instance_id=iid, name=name)
    return store, RedisBus(bytes.fromhex(iid), clients[1], clients[2]), clients


def main(argv: list[str] | None = None) -> int:
    """``python -m signaling.cli``: the same as ``p2pchat signal-server``."""
    parser = OneLineParser(prog="p2pchat signal-server")
    parser.add_argument("--data-dir", metavar="DIR")
    add_signal_server_arguments(parser)
    return run_signal_server(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
