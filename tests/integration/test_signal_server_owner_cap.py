"""``p2pchat signal-server --owners-per-address N``: the (N+1)th owner socket from one
address is refused with one clear reason; a bad N is one line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp

from tests.integration.signaling_fakes import close_of, new_room_id


async def test_the_owner_cap_per_address_is_the_flag() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "--insecure-http", "--host", "127.0.0.1",
        "--port", "0", "--owners-per-address", "2",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert "listening on http://127.0.0.1:" in line, line
        base = line.split("listening on ", 1)[1].split()[0].replace("http", "ws", 1)
        async with aiohttp.ClientSession() as http:
            owners = []
            for _ in range(2):
                ws = await http.ws_connect(f"{base}/owner/{new_room_id()}")
                await ws.send_str(json.dumps({"expires_at": time.time() + 600}))
                ready = json.loads((await ws.receive(timeout=10)).data)
                assert ready["type"] == "ready", ready
                owners.append(ws)
            third = await http.ws_connect(f"{base}/owner/{new_room_id()}")
            notice = json.loads((await third.receive(timeout=10)).data)
            assert notice["message"] == "too many rooms from your address"
            assert await close_of(third) == 1008
            for ws in owners:
                await ws.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 20)


def test_a_bad_owner_cap_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signaling.cli", "--insecure-http", "--owners-per-address", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "--owners-per-address: must be 1 to 1024, not 0" in done.stderr
