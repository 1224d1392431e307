"""A real coturn (``turnserver``, Debian's coturn 4.6.1) inside a test namespace.

    coturn = Coturn(lan.hosts[0], lan.hosts[0].ip, secret=b"…")
    coturn.start()                     # returns once it answers a STUN binding
    username, password = coturn.mint(ttl=600)
    ice = coturn.ice_config(policy="relay")
    coturn.stop()

It runs unprivileged-style with no configuration file and the REST secret scheme
(``--use-auth-secret``), TURN over UDP and TCP on ``port``, relays from ``addr``, no
TLS/DTLS, no CLI, logging to stdout (kept for failure messages). The namespace is
the network: nothing reaches the machine's own interfaces. The process also stops
with the Lan (``Host.popen`` registers it).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from p2pchat.transport.ice_config import IceConfig
from signaling.turn_credentials import mint
from tests.lan.netns import PYTHON, Host

TURNSERVER = "turnserver"
DEFAULT_PORT = 3478
REALM = "p2pchat.test"
#: A STUN binding request from inside the namespace; prints "ok" once coturn answers.
_PROBE = """
import asyncio, sys
from aioice import stun
from aioice.utils import random_transaction_id

class P(asyncio.DatagramProtocol):
    def __init__(self): self.got = asyncio.get_running_loop().create_future()
    def datagram_received(self, data, addr):
        if not self.got.done(): self.got.set_result(data)

async def main():
    loop = asyncio.get_running_loop()
    req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST,
                       transaction_id=random_transaction_id())
    for _ in range(100):
        t, p = await loop.create_datagram_endpoint(P, remote_addr=(sys.argv[1], int(sys.argv[2])))
        t.sendto(bytes(req))
        try:
            await asyncio.wait_for(p.got, 0.2)
            print("ok"); return
        except asyncio.TimeoutError:
            pass
        finally:
            t.close()
    print("no answer")

asyncio.run(main())
"""


class Coturn:
    """One ``turnserver`` on ``addr:port`` in ``host``'s namespace."""

    def __init__(self, host: Host, addr: str, *, secret: bytes, port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.addr = addr
        self.port = port
        self.secret = secret
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: list[str] = []
        self._dir = tempfile.TemporaryDirectory(prefix="p2pchat-coturn-")

    @property
    def turn_url(self) -> str:
        return f"turn:{self.addr}:{self.port}?transport=udp"

    @property
    def stun_url(self) -> str:
        return f"stun:{self.addr}:{self.port}"

    @property
    def log(self) -> str:
        """What coturn printed so far (for failure messages)."""
        return "\n".join(self._log)

    def start(self) -> None:
        argv = [
            TURNSERVER, "-n",
            "--listening-ip", self.addr, "--listening-port", str(self.port),
            "--relay-ip", self.addr, "--min-port", "49152", "--max-port", "49407",
            "--use-auth-secret", "--static-auth-secret", self.secret.decode(),
            "--realm", REALM,
            "--no-tls", "--no-dtls", "--no-cli", "--no-software-attribute",
            "--log-file", "stdout", "--simple-log",
            "--pidfile", str(Path(self._dir.name) / "turnserver.pid"),
        ]  # fmt: skip
        if self.addr.startswith("127."):
            argv.append("--allow-loopback-peers")
        self._proc = self.host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read_log, daemon=True).start()
        probe = self.host.run([PYTHON, "-c", _PROBE, self.addr, str(self.port)])
        if probe.stdout.strip() != "ok":
            self.stop()
            raise RuntimeError(f"coturn did not answer on {self.addr}:{self.port}:\n{self.log}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._dir.cleanup()

    def mint(
        self, ttl: int, *, room_id: str = "testroom00", now: float | None = None
    ) -> tuple[str, str]:
        """REST credentials as the signaling server mints them; ``ttl`` < 0 gives an
        expired one."""
        return mint(self.secret, room_id, time.time() if now is None else now, ttl)

    def ice_config(self, *, policy: str = "all", ttl: int = 600) -> IceConfig:
        username, password = self.mint(ttl)
        return IceConfig(
            turn_url=self.turn_url,
            turn_username=username,
            turn_credential=password,
            stun_url=self.stun_url,
            policy=policy,
        )

    @staticmethod
    def new_secret() -> bytes:
        return secrets.token_urlsafe(24).encode()

    def _read_log(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            if len(self._log) < 2000:  # bounded: a test's worth of lines
                self._log.append(line.decode(errors="replace").rstrip())
