"""A throw-away ``redis-server`` on a free loopback port, for the cluster bench.

No persistence (``--save ""``, no AOF), as tests/lan/services.py runs it: the bench
measures memory and latency, never durability. Its RSS is read like the instances'.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

START_TIMEOUT = 30.0


class RedisMissingError(RuntimeError):
    """``redis-server`` is not installed (scripts/install.sh installs it)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    """``async with RedisProcess() as redis``: ``redis.url``, ``redis.pid``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")

    async def __aenter__(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisMissingError("redis-server is not installed (scripts/install.sh)")
        self.proc = await asyncio.create_subprocess_exec(
            binary, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--dir", str(Path(self._dir.name)), "--logfile", "", "--daemonize", "no",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        printed = []
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                line = (await self.proc.stdout.readline()).decode("utf-8", "replace")
                if not line:
                    raise RuntimeError("redis-server did not start:\n" + "".join(printed))
                printed.append(line)
                if "Ready to accept connections" in line:
                    break
        # Always read: a full pipe would block the server.
        self._drain = asyncio.create_task(self._read_rest())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._drain.cancel()
        self._dir.cleanup()

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass
