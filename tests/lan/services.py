"""Server processes for the Internet harness (tests/lan/wan.py), run inside a namespace.

    redis = RedisServer(net.srv, net.redis_address)          # started, answering PING
    redis.kill(); redis.restart()                            # SIGKILL, then same port
    leaf = ca.issue("signal", [net.shared_address, *net.instance_addresses])
    inst = SignalInstance(net.srv, [net.instance_addresses[0]], 8443, certificate=leaf)
    inst.url                                                 # https://10.X.0.11:8443
    turn = Coturn(net.srv, net.turn_address)                 # REST-API secret in a file
    username, password = turn.mint(ttl=600)                  # as signal-server mints it
    ice = turn.ice_config(policy="relay")                    # for a DataChannelLink

Each service is started at construction and waits until it is ready (a line it prints
once it listens), or raises :class:`ServiceError` with what it printed. ``kill()`` is
SIGKILL (a crash, nothing flushed); ``restart()`` starts the same command line again
(same address and port); the Internet's ``close()`` stops whatever is left.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from p2pchat.transport.ice_config import IceConfig
from signaling.turn_credentials import mint
from tests.lan.cert_authority import LeafCertificate
from tests.lan.netns import PYTHON, Host

REPO_ROOT = Path(__file__).resolve().parents[2]
#: How long a service may take to say it is ready (generous: the machine is shared).
START_TIMEOUT = 30.0
REDIS_PORT = 6379
SIGNAL_PORT = 8443
TURN_PORT = 3478
TURN_REALM = "p2pchat.test"


def scratch_dir(kind: str) -> Path:
    """A fresh temporary directory for one service, removed when the test run ends."""
    path = Path(tempfile.mkdtemp(prefix=f"p2pchat-{kind}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class ServiceError(RuntimeError):
    """A service did not start (the message holds what it printed)."""


class Service:
    """One server process in ``host``, restartable with the same command line."""

    #: Printed by the program once it accepts connections.
    ready_line = ""

    def __init__(self, host: Host, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.host = host
        self.argv = argv
        self._env = None if env is None else {**os.environ, **env}
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def output(self) -> str:
        """Everything the program printed (stdout and stderr), over all its runs."""
        with self._cond:
            return "".join(self._lines)

    def start(self) -> None:
        """Start the program and wait until it prints :attr:`ready_line`."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServiceError(f"{self.argv[0]} is already running")
        with self._cond:
            mark = len(self._lines)
        self.proc = self.host.popen(
            self.argv, cwd=str(REPO_ROOT), env=self._env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        self._wait_ready(mark)

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        """Kill if still running, then start the same command line again."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """SIGTERM (then SIGKILL after 5 s): a clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    # --- internals ---------------------------------------------------------------------

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        # Always read: a full pipe would block the server.
        assert proc.stdout is not None
        for raw in proc.stdout:
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        proc.wait()
        with self._cond:
            self._lines.append(f"[exited {proc.returncode}]\n")
            self._cond.notify_all()

    def _wait_ready(self, mark: int) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        with self._cond:
            while True:
                new = "".join(self._lines[mark:])
                if self.ready_line in new:
                    return
                if "[exited " in new:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        raise ServiceError(
            f"{' '.join(self.argv)} in {self.host.name} did not start; it printed:\n{new}"
        )


class RedisServer(Service):
    """``redis-server`` on ``addr:port`` in ``host``: no persistence (a restart loses
    every key, as research §4 verified), no protected mode (the namespace is ours)."""

    ready_line = "Ready to accept connections"

    def __init__(self, host: Host, addr: str, port: int = REDIS_PORT) -> None:
        self.addr = addr
        self.port = port
        self.workdir = scratch_dir("redis")
        argv = [
            "redis-server", "--bind", addr, "--port", str(port),
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--dir", str(self.workdir), "--logfile", "", "--daemonize", "no",
        ]  # fmt: skip
        super().__init__(host, argv)

    @property
    def url(self) -> str:
        return f"redis://{self.addr}:{self.port}/0"


class SignalInstance(Service):
    """``python -m signaling.cli`` (``p2pchat signal-server``) in ``host``, listening on
    every address of ``addresses`` at ``port``.

    With ``certificate`` it serves that chain (from :class:`CertAuthority`); without, its
    own self-signed one in a fresh data directory. The flags of issue 14 are built from
    parameters and passed only when set (``reuse_port``, ``redis_url``, TURN): a server
    that does not know one refuses to start, with a clear :class:`ServiceError`.
    """

    ready_line = "signaling server listening on"

    def __init__(
        self,
        host: Host,
        addresses: Sequence[str],
        port: int = SIGNAL_PORT,
        *,
        certificate: LeafCertificate | None = None,
        redis_url: str | None = None,
        reuse_port: bool = False,
        turn_urls: Sequence[str] = (),
        stun_urls: Sequence[str] = (),
        turn_secret_file: Path | None = None,
        owner_token_file: Path | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("a signaling instance needs at least one address")
        self.addresses = list(addresses)
        self.port = port
        self.data_dir = scratch_dir("signal")
        argv = [PYTHON, "-m", "signaling.cli", "--data-dir", str(self.data_dir)]
        for addr in self.addresses:
            argv += ["--host", addr]
        argv += ["--port", str(port)]
        if certificate is not None:
            argv += ["--cert", str(certificate.cert_file), "--key", str(certificate.key_file)]
        if owner_token_file is not None:
            argv += ["--owner-token-file", str(owner_token_file)]
        if redis_url is not None:
            argv += ["--redis", redis_url]
        if reuse_port:
            argv.append("--reuse-port")
        for url in turn_urls:
            argv += ["--turn-url", url]
        for url in stun_urls:
            argv += ["--stun-url", url]
        if turn_secret_file is not None:
            argv += ["--turn-secret-file", str(turn_secret_file)]
        argv += list(extra_args)
        super().__init__(host, argv, env=env)

    def url_for(self, address: str | None = None) -> str:
        """``https://ADDRESS:PORT`` (the first address by default)."""
        return f"https://{address or self.addresses[0]}:{self.port}"

    @property
    def url(self) -> str:
        return self.url_for()


class Coturn(Service):
    """coturn's ``turnserver`` on ``addr:port`` (UDP and TCP) in ``host``, with the
    REST-API shared secret (research §2: flags verified with coturn 4.6.1). No TLS, no
    CLI, its SQLite file in a temporary directory (not /var/lib/turn)."""

    #: The last line coturn prints at start-up; it never says "listening", so
    #: :meth:`start` then waits for the sockets themselves.
    ready_line = "Total General servers"

    def __init__(
        self,
        host: Host,
        addr: str,
        port: int = TURN_PORT,
        *,
        secret: str | None = None,
        relay_ports: tuple[int, int] = (49152, 49407),
    ) -> None:
        self.addr = addr
        self.port = port
        self.secret = secret if secret is not None else secrets.token_urlsafe(24)
        self.workdir = scratch_dir("coturn")
        #: What ``signal-server --turn-secret-file`` reads: the secret on the first line.
        self.secret_file = self.workdir / "turn-secret"
        self.secret_file.touch(mode=0o600)
        self.secret_file.write_text(self.secret + "\n")
        argv = [
            "turnserver", "-n",
            "--listening-ip", addr, "--listening-port", str(port), "--relay-ip", addr,
            "--min-port", str(relay_ports[0]), "--max-port", str(relay_ports[1]),
            "--use-auth-secret", "--static-auth-secret", self.secret, "--realm", TURN_REALM,
            "--no-tls", "--no-dtls", "--no-cli", "--log-file", "stdout", "--simple-log",
            "--pidfile", str(self.workdir / "turnserver.pid"),
            "--db", str(self.workdir / "turndb"),
        ]  # fmt: skip
        super().__init__(host, argv)

    def start(self) -> None:
        super().start()
        self._wait_listening()

    def mint(
        self, ttl: int, *, room_id: str = "testroom00", now: float | None = None
    ) -> tuple[str, str]:
        """A REST-API credential as ``signal-server`` mints it (the product's own
        :func:`signaling.turn_credentials.mint`), valid for ``ttl`` seconds (negative:
        already expired): ``<expiry unix s>:r<room>`` and base64(HMAC-SHA1)."""
        return mint(self.secret.encode(), room_id, time.time() if now is None else now, ttl)

    def ice_config(self, *, policy: str = "all", ttl: int = 600) -> IceConfig:
        """What a node's DataChannelLink takes: this server's TURN (UDP) and STUN URLs
        with a fresh credential."""
        username, password = self.mint(ttl)
        return IceConfig(
            turn_url=self.url(),
            turn_username=username,
            turn_credential=password,
            stun_url=self.url("stun"),
            policy=policy,
        )

    def url(self, scheme: str = "turn", transport: str = "udp") -> str:
        """``turn:ADDR:PORT?transport=udp`` (or tcp), or ``stun:ADDR:PORT``."""
        base = f"{scheme}:{self.addr}:{self.port}"
        return base if scheme == "stun" else f"{base}?transport={transport}"

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        wanted = f"{self.addr}:{self.port}"
        while True:
            udp = self.host.run(["ss", "-Hlnu", "src", wanted]).stdout
            tcp = self.host.run(["ss", "-Hlnt", "src", wanted]).stdout
            if udp.strip() and tcp.strip():
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"turnserver never listened on {wanted}:\n{self.output}")
            time.sleep(0.05)
