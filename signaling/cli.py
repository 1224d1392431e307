"""``p2pchat signal-server``: the signaling server on its own, for owners that connect
with :class:`signaling.owner_client.OwnerClient` (e.g. behind a TLS proxy).

HTTPS always, with the user's ``--cert``/``--key`` or a self-signed certificate kept in
the data directory; plain HTTP only with ``--insecure-http``, for a server that sits
behind a TLS-terminating proxy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from p2pchat.cli_args import OneLineParser, port_number

DEFAULT_PORT = 8443


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


def run_signal_server(args: argparse.Namespace) -> int:
    """Handler of ``p2pchat signal-server``: serve until SIGINT/SIGTERM; exit code."""
    from signaling import tls
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
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"p2pchat: cannot read the owner token: {exc}", file=sys.stderr)
            return 1
        if len(token) < 16:
            print("p2pchat: the owner token must be at least 16 characters", file=sys.stderr)
            return 2

    metrics_allow = list(getattr(args, "metrics_allow", None) or [])
    for text in metrics_allow:
        try:
            parse_allowed(text)
        except ValueError as exc:
            print(f"p2pchat: --metrics-allow: {exc}", file=sys.stderr)
            return 2

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

    server = SignalingServer(
        RoomRegistry(),
        host=list(getattr(args, "host", None) or []),
        port=port,
        ssl_context=context,
        owner_hooks=None,
        owner_token=token,
        trusted_proxies=list(getattr(args, "trusted_proxy", None) or []),
        reuse_port=bool(getattr(args, "reuse_port", False)),
        metrics_allow=metrics_allow,
    )

    # Here, not at the top: `p2pchat --help` imports this module for its options only.
    import asyncio
    import signal

    async def serve() -> None:
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
            if fingerprint is not None:
                print(f"certificate SHA-256 fingerprint: {fingerprint}", flush=True)
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await server.async_stop()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"p2pchat: cannot listen on port {port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("signaling server stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m signaling.cli``: the same as ``p2pchat signal-server``."""
    parser = OneLineParser(prog="p2pchat signal-server")
    parser.add_argument("--data-dir", metavar="DIR")
    add_signal_server_arguments(parser)
    return run_signal_server(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
