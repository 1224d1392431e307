"""A browser guest from anywhere: the three paths (issue 14, contract §9).

The Internet of tests/lan/wan.py: the owner's node in lanA behind a cone NAT, Chromium
in lanB behind a NAT of each kind, and in srv a ``redis-server``, coturn and one
``p2pchat signal-server`` over TLS (test CA) with ``--redis``, a UDP ``--turn-url``, a
``--stun-url`` and the TURN secret. The node makes its invite on that server
(``invite --server``); the guest opens the link, joins and chats both ways. What each
NAT leaves, and what the page (``<html data-path>``) and the node (``guest_joined``'s
``path``) must both say:

* cone: server-reflexive pairs punch through both NATs: ``direct``;
* symmetric: natB gives every destination a fresh port, so only a TURN relayed pair
  connects: ``turn`` (still WebRTC, end to end);
* udp-blocked: no WebRTC at all: the page takes the WebSocket relay (``websocket``,
  node ``relay``).

ICE through NATs (and the page's wait for the ``ice`` message) takes seconds: the
timeouts only catch hangs; nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.chromium import launch_chromium, new_context
from tests.conftest import require_chromium
from tests.lan.cert_authority import CertAuthority, LeafCertificate
from tests.lan.chat_nodes import ChatNode, Event
from tests.lan.conftest import MakeInternet
from tests.lan.services import Coturn, RedisServer, SignalInstance
from tests.lan.wan import Internet, NatKind

pytestmark = [pytest.mark.browser, pytest.mark.lan]

OWNER_NAME = "olivia"
#: Generous: they only catch hangs (ICE through NATs, the page's 5 s ICE wait, TLS).
CONNECT_MS = 90_000
UI_MS = 30_000
EVENT_S = 90.0
#: What the page and the node must say for each NAT kind in front of the guest.
EXPECTED: dict[NatKind, tuple[str, str]] = {
    "cone": ("direct", "direct"),
    "symmetric": ("turn", "turn"),
    "udp-blocked": ("websocket", "relay"),
}

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{time.monotonic_ns() % 1_000_000}"


@dataclass
class WanWorld:
    net: Internet
    ca: CertAuthority
    leaf: LeafCertificate
    turn: Coturn
    server: SignalInstance
    owner: ChatNode
    token: str

    def invite(self) -> dict[str, Any]:
        invite: dict[str, Any] = self.owner.cli_json(
            # "=": a random token may start with "-" (token_urlsafe)
            "invite",
            "--server",
            self.server.url,
            f"--server-token={self.token}",
        )
        return invite

    def wait_event(self, type_: str, **fields: Any) -> Event:
        return self.owner.wait_for(
            lambda e: e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items()),
            timeout=EVENT_S,
        )


@pytest.fixture
def wan_world(
    request: pytest.FixtureRequest, make_internet: MakeInternet, tmp_path: Path
) -> Iterator[WanWorld]:
    """The Internet with ``request.param`` as natB, its servers and the owner's node."""
    require_chromium()
    net = make_internet(request.param)
    ca = CertAuthority(tmp_path / "ca")
    leaf = ca.issue("signal", [net.shared_address, *net.instance_addresses])
    redis = RedisServer(net.srv, net.redis_address)
    turn = Coturn(net.srv, net.turn_address)
    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "owner-token"
    token_file.write_text(token + "\n")
    server = SignalInstance(
        net.srv, [net.instance_addresses[0]], certificate=leaf, redis_url=redis.url,
        turn_urls=[turn.url("turn", "udp")], stun_urls=[turn.url("stun")],
        turn_secret_file=turn.secret_file, owner_token_file=token_file,
    )  # fmt: skip
    owner = ChatNode(net.lan_a, tmp_path / "owner", OWNER_NAME)
    owner.start(env=ca.client_env())  # the node trusts the test CA (SSL_CERT_FILE)
    try:
        yield WanWorld(net, ca, leaf, turn, server, owner, token)
    finally:
        owner.stop()


async def join(page: Page, name: str) -> None:
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name="Join").click()


async def page_state(page: Page) -> dict[str, Any]:
    return {
        "state": await page.get_attribute("#status", "data-state"),
        "status": await page.inner_text("#status"),
        "error": await page.text_content("#error"),
        "data-path": await page.evaluate("document.documentElement.dataset.path ?? null"),
    }


