"""A real ``redis-server`` on a random loopback port, and signaling instances sharing it.

Skips (a failure in CI) without ``redis-server``; the server keeps nothing on disk, so
a restart (:meth:`RedisProcess.restart`, same port) loses every key, as in production
with ``--save "" --appendonly no``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from signaling.app import Limits
from signaling.bus import RedisBus
from signaling.redis_store import RedisRoomStore, RedisTimings, connect
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
from tests.conftest import require_command

# Short clocks so the tests wait seconds, not the production 15 s (nothing asserts them).
TIMINGS = RedisTimings(instance_ttl_ms=1500, lease_ms=1500, tick_s=0.2, restore_grace_s=3.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RedisProcess:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        require_command("redis-server")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@dataclass
class Instance:
    server: SignalingServer
    store: RedisRoomStore
    bus: RedisBus
    clients: list[object]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    async def async_kill(self) -> None:
        """Dies without a word: no heartbeat, no subscription, nothing deleted."""
        await self.store.async_kill()
        await self.bus.async_stop()


async def start_instance(redis_url: str, limits: Limits) -> Instance:
    clients = [connect(redis_url), connect(redis_url, single_connection=True), connect(redis_url)]
    store = RedisRoomStore(clients[0], timings=TIMINGS)
    bus = RedisBus(bytes.fromhex(store.instance_id), clients[1], clients[2])
    server = SignalingServer(
        RoomRegistry(), host="127.0.0.1", port=0, ssl_context=None, static_dir=None,
        owner_hooks=None, limits=limits, store=store, bus=bus,
    )  # fmt: skip
    await server.async_start()
    return Instance(server, store, bus, list(clients))


async def stop_instance(instance: Instance) -> None:
    await instance.server.async_stop()
    for client in instance.clients:
        with contextlib.suppress(Exception):
            await client.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
