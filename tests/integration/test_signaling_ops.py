"""The operator's surface on real loopback sockets: ``/healthz``, ``/metrics`` and who
may read it, counters that move with real traffic, and ``--reuse-port`` with two
``signal-server`` processes on one port."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest

from signaling.app import Limits
from signaling.owner_client import OwnerClient
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
from tests.integration.conftest import StartStandalone
from tests.integration.signaling_fakes import FakeOwner, new_room_id
from tests.metrics_text import parse, value

PROXY = "127.0.0.1"  # the tests' requests come from here: declared a trusted proxy
P = "p2pchat_signal_"


HANG = "hang"


class Health:
    """A health hook the test steers: None (healthy), a reason, an exception, or HANG."""

    def __init__(self) -> None:
        self.answer: str | Exception | None = None

    async def __call__(self) -> str | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer is HANG:
            await asyncio.Event().wait()
        return self.answer


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def server(health: Health, start_standalone: StartStandalone) -> SignalingServer:
    return await start_standalone(
        trusted_proxies=[PROXY],
        metrics_allow=["198.51.100.7", "2001:db8::/32"],
        health=health,
        limits=Limits(request_burst=3, requests_per_second=0.01),
    )


def from_address(address: str) -> dict[str, str]:
    """Headers of a request the trusted proxy forwards for ``address``."""
    return {"X-Forwarded-For": f"10.9.9.9, {address}"}


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    async with http.get(url, headers=headers or {}) as response:
        return response.status, response.content_type, await response.text()


async def scrape(
    http: aiohttp.ClientSession, base: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        samples, _ = parse(await response.text())
    return samples


async def test_healthz_says_ok_or_the_hooks_reason_and_is_never_rate_limited_for_loopback(
    server: SignalingServer, http: aiohttp.ClientSession, health: Health
) -> None:
    base = server.base_url
    for _ in range(10):  # far past the burst of 3 requests
        assert await get(http, f"{base}/healthz") == (200, "text/plain", "ok")
    health.answer = "redis does not answer\nPING"
    assert await get(http, f"{base}/healthz") == (503, "text/plain", "redis does not answer PING")
    health.answer = RuntimeError("boom")
    assert await get(http, f"{base}/healthz") == (
        503, "text/plain", "health check failed: RuntimeError",
    )  # fmt: skip
    health.answer = None
    assert (await get(http, f"{base}/healthz"))[0] == 200
    # A client behind the proxy is rate-limited on /healthz like anywhere else.
    statuses = [
        (await get(http, f"{base}/healthz", from_address("203.0.113.9")))[0] for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]


async def test_metrics_only_for_loopback_and_allowed_addresses_else_the_generic_404(
    server: SignalingServer, http: aiohttp.ClientSession
) -> None:
    base = server.base_url
    missing = await get(http, f"{base}/no-such-path")
    assert missing[0] == 404
    for _ in range(6):  # readers are not rate-limited on /metrics either
        samples = await scrape(http, base)
    assert value(samples, P + "guest_connections") == 0
    assert value(samples, P + "open_fds") > 0
    status, _, text = await get(http, f"{base}/metrics", from_address("198.51.100.7"))
    assert status == 200
    assert P + "refusals_total" in text
    assert (await get(http, f"{base}/metrics", from_address("2001:db8::5")))[0] == 200
    for outsider in ("203.0.113.9", "198.51.100.8", "2001:db9::1", "not-an-address"):
        assert await get(http, f"{base}/metrics", from_address(outsider)) == missing, outsider


async def test_forwarding_headers_from_an_untrusted_peer_never_make_a_reader(
    http: aiohttp.ClientSession,
) -> None:
    # A reverse proxy on the same host that was not declared --trusted-proxy: its
    # requests come from loopback, yet they are the outside world's.
    server = SignalingServer(
        RoomRegistry(), host="127.0.0.1", port=0, ssl_context=None, static_dir=None,
        owner_hooks=None,
    )  # fmt: skip
    await server.async_start()
    try:
        base = server.base_url
        missing = await get(http, f"{base}/no-such-path")
        assert (await get(http, f"{base}/metrics"))[0] == 200
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            assert await get(http, f"{base}/metrics", {header: "127.0.0.1"}) == missing
    finally:
        await server.async_stop()


async def test_embedded_server_serves_no_metrics_but_answers_healthz(
    http: aiohttp.ClientSession,
) -> None:
    server = SignalingServer(
        RoomRegistry(), host="127.0.0.1", port=0, ssl_context=None, static_dir=None,
        owner_hooks=FakeOwner(),
    )  # fmt: skip
    await server.async_start()
    try:
        missing = await get(http, f"{server.base_url}/no-such-path")
        assert await get(http, f"{server.base_url}/metrics") == missing
        assert await get(http, f"{server.base_url}/healthz") == (200, "text/plain", "ok")
    finally:
        await server.async_stop()


async def test_counters_move_with_a_refused_guest_and_relayed_messages(
    server: SignalingServer, http: aiohttp.ClientSession
) -> None:
    base = server.base_url
    ws_base = base.replace("http", "ws", 1)
    before = await scrape(http, base)
    hooks = FakeOwner()
    client = OwnerClient(base, hooks)
    try:
        room = new_room_id()
        await client.async_open_room(room, expires_at=time.time() + 600)
        async with http.ws_connect(f"{ws_base}/ws/{new_room_id()}") as refused:
            assert (await refused.receive()).type is aiohttp.WSMsgType.TEXT  # the notice
        async with http.ws_connect(f"{ws_base}/ws/{room}") as guest_ws:
            await guest_ws.send_bytes(b"\x01offer")  # 6 bytes to the owner
            await hooks.wait_for(lambda: len(hooks.messages) == 1)
            during = await scrape(http, base)
            hooks.messages[0][1].send(b"\x02answer!")  # 8 bytes to the guest
            assert await guest_ws.receive_bytes(timeout=5) == b"\x02answer!"
            after = await scrape(http, base)
    finally:
        await client.async_close()

    def moved(name: str, **labels: str) -> float:
        return value(after, P + name, **labels) - value(before, P + name, **labels)

    assert moved("refusals_total", reason="link-not-valid") == 1
    assert moved("refusals_total", reason="room-full") == 0
    assert moved("relayed_messages_total", direction="to_owner") == 1
    assert moved("relayed_bytes_total", direction="to_owner") == 6
    assert moved("relayed_messages_total", direction="to_guest") == 1
    assert moved("relayed_bytes_total", direction="to_guest") == 8
    assert value(during, P + "guest_connections") == 1
    assert value(during, P + "owner_connections") == 1
    assert value(during, P + "rooms") == 1


# --- --reuse-port: two processes, one port -------------------------------------------


@pytest.fixture
def shared_port() -> Iterator[int]:
    """A free port, held (bound with SO_REUSEPORT, never listening) until the test ends,
    so nothing else takes it meanwhile; a bound socket that does not listen gets no
    connections."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    yield int(holder.getsockname()[1])
    holder.close()


