"""TURN through a real coturn in a namespace: the credentials the signaling server mints
open allocations while valid and only then, and two aiortc links talk through the relay.

Hosts: h1 runs coturn, h2 and h3 are the peers (h2 also makes the allocation checks).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from signaling.turn_credentials import mint
from tests.conftest import require_command
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON, Host
from tests.lan.services import Coturn

pytestmark = pytest.mark.lan

# Allocates a relayed address with each (username, password) of argv[3] and prints, per
# pair, "ok" or the STUN error code coturn answered.
_ALLOCATE = """
import asyncio, json, sys
from aioice import stun, turn

async def one(server, username, password):
    try:
        transport, _ = await turn.create_turn_endpoint(
            asyncio.DatagramProtocol, server_addr=server, username=username, password=password)
    except stun.TransactionFailed as exc:
        return str(exc.response.attributes["ERROR-CODE"][0])
    transport.close()
    return "ok"

async def main():
    server = (sys.argv[1], int(sys.argv[2]))
    print(json.dumps([await one(server, u, p) for u, p in json.loads(sys.argv[3])]))

asyncio.run(main())
"""

# Allocates with a credential that expires 2 s later (minted here, just before: a
# stall that outlasts it only means another try), waits until coturn's clock is past
# the expiry, then prints [refresh of that allocation, a new allocation with it].
_OUTLIVE = """
import asyncio, json, sys, time
from aioice import stun, turn
from signaling.turn_credentials import mint

def code(exc):
    return str(exc.response.attributes["ERROR-CODE"][0])

async def main():
    server, secret = (sys.argv[1], int(sys.argv[2])), sys.argv[3].encode()
    for _ in range(20):
        now = time.time()
        username, password = mint(secret, "outlive000", now, 2)
        try:
            transport, _ = await turn.create_turn_endpoint(
                asyncio.DatagramProtocol, server_addr=server, username=username, password=password)
            break
        except stun.TransactionFailed as exc:
            if time.time() < int(now) + 2:
                raise  # refused while still valid: a real failure
    expiry = int(username.split(":")[0])
    await asyncio.sleep(max(0.0, expiry + 1.5 - time.time()))
    refresh = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
    refresh.attributes["LIFETIME"] = 600
    try:
        await transport._TurnTransport__inner_protocol.request_with_retry(refresh)
        refreshed = "ok"
    except stun.TransactionFailed as exc:
        refreshed = code(exc)
    try:
        again, _ = await turn.create_turn_endpoint(
            asyncio.DatagramProtocol, server_addr=server, username=username, password=password)
        again.close()
        new = "ok"
    except stun.TransactionFailed as exc:
        new = code(exc)
    transport.close()
    print(json.dumps([refreshed, new]))

asyncio.run(main())
"""


@pytest.fixture
def coturn_lan(make_lan: MakeLan) -> Iterator[tuple[Coturn, Host, Host]]:
    require_command("turnserver")
    lan = make_lan(3, ipv6=False)
    coturn = Coturn(lan.hosts[0], lan.hosts[0].ip)  # started: it answers on UDP and TCP
    try:
        yield coturn, lan.hosts[1], lan.hosts[2]
    finally:
        coturn.stop()


def test_minted_credentials_open_allocations_only_while_valid(
    coturn_lan: tuple[Coturn, Host, Host],
) -> None:
    coturn, client, _ = coturn_lan
    valid = coturn.mint(600)
    expired = coturn.mint(-5)
    username, _ = coturn.mint(600)
    wrong = (username, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    other_secret = mint(b"not-the-secret-0000", "testroom00", time.time(), 600)
    creds = [valid, expired, wrong, other_secret]
    result = client.run([PYTHON, "-c", _ALLOCATE, coturn.addr, str(coturn.port), json.dumps(creds)])
    assert result.returncode == 0, result.stderr + coturn.output
    assert json.loads(result.stdout) == ["ok", "401", "401", "401"], coturn.output


def test_an_allocation_outlives_its_credential_a_new_one_does_not(
    coturn_lan: tuple[Coturn, Host, Host],
) -> None:
    # The TTL bounds joining, not chatting: coturn caches the key of a live allocation.
    coturn, client, _ = coturn_lan
    argv = [PYTHON, "-c", _OUTLIVE, coturn.addr, str(coturn.port), coturn.secret]
    result = client.run(argv)
    assert result.returncode == 0, result.stderr + coturn.output
    assert json.loads(result.stdout) == ["ok", "401"], coturn.output


def test_two_links_talk_through_turn_with_relay_policy(
    coturn_lan: tuple[Coturn, Host, Host],
) -> None:
    coturn, host_a, host_b = coturn_lan
    peers = []
    for host, role in ((host_a, "offer"), (host_b, "answer")):
        ice = json.dumps(dataclasses.asdict(coturn.ice_config(policy="relay")))
        peers.append(
            host.popen(
                [PYTHON, "-m", "tests.lan.turn_link_peer", role, ice],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    offerer, answerer = peers

    def read(proc: subprocess.Popen[bytes]) -> dict[str, object]:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            assert proc.stderr is not None
            pytest.fail(f"peer ended: {proc.stderr.read().decode()[-3000:]}\n{coturn.output}")
        value: dict[str, object] = json.loads(line)
        return value

    def write(proc: subprocess.Popen[bytes], value: dict[str, object]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(value).encode() + b"\n")
        proc.stdin.flush()

    offer = read(offerer)
    # relay policy: the offer carries relayed candidates only (no host address leaks)
    candidates = [ln for ln in str(offer["sdp"]).splitlines() if ln.startswith("a=candidate:")]
    assert candidates
    assert all(" typ relay" in ln for ln in candidates), candidates
    write(answerer, offer)
    write(offerer, read(answerer))
    assert read(offerer) == {"path": "turn", "got": "pong"}
    assert read(answerer) == {"path": "turn", "got": "ping"}
    for proc in peers:
        write(proc, {})
        assert proc.wait(30) == 0
