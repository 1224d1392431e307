"""A bench's server child process: it prints its port and serves until the driver
closes its stdin; the driver ends it with a bounded wait, then SIGKILL."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


async def serve_until_stdin_closes(port: int) -> None:
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def serve_app_until_stdin_closes(app: web.Application) -> None:
    """``app`` on a free loopback port, until the driver closes our stdin."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await serve_until_stdin_closes(int(runner.addresses[0][1]))
    await runner.cleanup()


async def stop_child(proc: asyncio.subprocess.Process, wait_s: float) -> None:
    """Close its stdin (it stops cleanly); SIGKILL if it has not within ``wait_s``."""
    assert proc.stdin is not None
    proc.stdin.close()
    if proc.returncode is not None:  # gone already (a bench killed it)
        return
    try:
        await asyncio.wait_for(proc.wait(), wait_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