def start_instance(own_address: str, port: int, *extra: str) -> subprocess.Popen[str]:
    """``signal-server`` on 127.0.0.1:port (shared) and on its own loopback address."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "signaling.cli", "--insecure-http", "--host", "127.0.0.1",
            "--host", own_address, "--port", str(port), *extra,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return proc


def wait_listening(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the process prints it once it listens (or exits)
    assert "listening on" in line, (line, proc.stderr.read() if proc.stderr else "")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=15)


async def refusals_at(http: aiohttp.ClientSession, base: str) -> float:
    return value(await scrape(http, base), P + "refusals_total", reason="link-not-valid")


async def test_two_instances_share_a_port_and_one_survives_the_others_death(
    shared_port: int, http: aiohttp.ClientSession
) -> None:
    # Without the flag an instance may not join the port (the holder has SO_REUSEPORT).
    alone = start_instance("127.0.0.2", shared_port)
    _out, err = alone.communicate(timeout=30)
    assert alone.returncode == 1
    assert f"cannot listen on port {shared_port}" in err
    assert "Traceback" not in err

    own = ["127.0.0.2", "127.0.0.3"]
    procs = [start_instance(a, shared_port, "--reuse-port") for a in own]
    try:
        for proc in procs:
            wait_listening(proc)
        shared = f"http://127.0.0.1:{shared_port}"
        attempts = 40
        for _ in range(attempts):  # each a new connection: the kernel picks an instance
            async with (
                aiohttp.ClientSession() as fresh,
                fresh.ws_connect(f"{shared.replace('http', 'ws')}/ws/{new_room_id()}") as ws,
            ):
                await ws.receive()  # refused: link not valid, counted where it landed
        counts = [await refusals_at(http, f"http://{a}:{shared_port}") for a in own]
        assert sum(counts) == attempts
        # 40 connections hashed over two listeners: all on one has odds of 2^-39.
        assert all(count > 0 for count in counts), counts

        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        for _ in range(20):  # new connections all reach the survivor
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{shared}/healthz") as response:
                assert (response.status, await response.text()) == (200, "ok")
    finally:
        for proc in procs:
            stop(proc)


def test_metrics_allow_must_be_an_address() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "signaling.cli", "--insecure-http", "--metrics-allow", "scraper"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "p2pchat: --metrics-allow: not an IP address or network: 'scraper'"


async def test_a_health_hook_that_hangs_gets_503_at_its_deadline(
    server: SignalingServer,
    http: aiohttp.ClientSession,
    health: Health,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from signaling import ops

    monkeypatch.setattr(ops, "HEALTH_TIMEOUT", 0.05)
    health.answer = HANG
    assert await get(http, f"{server.base_url}/healthz") == (
        503, "text/plain", "health check timed out",
    )  # fmt: skip
