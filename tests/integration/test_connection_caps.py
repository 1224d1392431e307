"""TCP connections capped at accept (signaling/connection_caps.py), on real loopback
sockets: per client address (127.0.0.x are distinct addresses), in all, TLS handshakes
counted and cut off at their deadline, accept errors logged once per interval, the
open-file limit raised; and ``p2pchat signal-server`` serving through all of it."""

from __future__ import annotations

import asyncio
import os
import resource
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from signaling.app import INVITE_CONNECTION_CAPS
from signaling.connection_caps import CappedSite, ConnectionCaps
from signaling.tls import load_or_create_certificate, ssl_context

REPO_ROOT = Path(__file__).resolve().parents[2]
# Longer than any wait here is meant to last; a wait that reaches it is a failure.
PATIENCE = 30.0

Serve = Callable[..., Awaitable[CappedSite]]
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def serve(caps: ConnectionCaps, *, tls: bool = False) -> CappedSite:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="hello")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        context = ssl_context(load_or_create_certificate(tmp_path)) if tls else None
        site = CappedSite(runner, ["127.0.0.1"], 0, caps=caps, ssl_context=context)
        await site.start()
        return site

    yield serve
    for runner in runners:
        await runner.cleanup()


async def connect(site: CappedSite, source: str = "127.0.0.1", *, tls: bool = False) -> Conn:
    return await asyncio.open_connection(
        "127.0.0.1", site.port, local_addr=(source, 0), ssl=_client_tls() if tls else None
    )


async def get(conn: Conn) -> str:
    """One GET on an open connection: the status line."""
    reader, writer = conn
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    return (await asyncio.wait_for(reader.readline(), PATIENCE)).decode().strip()


async def hung_up(conn: Conn) -> bool:
    """True once the server closes the connection (EOF or reset)."""
    try:
        return await asyncio.wait_for(conn[0].read(1), PATIENCE) == b""
    except ConnectionError:
        return True


async def wait_open_connections(site: CappedSite, count: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while site.open_connections != count:
        assert time.monotonic() < deadline, site.open_connections
        await asyncio.sleep(0.02)


def close_all(*conns: Conn) -> None:
    for _, writer in conns:
        writer.close()


async def test_one_address_gets_its_cap_and_no_more(serve: Serve) -> None:
    site = await serve(ConnectionCaps(per_address=3))
    held = [await connect(site) for _ in range(3)]
    extra = [await connect(site) for _ in range(2)]
    for conn in extra:
        assert await hung_up(conn)  # closed at accept, before any byte
    for conn in held:  # the first three were never touched
        assert await get(conn) == "HTTP/1.1 200 OK"
    other = await connect(site, "127.0.0.2")  # another host is not affected
    assert await get(other) == "HTTP/1.1 200 OK"
    close_all(*held, *extra, other)
    await wait_open_connections(site, 0)  # every slot came back...
    again = await connect(site)
    assert await get(again) == "HTTP/1.1 200 OK"  # ...and is usable again
    close_all(again)


async def test_the_total_cap_holds_across_addresses(serve: Serve) -> None:
    site = await serve(ConnectionCaps(per_address=10, total=2))
    held = [await connect(site, "127.0.0.2"), await connect(site, "127.0.0.3")]
    late = await connect(site, "127.0.0.4")
    assert await hung_up(late)
    for conn in held:
        assert await get(conn) == "HTTP/1.1 200 OK"
    close_all(*held, late)


async def test_an_exempt_address_has_no_per_address_cap(serve: Serve) -> None:
    site = await serve(ConnectionCaps(per_address=1, exempt=frozenset({"127.0.0.1"})))
    held = [await connect(site) for _ in range(4)]
    for conn in held:
        assert await get(conn) == "HTTP/1.1 200 OK"
    capped = [await connect(site, "127.0.0.2") for _ in range(2)]
    assert await get(capped[0]) == "HTTP/1.1 200 OK"
    assert await hung_up(capped[1])
    close_all(*held, *capped)


async def test_tls_handshakes_in_progress_count_against_the_cap(serve: Serve) -> None:
    site = await serve(ConnectionCaps(per_address=2, tls_handshake_timeout=PATIENCE), tls=True)
    silent = [await connect(site) for _ in range(2)]  # TCP only: no ClientHello, ever
    refused = await connect(site)
    assert await hung_up(refused)
    assert site.open_connections == 2
    close_all(*silent, refused)


async def test_a_silent_tls_client_is_cut_off_at_the_handshake_deadline(serve: Serve) -> None:
    # asyncio's own default is 60 s, beyond PATIENCE: a hang-up here is the deadline's.
    site = await serve(ConnectionCaps(per_address=1, tls_handshake_timeout=0.5), tls=True)
    silent = await connect(site)
    assert await hung_up(silent)
    await wait_open_connections(site, 0)  # the slot came back
    real = await connect(site, tls=True)
    assert await get(real) == "HTTP/1.1 200 OK"
    close_all(silent, real)


_OUT_OF_DESCRIPTORS_SERVER = textwrap.dedent(
    """
    import asyncio, logging, os, resource, sys
    from aiohttp import web
    from signaling.connection_caps import CappedSite, ConnectionCaps

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    async def hello(request):
        return web.Response(text="hello")

    async def main():
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        caps = ConnectionCaps(per_address=10**6, total=10**6)  # only the descriptors bind
        site = CappedSite(runner, ["127.0.0.1"], 0, caps=caps)
        await site.start()
        await asyncio.get_running_loop().run_in_executor(None, lambda: None)  # its thread
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 20, hard))
        print(site.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())
    """
)


def test_running_out_of_descriptors_is_logged_once_and_survived() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _OUT_OF_DESCRIPTORS_SERVER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        asyncio.run(_exhaust_then_get(int(proc.stdout.readline())))
    finally:
        _, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err[-3000:]
    lines = err.splitlines()
    assert len([ln for ln in lines if "cannot accept connections" in ln]) == 1, lines
    assert "Too many open files" in err


async def _exhaust_then_get(port: int) -> None:
    # Far more connections than the server has descriptors left (fewer than the listen
    # backlog, so every connect completes): it runs out.
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
    await asyncio.sleep(2.5)  # a few accept retries: the log must not grow with them
    close_all(*conns)
    # Once they are gone, it serves again.
    deadline = time.monotonic() + PATIENCE
    while True:
        conn = await asyncio.open_connection("127.0.0.1", port)
        try:
            status = await get(conn)
        except ConnectionError:
            status = "reset"
        close_all(conn)
        if status == "HTTP/1.1 200 OK":
            return
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    code = (
        "import resource; from signaling.open_files import raise_open_file_limit as r;"
        "print(r(), *resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=REPO_ROOT, preexec_fn=_limit_open_files(256, 2048),
    ).stdout  # fmt: skip
    assert out.split() == ["2048", "2048", "2048"]


def test_signal_server_raises_its_limit_and_caps_one_address(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pchat", "--data-dir", str(tmp_path), "signal-server",
         "--host", "127.0.0.1", "--port", "0", "--insecure-http"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        preexec_fn=_limit_open_files(256, 2048),
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        assert [ln.split()[3:5] for ln in limits.splitlines() if "open files" in ln] == [
            ["2048", "2048"]
        ]
        asyncio.run(_idle_flood_then_get(port))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=PATIENCE)
    assert "Traceback" not in err, err


async def _idle_flood_then_get(port: int) -> None:
    """100 connections from 127.0.0.1, then a request on each: the server answers on
    exactly its per-address cap of them and closed the others; 127.0.0.2 is served."""
    conns = [
        await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0))
        for _ in range(100)
    ]
    other = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    outcomes = await asyncio.gather(*(_room_request(conn) for conn in [*conns, other]))
    close_all(*conns, other)
    assert outcomes[-1] == "404", outcomes[-1]  # served (an unknown room)
    assert sorted(outcomes[:-1]).count("404") == INVITE_CONNECTION_CAPS.per_address, outcomes
    assert set(outcomes[:-1]) == {"404", "closed"}, outcomes


async def _room_request(conn: Conn) -> str:
    reader, writer = conn
    try:
        writer.write(b"GET /c/x HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), PATIENCE)
    except ConnectionError:
        return "closed"
    return line.decode().split()[1] if line else "closed"


def _limit_open_files(soft: int, hard: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, min(hard, _hard_limit())))

    return limit


def _hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
