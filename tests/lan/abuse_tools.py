"""Abuse from the LAN: an attacker host that throws junk at every port a node opens.

Two halves:

* test side: :class:`WatchedNode` (a :class:`ChatNode` whose daemon stderr is read,
  so a chatty node never blocks on a full pipe, and whose RSS can be read),
  :func:`run_attack` / :func:`start_attack` (run one attack in the attacker's
  namespace), :func:`record` (figures as JSON under ``bench/results/``);
* attacker side: ``python -c "from tests.lan.abuse_tools import attack_main; ..."``
  with one mode per attack (``signaling-junk``, ``http-flood``, ``invite-junk``,
  ``slowloris``, ``contact-flood``, ``mdns-flood``); each prints one JSON object.

The attacker uses nothing but sockets, aiohttp's client, PyNaCl and zeroconf's record
classes: it never asks the node anything but what any LAN host could send.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import resource
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from tests.lan.chat_nodes import ChatNode
from tests.lan.netns import Host

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = REPO_ROOT / "bench" / "results" / "abuse_lan.json"
_LAUNCH = "import sys; from tests.lan.abuse_tools import attack_main; attack_main(sys.argv[1:])"
# Longer than any server-side timeout (request head 10-15 s, TLS handshake 5 s): a probe
# that waits this long for the server's verdict has seen it, or found a real hang.
PATIENCE = 40.0


# --- test side -----------------------------------------------------------------------


class WatchedNode(ChatNode):
    """A ChatNode whose daemon stderr is drained into :attr:`stderr_lines`."""

    def start(self, timeout: float = 30.0, *, prefix: Sequence[str] = ()) -> None:
        super().start(timeout, prefix=prefix)
        assert self.daemon is not None
        assert self.daemon.stderr is not None
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._drain, args=(self.daemon.stderr,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for raw in stream:
            self.stderr_lines.append(raw.decode("utf-8", "replace"))

    def stderr_text(self) -> str:
        return "".join(getattr(self, "stderr_lines", []))

    def rss_kb(self) -> int:
        """VmRSS of the daemon process (same pid namespace: /proc works from here)."""
        assert self.daemon is not None
        for line in Path(f"/proc/{self.daemon.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def assert_alive(self) -> None:
        assert self.daemon is not None
        assert self.daemon.poll() is None, (
            f"{self.name}'s daemon died: {self.stderr_text()[-3000:]}"
        )

    def public_key_b64(self) -> str:
        return str(json.loads(self.cli("id", "--json", check=True).stdout)["public_key"])

    def open_fds(self) -> int:
        """How many file descriptors the daemon holds right now."""
        assert self.daemon is not None
        return len(os.listdir(f"/proc/{self.daemon.pid}/fd"))

    def fd_limits(self) -> tuple[int, int]:
        """The daemon's (soft, hard) RLIMIT_NOFILE, from /proc/PID/limits."""
        assert self.daemon is not None
        for line in Path(f"/proc/{self.daemon.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
        raise AssertionError("no 'Max open files' line")


class Attack:
    """One attack running in the attacker's namespace."""

    def __init__(self, proc: subprocess.Popen[bytes], mode: str) -> None:
        self.proc, self.mode = proc, mode

    def first_line(self) -> dict[str, Any]:
        """The first JSON line the attack prints (attacks that report while running)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            _, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"attack {self.mode} ended early:\n{err.decode()[-4000:]}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def result(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait for the attack to end (its stdin is closed first: attacks that hold
        something until told to stop stop then); its last JSON line."""
        out, err = self.proc.communicate(timeout=timeout)
        text = err.decode("utf-8", "replace")
        assert self.proc.returncode == 0, f"attack {self.mode} failed:\n{text[-4000:]}"
        lines = [ln for ln in out.decode().splitlines() if ln.strip()]
        assert lines, f"attack {self.mode} printed nothing:\n{text[-4000:]}"
        doc: dict[str, Any] = json.loads(lines[-1])
        return doc


def start_attack(host: Host, mode: str, *args: object, seed: int) -> Attack:
    """Start attack ``mode``; its random inputs come from ``random.Random(seed)``."""
    proc = host.python(
        _LAUNCH, mode, str(seed), *map(str, args), cwd=str(REPO_ROOT),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    return Attack(proc, mode)


def run_attack(
    host: Host, mode: str, *args: object, seed: int, timeout: float = 180.0
) -> dict[str, Any]:
    return start_attack(host, mode, *args, seed=seed).result(timeout)


def record(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` and merge them under ``name`` into bench/results/abuse_lan.json."""
    print(json.dumps({name: figures}, indent=1, sort_keys=True))
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(RESULTS_FILE.read_text())
    except (OSError, ValueError):
        doc = {}
    doc[name] = {**figures, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp = RESULTS_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(RESULTS_FILE)


def abuse_seed(test: str) -> int:
    """The seed of a test's random inputs, printed (pytest shows it on failure);
    ``P2PCHAT_ABUSE_SEED=N`` replays a run."""
    env = os.environ.get("P2PCHAT_ABUSE_SEED", "").strip()
    seed = int(env) if env else random.SystemRandom().randrange(2**32)
    print(f"[{test}] seed {seed} (replay with P2PCHAT_ABUSE_SEED={seed})", flush=True)
    return seed


def statuses_4xx_only(histogram: dict[str, int]) -> list[str]:
    """Keys of a status histogram that are not 4xx (or 2xx for accepted requests)."""
    return [k for k in histogram if not (k.isdigit() and 200 <= int(k) < 500)]


# --- attacker side -------------------------------------------------------------------


def attack_main(argv: list[str]) -> None:
    """``MODE SEED ARGS...``: each attack takes its RNG first (replayable junk)."""
    mode, seed, *args = argv
    modes: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
        "signaling-junk": _signaling_junk,
        "http-flood": _http_flood,
        "invite-junk": _invite_junk,
        "slowloris": _slowloris,
        "contact-flood": _contact_flood,
        "mdns-flood": _mdns_flood,
        "udp-junk": _udp_junk,
        "idle-hold": _idle_hold,
    }
    result = asyncio.run(modes[mode](random.Random(int(seed)), *args))
    print(json.dumps(result), flush=True)


def _tls_client() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _raw_exchange(
    host: str, port: int, payload: bytes, *, tls: bool = False, wait: float = PATIENCE
) -> str:
    """Send ``payload`` on a fresh connection; the status line we get back, or what
    happened instead (``closed``, ``reset``, ``timeout``, ``tls-failed``).

    A payload that may still become a valid request (``G``, say) is rightly waited on
    until the server's request-head timeout and then closed: ``wait`` outlasts it, so
    ``timeout`` means the server held the connection past its own bound."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_tls_client() if tls else None), wait
        )
    except ssl.SSLError:
        return "tls-failed"
    try:
        writer.write(payload)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), wait)
        return line.decode("latin-1").strip() or "closed"
    except ConnectionError:
        return "reset"
    except ssl.SSLError:
        return "tls-failed"
    except TimeoutError:
        return "timeout"
    finally:
        writer.close()


def _status_of(line: str) -> str:
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return parts[1]
    return line


def _lan_envelope(recipient_b64: str, *, kind: int = 3, direction: int = 1, body: bytes = b"",
                  ts_offset_ms: int = 0) -> bytes:  # fmt: skip
    from nacl.signing import SigningKey

    from p2pchat.crypto.encoding import b64url_decode
    from p2pchat.crypto.envelope import Direction, LanEnvelopes, ReplayGuard
    from p2pchat.crypto.identity import Identity

    me = Identity(bytes(SigningKey.generate()))
    envelopes = LanEnvelopes(me, b64url_decode(recipient_b64), ReplayGuard())
    now = int(time.time() * 1000) + ts_offset_ms
    return envelopes.seal(kind, Direction(direction), os.urandom(16), body, now)


async def _raw_probes(
    host: str, port: int, payloads: list[bytes], *, tls: bool = False
) -> dict[str, int]:
    """:func:`_raw_exchange` for each payload, all at once (some wait for the server's
    timeout); a histogram of the outcomes."""
    outcomes = await asyncio.gather(*(_raw_exchange(host, port, p, tls=tls) for p in payloads))
    return dict(collections.Counter(_status_of(outcome) for outcome in outcomes))


async def _signaling_junk(
    rng: random.Random, host: str, port_text: str, bob_key: str
) -> dict[str, Any]:
    """Everything but a flood at the LAN signaling port; paced under its rate limit."""
    import aiohttp

    port = int(port_text)
    out: dict[str, Any] = {}
    # Not HTTP at all, on raw TCP.
    sizes = (1, 16, 300, 4096, 65536)
    out["raw_random_bytes"] = await _raw_probes(
        host, port, [rng.randbytes(size) for size in sizes for _ in range(3)]
    )
    # HTTP that is broken in the head.
    malformed_http = {
        "no_version": b"POST /v1/envelope\r\n\r\n",
        "bad_header_line": b"POST /v1/envelope HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        "bad_content_length": b"POST /v1/envelope HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "negative_content_length": b"POST /v1/envelope HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "two_content_lengths": (
            b"POST /v1/envelope HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 9\r\n\r\nabc"
        ),
        "bad_chunk": (
            b"POST /v1/envelope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
        ),
        "huge_header_line": b"POST /v1/envelope HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
        "many_headers": b"POST /v1/envelope HTTP/1.1\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(500))
        + b"\r\n",
        "nul_in_path": b"POST /v1/\x00envelope HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "http2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "utf8_method": "PÖST /v1/envelope HTTP/1.1\r\n\r\n".encode(),
        "claims_10GB": b"POST /v1/envelope HTTP/1.1\r\nContent-Length: 10000000000\r\n\r\nab",
    }
    heads: dict[str, str] = {}
    for name, payload in malformed_http.items():
        heads[name] = _status_of(await _raw_exchange(host, port, payload))
        await asyncio.sleep(0.06)
    out["malformed_http"] = heads
    # Envelopes: cut short, wrong scheme/version, tampered, stale, reflected, odd kinds.
    real = _lan_envelope(bob_key, body=b'{"name": "mallory"}')
    bodies: dict[str, bytes] = {
        "empty": b"",
        "random_300": rng.randbytes(300),
        "json_not_envelope": b'{"v": 1, "kind": "offer", "sdp": "v=0"}',
        "truncated_json": b'{"v": 1, "kind": "off',
        "wrong_version": bytes([2]) + real[1:],
        "version_0": bytes([0]) + real[1:],
        "wrong_scheme_link": real[:1] + bytes([2]) + real[2:],
        "unknown_scheme": real[:1] + bytes([9]) + real[2:],
        "tampered": real[:-1] + bytes([real[-1] ^ 1]),
        "stale": _lan_envelope(bob_key, ts_offset_ms=-3_600_000),
        "from_the_future": _lan_envelope(bob_key, ts_offset_ms=3_600_000),
        "reflected_direction": _lan_envelope(bob_key, direction=2),
        "unknown_kind": _lan_envelope(bob_key, kind=99),
        "answer_unasked": _lan_envelope(bob_key, kind=2, direction=2),
        "offer_from_stranger": _lan_envelope(bob_key, kind=1, body=b"{}"),
        "accept_unasked": _lan_envelope(bob_key, kind=4),
        "request_json_bomb": _lan_envelope(bob_key, body=b"[" * 40000 + b"]" * 8000),
    }
    for cut in (1, 2, 3, 20, 34, 58, 60, 74, 100, len(real) - 1):
        bodies[f"cut_at_{cut}"] = real[:cut]
    replayed = _lan_envelope(bob_key, body=b'{"name": "replay-me"}')
    bodies["replay_first"] = replayed
    bodies["replay_second"] = replayed
    # Random bytes that happen to start like a LAN envelope (version 1, scheme 1) are
    # refused for failing authentication (403), not as malformed (400).
    out["random_300_head"] = bodies["random_300"][:2].hex()
    url = f"http://{host}:{port}/v1/envelope"
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PATIENCE)) as http:
        for name, body in bodies.items():
            async with http.post(url, data=body) as r:
                results[name] = [r.status, (await r.text())[:120]]
            await asyncio.sleep(0.06)
        await asyncio.sleep(1.0)
        extra: dict[str, Any] = {}
        async with http.post(url, data=rng.randbytes(70 * 1024)) as r:
            extra["oversized_70KB"] = r.status
        await asyncio.sleep(0.1)

        async def chunks() -> Any:
            for _ in range(80):
                yield rng.randbytes(1024)

        try:
            async with http.post(url, data=chunks()) as r:
                extra["oversized_chunked_80KB"] = r.status
        except aiohttp.ClientError as exc:  # the server may hang up mid-body
            extra["oversized_chunked_80KB"] = f"error:{type(exc).__name__}"
        await asyncio.sleep(0.1)
        for name, method, path in (("get", "GET", "/v1/envelope"), ("wrong_path", "POST", "/x"),
                                   ("put", "PUT", "/v1/envelope"),
                                   ("dotdot", "GET", "/v1/../../etc/passwd")):  # fmt: skip
            async with http.request(method, f"http://{host}:{port}{path}", data=b"x") as r:
                extra[name] = r.status
            await asyncio.sleep(0.06)
    out["envelopes"] = results
    out["other_requests"] = extra
    return out


async def _http_flood(
    rng: random.Random, url: str, count_text: str, seconds_text: str, tls_text: str,
    connections_text: str,
) -> dict[str, Any]:  # fmt: skip
    """``count`` requests as fast as ``connections`` keep-alive connections go, stopping
    at ``seconds``. (Keep ``connections`` under the server's per-address cap: this is
    about the request rate limit; the connection cap has its own test.)"""
    import aiohttp

    count, seconds, tls = int(count_text), float(seconds_text), tls_text == "tls"
    connections = int(connections_text)
    bodies = [rng.randbytes(rng.randint(0, 200)) for _ in range(count)]
    post = url.endswith("/v1/envelope")
    histogram: collections.Counter[str] = collections.Counter()
    sent = 0
    start = time.monotonic()
    deadline = start + seconds
    connector = aiohttp.TCPConnector(limit=connections, ssl=not tls)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=PATIENCE)
    ) as http:

        async def worker() -> None:
            nonlocal sent
            while sent < count and time.monotonic() < deadline:
                sent += 1
                try:
                    ctx = http.post(url, data=bodies[sent - 1]) if post else http.get(url)
                    async with ctx as r:
                        await r.read()
                        histogram[str(r.status)] += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    histogram[f"error:{type(exc).__name__}"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.monotonic() - start
    return {"sent": sent, "seconds": round(elapsed, 2), "per_second": round(sent / elapsed),
            "statuses": dict(histogram)}  # fmt: skip


async def _ws_probe(http: Any, url: str, *frames: tuple[str, bytes | str]) -> str:
    """Open a WebSocket, send ``frames`` (("bin"|"text", data)), report how it ended."""
    import aiohttp

    try:
        ws = await http.ws_connect(url, max_msg_size=0, autoping=True)
    except aiohttp.WSServerHandshakeError as exc:
        return f"http:{exc.status}"
    try:
        for kind, data in frames:
            if kind == "bin":
                assert isinstance(data, bytes)
                await ws.send_bytes(data)
            else:
                await ws.send_str(str(data))
        while True:
            msg = await ws.receive(timeout=PATIENCE)
            if msg.type is aiohttp.WSMsgType.CLOSE:  # the code in the server's close frame
                return f"close:{msg.data}"
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return f"close:{ws.close_code}"
            if msg.type is aiohttp.WSMsgType.ERROR:
                return f"error:{ws.close_code}"
    except TimeoutError:
        return "still-open"
    except (aiohttp.ClientError, ConnectionError) as exc:
        return f"error:{type(exc).__name__}:{ws.close_code}"
    finally:
        await ws.close()


async def _invite_junk(rng: random.Random, url: str) -> dict[str, Any]:
    """Junk at the invite server: raw TCP, broken TLS, odd paths, WebSocket abuse."""
    import aiohttp
    from yarl import URL

    from p2pchat.crypto.envelope import Direction, LinkEnvelopes, ReplayGuard
    from p2pchat.crypto.link import LinkSecret

    link = URL(url)
    host, port = str(link.host), int(link.port or 443)
    room = link.path.rsplit("/", 1)[-1]
    out: dict[str, Any] = {}
    # Random bytes on the TLS port, before TLS: a TLS alert or a close (a start that
    # could be a ClientHello is waited on until the handshake deadline).
    out["raw_random_bytes"] = await _raw_probes(
        host, port, [rng.randbytes(size) for size in (1, 300, 4096, 65536)]
    )
    line = await _raw_exchange(host, port, b"GET /c/x HTTP/1.1\r\nHost: x\r\n\r\n")
    out["plain_http_on_tls_port"] = line[:60]
    heads = [b"GET /c/" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
             b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(500)) + b"\r\n",
             b"GET / HTTP/1.1\r\nbroken\r\n\r\n"]  # fmt: skip
    payloads = [rng.randbytes(size) for size in (1, 300, 4096)] + heads
    out["tls_then_junk"] = await _raw_probes(host, port, payloads, tls=True)
    base = f"https://{host}:{port}"
    pages: dict[str, Any] = {}
    secret = LinkSecret.from_fragment(link.fragment)
    envelopes = LinkEnvelopes(secret.envelope_key, ReplayGuard())
    now = int(time.time() * 1000)
    real_offer = envelopes.seal(
        1, Direction.INITIATOR, rng.randbytes(16), b'{"sdp": "v=0", "guest": "x"}', now
    )
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=False), timeout=aiohttp.ClientTimeout(total=PATIENCE)
    ) as http:
        for name, method, path, body in (
            ("page_random_room", "GET", "/c/" + "B" * 22, None),
            ("page_garbage_room", "GET", "/c/%00%ff..%2f..", None),
            ("page_dotdot", "GET", "/c/../../etc/passwd", None),
            ("static_dotdot", "GET", "/static/../../../../etc/passwd", None),
            ("static_encoded_dotdot", "GET", "/static/%2e%2e/%2e%2e/etc/passwd", None),
            ("static_missing", "GET", "/static/nope.js", None),
            ("root", "GET", "/", None),
            ("post_page_8KB", "POST", f"/c/{room}", rng.randbytes(8192)),
            ("post_ws_1MB", "POST", f"/ws/{room}", rng.randbytes(1 << 20)),
            ("ws_without_upgrade", "GET", f"/ws/{room}", None),
            ("owner_route", "GET", f"/owner/{room}", None),
        ):
            try:
                async with http.request(method, base + path, data=body) as r:
                    pages[name] = r.status
            except aiohttp.ClientError as exc:
                pages[name] = f"error:{type(exc).__name__}"
            await asyncio.sleep(0.06)
        out["pages"] = pages
        ws_url = f"wss://{host}:{port}/ws/{room}"
        ws: dict[str, str] = {}
        ws["unknown_room"] = await _ws_probe(
            http, f"wss://{host}:{port}/ws/{'C' * 22}", ("bin", b"\x01x")
        )
        ws["text_message"] = await _ws_probe(http, ws_url, ("text", "hello"))
        ws["oversized_200KB"] = await _ws_probe(
            http, ws_url, ("bin", b"\x02" + rng.randbytes(200_000))
        )
        ws["oversized_2MB"] = await _ws_probe(
            http, ws_url, ("bin", b"\x02" + rng.randbytes(2_000_000))
        )
        ws["empty_binary"] = await _ws_probe(http, ws_url, ("bin", b""))
        ws["unknown_type"] = await _ws_probe(http, ws_url, ("bin", b"\x7f" + rng.randbytes(50)))
        ws["signal_random"] = await _ws_probe(http, ws_url, ("bin", b"\x01" + rng.randbytes(300)))
        ws["signal_truncated_real"] = await _ws_probe(
            http, ws_url, ("bin", b"\x01" + real_offer[:40])
        )
        ws["signal_wrong_version"] = await _ws_probe(
            http, ws_url, ("bin", b"\x01" + bytes([7]) + real_offer[1:])
        )
        ws["signal_wrong_scheme"] = await _ws_probe(
            http, ws_url, ("bin", b"\x01" + real_offer[:1] + bytes([1]) + real_offer[2:])
        )
        ws["signal_sealed_junk_sdp"] = await _ws_probe(http, ws_url, ("bin", b"\x01" + real_offer))
        ws["message_flood"] = await _ws_probe(
            http, ws_url, *[("bin", b"\x02" + rng.randbytes(20)) for _ in range(400)]
        )
        # More sockets from one address than the bound: the extra ones are refused.
        held = []
        ends: collections.Counter[str] = collections.Counter()
        for _ in range(12):
            try:
                sock = await http.ws_connect(ws_url)
            except aiohttp.WSServerHandshakeError as exc:
                ends[f"http:{exc.status}"] += 1
                continue
            held.append(sock)
        await asyncio.sleep(0.5)
        for sock in held:
            try:
                msg = await sock.receive(timeout=0.3)
                ends["closed" if msg.type is not aiohttp.WSMsgType.TEXT else "notice"] += 1
            except TimeoutError:
                ends["open"] += 1
        for sock in held:
            await sock.close()
            if sock.close_code is not None and sock.close_code != 1000:
                ends[f"close:{sock.close_code}"] += 1
        ws["12_sockets_one_address"] = json.dumps(dict(ends), sort_keys=True)
        out["websocket"] = ws
    return out


async def _slowloris(rng: random.Random, host: str, port_text: str, count_text: str,
                     interval_text: str,
                     cap_text: str, tls_text: str, style: str) -> dict[str, Any]:  # fmt: skip
    """``count`` sockets that send one byte every ``interval`` s and never finish.

    ``style``: ``head`` (the request head trickles in) or ``body`` (a full head with
    Content-Length, then the body trickles in). Runs until the server has closed
    every socket, or ``cap`` seconds; reports how many it closed and when.
    """
    port, count, interval, cap = (
        int(port_text),
        int(count_text),
        float(interval_text),
        float(cap_text),
    )
    tls = tls_text == "tls"
    if style == "head":
        head = b"POST /v1/envelope HTTP/1.1\r\nHost: x\r\n"
        drip = b"X-Slow: " + b"a" * 10000
    else:
        head = b"POST /v1/envelope HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"
        drip = rng.randbytes(4000)
    start = time.monotonic()
    closed_after: list[float] = []
    opened = 0
    refused = 0

    async def one(i: int) -> None:
        nonlocal opened, refused
        await asyncio.sleep(i * 0.005)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=_tls_client() if tls else None), 30
            )
        except (OSError, TimeoutError, ssl.SSLError):
            refused += 1
            return
        opened += 1
        t0 = time.monotonic()
        try:
            writer.write(head)
            await writer.drain()
            k = 0
            while time.monotonic() - start < cap:
                try:
                    data = await asyncio.wait_for(reader.read(4096), interval)
                except TimeoutError:
                    writer.write(drip[k : k + 1])
                    k += 1
                    await writer.drain()
                    continue
                if not data:  # the server hung up: we were timed out
                    closed_after.append(time.monotonic() - t0)
                    return
                # A response (408/400...) then close: also a time-out, read to EOF.
            return
        except (ConnectionError, ssl.SSLError, OSError):
            closed_after.append(time.monotonic() - t0)
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    closed_after.sort()
    return {
        "sockets": count, "opened": opened, "refused": refused,
        "closed_by_server": len(closed_after), "still_open_at_cap": opened - len(closed_after),
        "interval_s": interval, "cap_s": cap, "style": style,
        "closed_after_s_median": round(closed_after[len(closed_after) // 2], 1) if closed_after else None,
        "closed_after_s_max": round(closed_after[-1], 1) if closed_after else None,
    }  # fmt: skip


async def _contact_flood(
    rng: random.Random, url: str, bob_key: str, count_text: str, seconds_text: str
) -> dict[str, Any]:
    """``count`` contact requests over ``seconds``, each sealed from a new throwaway key."""
    import aiohttp

    count, seconds = int(count_text), float(seconds_text)
    histogram: collections.Counter[str] = collections.Counter()
    sent = 0
    start = time.monotonic()
    deadline = start + seconds
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=32), timeout=aiohttp.ClientTimeout(total=PATIENCE)
    ) as http:

        async def worker() -> None:
            nonlocal sent
            while sent < count and time.monotonic() < deadline:
                sent += 1
                # Spread over the whole time: the rate limit refills as it goes.
                lag = start + sent * seconds / count - time.monotonic()
                if lag > 0:
                    await asyncio.sleep(lag)
                name = f"fake-{sent}-{rng.randbytes(3).hex()}".encode()
                body = _lan_envelope(bob_key, body=b'{"name": "' + name + b'"}')
                try:
                    async with http.post(url, data=body) as r:
                        text = (await r.text())[:40]
                        label = str(r.status)
                        if r.status == 429:
                            label += (
                                " pending" if "pending" in text
                                else " at once" if "at once" in text
                                else " rate"
                            )  # fmt: skip
                        histogram[label] += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    histogram[f"error:{type(exc).__name__}"] += 1

        # As many at once as the node lets one address have: the rate limit and the
        # pending bound are what stop it, not the concurrency cap.
        await asyncio.gather(*(worker() for _ in range(4)))
    elapsed = time.monotonic() - start
    return {"sent": sent, "seconds": round(elapsed, 2), "per_second": round(sent / elapsed),
            "statuses": dict(histogram)}  # fmt: skip


async def _mdns_flood(
    rng: random.Random, my_ip: str, count_text: str, target_port_text: str
) -> dict[str, Any]:
    """``count`` distinct, well-formed ``_p2pchat._tcp`` adverts (one packet each, with
    SRV/TXT/A as additional records), plus random-byte datagrams, to 224.0.0.251:5353."""
    from nacl.signing import SigningKey

    count, target_port = int(count_text), int(target_port_text)
    sock = mdns_sender(my_ip)
    group = ("224.0.0.251", 5353)
    start = time.monotonic()
    sent_bytes = 0
    for i in range(count):
        key = bytes(SigningKey.generate().verify_key)
        out = advert_packet(
            key, f"fake{i}", f"fake{i} ({_pid4(key)})", f"fake-{i}", target_port, my_ip
        )
        for packet in out.packets():
            sock.sendto(packet, group)
            sent_bytes += len(packet)
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    junk = 0
    for _ in range(500):
        packet = rng.randbytes(rng.randint(1, 1400))
        sock.sendto(packet, group)
        junk += 1
        sent_bytes += len(packet)
    # A header that claims many records, and a name-compression loop.
    sock.sendto(struct.pack(">6H", 0, 0x8400, 0, 65535, 65535, 65535), group)
    sock.sendto(struct.pack(">6H", 0, 0x8400, 0, 1, 0, 0) + b"\xc0\x0c" + b"\x00" * 10, group)
    sock.close()
    return {"adverts": count, "junk_datagrams": junk + 2, "bytes": sent_bytes,
            "seconds": round(time.monotonic() - start, 2)}  # fmt: skip


async def _udp_junk(
    rng: random.Random, host: str, ports_text: str, per_port_text: str
) -> dict[str, Any]:
    """Random datagrams (STUN-looking and not) to each of ``ports`` (comma-separated)."""
    ports = [int(p) for p in ports_text.split(",") if p]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for port in ports:
        for i in range(int(per_port_text)):
            if i % 3 == 0:  # a STUN binding request header with a random body
                body = rng.randbytes(rng.randint(0, 200))
                packet = (
                    struct.pack(">HHI", 0x0001, len(body), 0x2112A442) + rng.randbytes(12) + body
                )
            elif i % 3 == 1:  # DTLS-looking record header
                packet = bytes([22, 0xFE, 0xFD]) + rng.randbytes(rng.randint(10, 1200))
            else:
                packet = rng.randbytes(rng.randint(1, 1400))
            sock.sendto(packet, (host, port))
            sent += 1
            if sent % 200 == 0:
                await asyncio.sleep(0.01)
    sock.close()
    return {"ports": ports, "datagrams": sent}


async def _idle_hold(rng: random.Random, host: str, plain_port_text: str, tls_port_text: str,
                     plain_text: str, tls_text: str, cap_text: str) -> dict[str, Any]:  # fmt: skip
    """Hold ``plain`` idle TCP connections to ``plain_port`` and ``tls`` to ``tls_port``
    (that never send a ClientHello): send nothing, and when the server hangs up, connect
    again after a pause. Prints one ``holding`` line once every connection has been
    tried once, then holds until stdin closes (or ``cap`` seconds) and reports."""
    _raise_own_fd_limit()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=_set_at_stdin_eof, args=(loop, stop), daemon=True).start()
    loop.call_later(float(cap_text), stop.set)
    kinds = {"plain": (int(plain_port_text), int(plain_text)),
             "tls": (int(tls_port_text), int(tls_text))}  # fmt: skip
    stats = {kind: collections.Counter[str]() for kind in kinds}
    first_tries = 0
    all_tried = asyncio.Event()
    total = sum(count for _, count in kinds.values())

    async def keep(kind: str, port: int, delay: float) -> None:
        nonlocal first_tries
        await asyncio.sleep(delay)
        first = True
        counts = stats[kind]
        while not stop.is_set():
            counts["attempts"] += 1
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            except (OSError, TimeoutError):
                counts["connect_failed"] += 1
                reader = None
            if first:
                first, first_tries = False, first_tries + 1
                if first_tries == total:
                    all_tried.set()
            if reader is not None:
                counts["open"] += 1
                counts["max_open"] = max(counts["max_open"], counts["open"])
                hangup = asyncio.ensure_future(reader.read(1))
                stopped = asyncio.ensure_future(stop.wait())
                await asyncio.wait({hangup, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if hangup.done():
                    counts["closed_by_server"] += 1
                    hangup.exception()  # a reset counts as a hang-up too
                else:
                    hangup.cancel()
                counts["open"] -= 1
                writer.close()
            # Reconnect after a pause, as an attacker keeping up the pressure would.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5 + rng.random() / 2)

    tasks = [
        asyncio.ensure_future(keep(kind, port, i * 0.003))
        for kind, (port, count) in kinds.items()
        for i in range(count)
    ]
    await all_tried.wait()
    open_now = {kind: counts["open"] for kind, counts in stats.items()}
    print(json.dumps({"type": "holding", "open": open_now}), flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"type": "done", **{kind: dict(counts) for kind, counts in stats.items()}}


def _raise_own_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _set_at_stdin_eof(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    sys.stdin.buffer.read()
    loop.call_soon_threadsafe(event.set)


if __name__ == "__main__":  # pragma: no cover
    attack_main(sys.argv[1:])


# -- mDNS adverts (shared with tests/lan/impostor_tools.py) ------------------------------

MDNS_SERVICE = "_p2pchat._tcp.local."


def mdns_sender(my_ip: str) -> socket.socket:
    """A UDP socket on port 5353 that multicasts from ``my_ip`` (not to ourselves)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("0.0.0.0", 5353))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(my_ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return sock


def advert_packet(key: bytes, name: str, instance: str, server: str, port: int, ip: str) -> Any:
    """One well-formed advert for ``key`` under ``name``: PTR, with SRV/TXT/A as
    additional records, the unique ones with cache-flush (each replaces the last)."""
    from zeroconf._dns import DNSAddress, DNSPointer, DNSService, DNSText
    from zeroconf._protocol.outgoing import DNSOutgoing
    from zeroconf.const import (
        _CLASS_IN,
        _CLASS_UNIQUE,
        _FLAGS_AA,
        _FLAGS_QR_RESPONSE,
        _TYPE_A,
        _TYPE_PTR,
        _TYPE_SRV,
        _TYPE_TXT,
    )

    from p2pchat.crypto.encoding import b64url_encode
    from p2pchat.crypto.identity import peer_id

    full, host = f"{instance}.{MDNS_SERVICE}", f"{server}.local."
    items = (b"v=1", b"id=" + peer_id(key).encode(), b"pk=" + b64url_encode(key).encode(),
             b"name=" + name.encode())  # fmt: skip
    txt = b"".join(bytes([len(item)]) + item for item in items)
    unique = _CLASS_IN | _CLASS_UNIQUE
    out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
    out.add_answer_at_time(DNSPointer(MDNS_SERVICE, _TYPE_PTR, _CLASS_IN, 4500, full), 0)
    out.add_additional_answer(DNSService(full, _TYPE_SRV, unique, 120, 0, 0, port, host))
    out.add_additional_answer(DNSText(full, _TYPE_TXT, unique, 4500, txt))
    out.add_additional_answer(DNSAddress(host, _TYPE_A, unique, 120, socket.inet_aton(ip)))
    return out


def _pid4(key: bytes) -> str:
    from p2pchat.crypto.identity import peer_id

    return peer_id(key)[:4]
