"""Proves the Internet harness (tests/lan/wan.py, services.py, cert_authority.py).

NAT behaviour is measured the way research §6 did: one fresh UDP socket per case sends
to several destinations in srv, and a UDP echo there reports the source it saw.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from tests.browser.chromium import launch_chromium, new_context
from tests.conftest import require_chromium, require_command
from tests.lan.cert_authority import CertAuthority
from tests.lan.conftest import MakeInternet
from tests.lan.netns import PYTHON, Host, list_namespaces
from tests.lan.services import REPO_ROOT, Coturn, RedisServer, Service, SignalInstance
from tests.lan.wan import Internet

pytestmark = pytest.mark.lan

ECHO_PORTS = (7000, 7001)

ECHO = textwrap.dedent(
    """
    import json, selectors, socket, sys

    sel = selectors.DefaultSelector()
    for spec in sys.argv[1:]:
        addr, port = spec.rsplit(":", 1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((addr, int(port)))
        sel.register(udp, selectors.EVENT_READ, "udp")
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((addr, int(port)))
        tcp.listen(16)
        sel.register(tcp, selectors.EVENT_READ, "tcp")
    print("echo ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "udp":
                _, source = key.fileobj.recvfrom(2048)
                reply = json.dumps({"proto": "udp", "to": key.fileobj.getsockname(), "from": source})
                key.fileobj.sendto(reply.encode(), source)
            else:
                conn, source = key.fileobj.accept()
                reply = json.dumps({"proto": "tcp", "to": conn.getsockname(), "from": source})
                conn.sendall(reply.encode())
                conn.close()
            print(reply, flush=True)
    """
)

# argv: PROTO WAIT_S ADDR:PORT...; one socket (UDP) or one connection per target (TCP);
# prints one JSON list: what each echo said it saw, or {"error": ...}.
PROBE = textwrap.dedent(
    """
    import json, socket, sys

    proto, wait = sys.argv[1], float(sys.argv[2])
    targets = [(a, int(p)) for a, p in (t.rsplit(":", 1) for t in sys.argv[3:])]
    results = []
    if proto == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 0))
        sock.settimeout(wait)
        for target in targets:
            result = {"error": "no answer"}
            for _ in range(3):  # UDP: a lost datagram is not a NAT property
                sock.sendto(b"probe", target)
                try:
                    result = json.loads(sock.recv(2048))
                    break
                except TimeoutError:
                    pass
            results.append(result)
    else:
        for target in targets:
            try:
                with socket.create_connection(target, timeout=wait) as conn:
                    results.append(json.loads(conn.recv(2048)))
            except OSError as exc:
                results.append({"error": type(exc).__name__, "errno": exc.errno})
    print(json.dumps(results), flush=True)
    """
)

REDIS_CALL = textwrap.dedent(
    """
    import socket, sys

    addr, port = sys.argv[1], int(sys.argv[2])
    try:
        conn = socket.create_connection((addr, port), timeout=10)
    except OSError as exc:
        print(f"error {type(exc).__name__}")
        sys.exit(0)
    with conn:
        for words in sys.argv[3:]:
            parts = words.split()
            conn.sendall(f"*{len(parts)}\\r\\n".encode() + b"".join(
                f"${len(p)}\\r\\n{p}\\r\\n".encode() for p in parts))
            reply = conn.recv(65536).decode()
            if reply.startswith("$") and not reply.startswith("$-1"):
                reply = reply.split("\\r\\n")[1]
            print(reply.strip())
    """
)

HTTPS_GET = textwrap.dedent(
    """
    import json, ssl, sys, urllib.error, urllib.request

    try:
        with urllib.request.urlopen(sys.argv[1], timeout=20) as response:
            result = {"status": response.status, "body": response.read().decode()}
    except urllib.error.HTTPError as exc:
        result = {"status": exc.code, "body": exc.read().decode()}
    except urllib.error.URLError as exc:
        result = {"error": str(exc.reason)}
    print(json.dumps(result), flush=True)
    """
)

# argv: ADDR PORT USERNAME PASSWORD; prints the candidates aioice gathered (one JSON list).
GATHER = textwrap.dedent(
    """
    import asyncio, json, sys
    import aioice

    addr, port, username, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

    async def main():
        conn = aioice.Connection(
            ice_controlling=True, stun_server=(addr, port), turn_server=(addr, port),
            turn_username=username, turn_password=password, turn_transport="udp",
            use_ipv6=False,
        )
        await conn.gather_candidates()
        print(json.dumps([[c.type, c.host] for c in conn.local_candidates]), flush=True)
        await conn.close()

    asyncio.run(main())
    """
)

UNKNOWN_ROOM = "A" * 22  # well formed, never claimed: the "link not valid" page


class EchoServer(Service):
    """UDP and TCP echo on each ``addr:port``, answering with the source it saw."""

    ready_line = "echo ready"

    def __init__(self, host: Host, endpoints: list[str]) -> None:
        super().__init__(host, [PYTHON, "-c", ECHO, *endpoints])

    def sources_seen(self, proto: str) -> list[tuple[str, int]]:
        seen = []
        for line in self.output.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record["proto"] == proto:
                    seen.append((record["from"][0], record["from"][1]))
        return seen


def probe(host: Host, proto: str, targets: list[str], wait: float = 2.0) -> list[dict[str, Any]]:
    done = host.run([PYTHON, "-c", PROBE, proto, str(wait), *targets])
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def redis_call(host: Host, redis: RedisServer, *commands: str) -> list[str]:
    done = host.run([PYTHON, "-c", REDIS_CALL, redis.addr, str(redis.port), *commands])
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def echo_targets(net: Internet) -> list[str]:
    """Three destinations: two addresses, and two ports on one of them."""
    a, b = net.instance_addresses[:2]
    return [f"{a}:{ECHO_PORTS[0]}", f"{a}:{ECHO_PORTS[1]}", f"{b}:{ECHO_PORTS[0]}"]


def start_echo(net: Internet) -> EchoServer:
    endpoints = [f"{a}:{p}" for a in net.instance_addresses[:2] for p in ECHO_PORTS]
    return EchoServer(net.srv, endpoints)


@pytest.fixture
def cert_authority(tmp_path: Path) -> CertAuthority:
    return CertAuthority(tmp_path / "ca")


# --- topology and NATs ---------------------------------------------------------------


@pytest.mark.parametrize("nat_b", ["cone", "symmetric"])
def test_cone_nat_keeps_its_mapping_and_symmetric_does_not(
    make_internet: MakeInternet, nat_b: str
) -> None:
    net = make_internet(nat_b)
    start_echo(net)
    targets = echo_targets(net)
    mapped: dict[str, list[tuple[str, int]]] = {}
    for name, host, nat in (("lanA", net.lan_a, net.nat_a), ("lanB", net.lan_b, net.nat_b)):
        results = probe(host, "udp", targets)
        assert all("from" in r for r in results), (name, results)
        # Every destination sees the NAT's wan address, never the LAN address.
        assert {r["from"][0] for r in results} == {nat.ip}, (name, results)
        mapped[name] = [(r["from"][0], r["from"][1]) for r in results]
    # natA is always a cone: one public port for every destination.
    assert len({port for _, port in mapped["lanA"]}) == 1, mapped
    ports_b = {port for _, port in mapped["lanB"]}
    if nat_b == "cone":
        assert len(ports_b) == 1, mapped
    else:
        # fully-random: a new port per destination (three equal by chance: ~2^-32)
        assert len(ports_b) > 1, mapped


def test_udp_blocked_nat_drops_udp_and_passes_tcp(make_internet: MakeInternet) -> None:
    net = make_internet("udp-blocked")
    echo = start_echo(net)
    targets = echo_targets(net)[:1]
    assert all("error" in r for r in probe(net.lan_b, "udp", targets, wait=1.0))
    assert echo.sources_seen("udp") == []
    counters = net.nat_b.run(["nft", "list", "chain", "ip", "p2pchat_nat", "forward"]).stdout
    assert "meta l4proto udp counter packets 0 " not in counters, counters
    # TCP from lanB passes (masqueraded), and UDP from lanA is not affected.
    tcp = probe(net.lan_b, "tcp", targets)
    assert tcp[0].get("from", [None])[0] == net.nat_b.ip, tcp
    udp_a = probe(net.lan_a, "udp", targets)
    assert udp_a[0].get("from", [None])[0] == net.nat_a.ip, udp_a


def test_lans_reach_each_other_only_through_the_server(make_internet: MakeInternet) -> None:
    net = make_internet("cone")
    listen_b = EchoServer(net.lan_b, [f"{net.lan_b.ip}:{ECHO_PORTS[0]}"])
    # lanA → lanB's own address: natA has no route there (as no router on the
    # Internet routes to a private address).
    direct = probe(net.lan_a, "tcp", [f"{net.lan_b.ip}:{ECHO_PORTS[0]}"])
    assert "error" in direct[0], direct
    # srv has routes to its own /24 only: no LAN address is reachable from it.
    for lan in (net.lan_a, net.lan_b):
        route = net.srv.run(["ip", "route", "get", lan.ip])
        assert route.returncode != 0, route.stdout
    from_srv = probe(net.srv, "tcp", [f"{net.lan_b.ip}:{ECHO_PORTS[0]}"])
    assert "error" in from_srv[0], from_srv
    # natB's public address takes no connection in (no port forwarding).
    inbound = probe(net.srv, "tcp", [f"{net.nat_b.ip}:{ECHO_PORTS[0]}"])
    assert "error" in inbound[0], inbound
    assert listen_b.sources_seen("tcp") == []
    # ...while from inside, lanB reaches itself: the listener was up all along.
    assert "from" in probe(net.lan_b, "tcp", [f"{net.lan_b.ip}:{ECHO_PORTS[0]}"])[0]


def test_internet_removes_its_namespaces_even_when_a_test_fails() -> None:
    net = Internet("symmetric")
    names = net.namespaces()
    assert set(names) <= set(list_namespaces())
    proc = net.lan_b.popen(["sleep", "60"])

    def failing_test() -> None:
        with net:
            raise RuntimeError("a failing test")

    with pytest.raises(RuntimeError, match="a failing test"):
        failing_test()
    assert proc.poll() is not None  # processes stopped
    assert not set(names) & set(list_namespaces())


DIES_WITH_AN_INTERNET = textwrap.dedent(
    """
    import json, os, signal, subprocess
    from tests.lan.wan import Internet

    net = Internet("udp-blocked")
    net.lan_b.popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(json.dumps(net.namespaces()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close(), no atexit: a crashed test run
    """
)


def test_namespaces_of_a_killed_run_are_removed_by_the_next_internet(tmp_path: Path) -> None:
    crashed = subprocess.run(
        [PYTHON, "-c", DIES_WITH_AN_INTERNET],
        cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    left: list[str] = json.loads(crashed.stdout)
    assert set(left) <= set(list_namespaces())
    sleeper = subprocess.run(
        ["ip", "netns", "pids", left[-1]], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sleeper  # still running inside the leftover lanB
    with Internet("cone"):
        assert not set(left) & set(list_namespaces())
    for pid in sleeper:
        assert not_running(int(pid))


def not_running(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it (it was not our child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


# --- services --------------------------------------------------------------------------


def test_redis_in_srv_answers_lan_a_and_survives_a_kill(make_internet: MakeInternet) -> None:
    require_command("redis-server")
    net = make_internet("cone")
    redis = RedisServer(net.srv, net.redis_address)
    info, pong, ok = redis_call(net.lan_a, redis, "CLIENT INFO", "PING", "SET harness 1")
    assert f"addr={net.nat_a.ip}:" in info  # it sees natA's public address
    assert (pong, ok) == ("+PONG", "+OK")
    redis.kill()
    assert redis_call(net.lan_a, redis, "PING") == ["error ConnectionRefusedError"]
    redis.restart()
    # Same port, no persistence: it answers, and the key is gone.
    assert redis_call(net.lan_a, redis, "PING", "GET harness") == ["+PONG", "$-1"]


def test_coturn_in_srv_gives_lan_b_its_public_address_and_a_relay(
    make_internet: MakeInternet,
) -> None:
    require_command("turnserver")
    net = make_internet("symmetric")
    turn = Coturn(net.srv, net.turn_address)

    def gather(username: str, password: str) -> list[list[str]]:
        args = [net.turn_address, str(turn.port), username, password]
        done = net.lan_b.run([PYTHON, "-c", GATHER, *args])
        assert done.returncode == 0, done.stderr
        candidates: list[list[str]] = json.loads(done.stdout)
        return candidates

    found = gather(*turn.mint(600))
    assert ["srflx", net.nat_b.ip] in found, found  # STUN saw natB's public address
    assert ["relay", net.turn_address] in found, found
    # An expired credential gets no allocation (coturn: 401), STUN still answers.
    expired = gather(*turn.mint(-5))
    assert ["srflx", net.nat_b.ip] in expired, expired
    assert not [c for c in expired if c[0] == "relay"], expired
    assert turn.secret_file.read_text().splitlines()[0] == turn.secret


def test_signal_instance_serves_https_to_lan_b_with_the_test_ca(
    make_internet: MakeInternet, cert_authority: CertAuthority
) -> None:
    net = make_internet("symmetric")
    leaf = cert_authority.issue("signal", [net.shared_address, *net.instance_addresses])
    addresses = [net.instance_addresses[0], net.shared_address]
    instance = SignalInstance(net.srv, addresses, certificate=leaf)
    for address in addresses:
        url = instance.url_for(address) + "/"
        trusted = net.lan_b.run([PYTHON, "-c", HTTPS_GET, url], env=cert_authority.client_env())
        assert json.loads(trusted.stdout)["status"] == 404, trusted  # no page at "/"
    page = net.lan_b.run(
        [PYTHON, "-c", HTTPS_GET, f"{instance.url}/c/{UNKNOWN_ROOM}"],
        env=cert_authority.client_env(),
    )
    assert "link not valid" in json.loads(page.stdout)["body"], page
    # Without the CA the same request fails verification: the trust comes from it.
    plain_env = {"SSL_CERT_FILE": str(Path(cert_authority.directory) / "none.pem")}
    untrusted = net.lan_b.run([PYTHON, "-c", HTTPS_GET, instance.url + "/"], env=plain_env)
    assert "CERTIFICATE_VERIFY_FAILED" in json.loads(untrusted.stdout)["error"], untrusted
    instance.kill()
    assert instance.proc is not None
    assert instance.proc.returncode == -9


@pytest.mark.browser
async def test_chromium_in_lan_b_trusts_the_test_ca(
    make_internet: MakeInternet, cert_authority: CertAuthority
) -> None:
    require_chromium()
    net = make_internet("cone")
    leaf = cert_authority.issue("signal", [net.shared_address, *net.instance_addresses])
    instance = SignalInstance(net.srv, [net.shared_address], certificate=leaf)
    url = f"{instance.url}/c/{UNKNOWN_ROOM}"
    async with async_playwright() as pw:
        browser = await launch_chromium(
            net.lan_b.name, playwright=pw, extra_args=cert_authority.chromium_args(leaf)
        )
        try:
            page = await (await new_context(browser, ignore_https_errors=False)).new_page()
            response = await page.goto(url)
            assert response is not None
            assert response.status == 404
            assert await page.title() == "p2pchat: link not valid"
            assert await page.evaluate("window.isSecureContext")
            details = await response.security_details()
            assert details is not None
            assert details.get("subjectName") == "signal", details
        finally:
            await browser.close()
        # The same page without the flag: a certificate error. The flag is what trusts.
        browser = await launch_chromium(net.lan_b.name, playwright=pw)
        try:
            page = await (await new_context(browser, ignore_https_errors=False)).new_page()
            with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                await page.goto(url)
        finally:
            await browser.close()