async def wait_connected(page: Page) -> None:
    try:
        await page.wait_for_selector("#status[data-state=connected]", timeout=CONNECT_MS)
    except Exception as exc:
        raise AssertionError(f"guest page not connected: {await page_state(page)}") from exc


async def settled_page_path(page: Page, want: str) -> str:
    """``<html data-path>`` once it says ``want`` (ice.js sets it when the session opens
    and again when ICE selects another pair); what it says if it never does."""
    with contextlib.suppress(PlaywrightTimeoutError):
        await page.wait_for_function(
            "want => document.documentElement.dataset.path === want", arg=want, timeout=UI_MS
        )
    path: str | None = await page.evaluate("document.documentElement.dataset.path ?? null")
    return str(path)


def node_paths(world: WanWorld, peer_id: str) -> list[str]:
    """The guest's paths as the node told them: ``guest_joined``, then each ``guest_path``."""
    return [
        e["path"]
        for e in list(world.owner.events)
        if e.get("type") in ("guest_joined", "guest_path") and e.get("peer_id") == peer_id
    ]


async def settled_node_path(world: WanWorld, peer_id: str, want: str) -> list[str]:
    """The node's paths for the guest once the last one is ``want`` (or the time is up)."""
    with contextlib.suppress(AssertionError):
        await asyncio.to_thread(
            world.owner.wait_for,
            lambda e: (
                e.get("type") in ("guest_joined", "guest_path")
                and e.get("peer_id") == peer_id
                and node_paths(world, peer_id)[-1:] == [want]
            ),
            EVENT_S,
        )
    return node_paths(world, peer_id)


async def chat_both_ways(world: WanWorld, page: Page, label: str) -> None:
    """Guest → owner and owner → guest; each message arrives once."""
    to_owner, to_guest = unique("hello owner"), unique("hello guest")
    await page.get_by_label("Message").fill(to_owner)
    await page.get_by_role("button", name="Send").click()
    await asyncio.to_thread(
        world.wait_event, "message", direction="in", peer_id=label, text=to_owner
    )
    result = await asyncio.to_thread(world.owner.cli, "send", label, to_guest)
    assert result.returncode == 0, result.stderr
    log = page.get_by_role("log")
    await expect(log).to_contain_text(to_guest, timeout=UI_MS)
    mine = page.locator(".msg.out", has_text=to_owner)
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )
    await expect(page.locator(".msg.in", has_text=to_guest)).to_have_count(1)
    await expect(page.locator(".msg.out", has_text=to_owner)).to_have_count(1)
    arrived = [
        e for e in list(world.owner.events)
        if e.get("type") == "message" and e.get("direction") == "in" and e.get("text") == to_owner
    ]  # fmt: skip
    assert len(arrived) == 1, arrived


@pytest.mark.parametrize("wan_world", ["cone", "symmetric", "udp-blocked"], indirect=True)
async def test_a_guest_behind_a_nat_joins_on_the_path_it_leaves(wan_world: WanWorld) -> None:
    world = wan_world
    kind = world.net.nat_b_kind
    want_page, want_node = EXPECTED[kind]
    invite = await asyncio.to_thread(world.invite)
    assert invite["url"].startswith(f"{world.server.url}/"), invite
    async with async_playwright() as pw:
        browser = await launch_chromium(
            world.net.lan_b.name, playwright=pw, extra_args=world.ca.chromium_args(world.leaf)
        )
        try:
            context = await new_context(browser, ignore_https_errors=False)
            page = await context.new_page()
            await page.goto(invite["url"], timeout=UI_MS)
            await join(page, "gus")
            await wait_connected(page)
            joined = await asyncio.to_thread(
                world.wait_event, "guest_joined", invite_id=invite["invite_id"]
            )
            # ICE may start on one pair and move to a better one: what counts is where
            # it settles (each side reports the moves).
            got_page = await settled_page_path(page, want_page)
            got_node = await settled_node_path(world, joined["peer_id"], want_node)
            print(f"nat_b={kind}: page path {got_page}, node paths {got_node}")
            assert (got_page, got_node[-1]) == (want_page, want_node), await page_state(page)
            await chat_both_ways(world, page, joined["peer_id"])
        finally:
            await browser.close()
