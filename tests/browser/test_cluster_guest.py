"""A browser guest and its owner on a cluster of signal-server instances, under faults
(issue 14, contract §9: "owner inst 1, guest inst 2; kill 2", "Redis restart mid-chat").

The Internet of tests/lan/wan.py with natB ``udp-blocked``: no WebRTC for the page, so
every message goes over the WebSocket relay and the instances matter. In srv a real
``redis-server`` and three ``p2pchat signal-server --redis`` instances, each on its own
address (.11/.12/.13, where the test reads its ``/metrics``) and all on the shared
.10:8443 (``--reuse-port``: the kernel spreads connections, and a dead instance's share
goes to the others at once). The owner's node (lanA) makes its invite with
``--server https://.10:8443``; Chromium (lanB) opens it, so the page reconnects to .10.
The test finds each one's instance from the instances' gauges and reloads the page
until the two are on different instances (each reload lands at random).

Every message is checked to arrive exactly once and in order on both sides, over the
whole test. Nothing is timed: the timeouts only catch hangs.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.chromium import new_context
from tests.browser.conftest import LaunchBrowser
from tests.conftest import require_chromium, require_command
from tests.lan.cert_authority import CertAuthority, LeafCertificate
from tests.lan.chat_nodes import ChatNode, Event
from tests.lan.conftest import MakeInternet
from tests.lan.netns import PYTHON
from tests.lan.services import RedisServer, SignalInstance
from tests.lan.wan import Internet

pytestmark = [pytest.mark.browser, pytest.mark.lan]

OWNER_NAME = "olivia"
CONNECT_MS = 90_000
UI_MS = 60_000
EVENT_S = 90.0
#: Reloads until page and owner sit on different instances: each lands on one of three
#: at random, so ten same-instance draws in a row happen once in ~59,000 runs.
MAX_PLACEMENT_TRIES = 10
MESSAGES = 20

# argv: URL...; prints one JSON list of {"status", "body"} (or {"error"}) per URL.
HTTPS_GET = textwrap.dedent(
    """
    import json, sys, urllib.error, urllib.request

    out = []
    for url in sys.argv[1:]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                out.append({"status": response.status, "body": response.read().decode()})
        except urllib.error.HTTPError as exc:
            out.append({"status": exc.code, "body": exc.read().decode()})
        except (urllib.error.URLError, OSError) as exc:
            out.append({"error": str(getattr(exc, "reason", exc))})
    print(json.dumps(out), flush=True)
    """
)


@dataclass
class ClusterWorld:
    net: Internet
    ca: CertAuthority
    leaf: LeafCertificate
    redis: RedisServer
    instances: list[SignalInstance]
    owner: ChatNode

    @property
    def shared_url(self) -> str:
        return f"https://{self.net.shared_address}:{self.instances[0].port}"

    def invite(self, *args: str) -> dict[str, Any]:
        view: dict[str, Any] = self.owner.cli_json("invite", "--server", self.shared_url, *args)
        return view

    def get(self, path: str, alive: list[int]) -> list[dict[str, Any]]:
        """``GET path`` of each instance in ``alive`` (by its own address), from srv."""
        urls = [self.instances[i].url_for(self.net.instance_addresses[i]) + path for i in alive]
        done = self.net.srv.run([PYTHON, "-c", HTTPS_GET, *urls], env=self.ca.client_env())
        assert done.returncode == 0, done.stderr
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results

    def alive(self) -> list[int]:
        return [
            i for i, inst in enumerate(self.instances) if inst.proc and inst.proc.poll() is None
        ]

    def placement(self) -> tuple[int, int]:
        """(the guest's instance, the owner's instance), once the gauges show exactly one
        guest socket and one owner socket in the whole cluster."""
        deadline = time.monotonic() + EVENT_S
        while True:
            alive = self.alive()
            gauges = [_gauges(r.get("body", "")) for r in self.get("/metrics", alive)]
            guests = [i for i, g in zip(alive, gauges, strict=True) for _ in range(g["guest"])]
            owners = [i for i, g in zip(alive, gauges, strict=True) for _ in range(g["owner"])]
            if len(guests) == 1 and len(owners) == 1:
                return guests[0], owners[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no single guest and owner: {gauges}")
            time.sleep(0.2)

    def wait_health(self, status: int) -> None:
        """Until every live instance's ``/healthz`` answers ``status``."""
        deadline = time.monotonic() + EVENT_S
        while True:
            answers = self.get("/healthz", self.alive())
            if all(a.get("status") == status for a in answers):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz never all {status}: {answers}")
            time.sleep(0.1)

    def wait_event(self, type_: str, after: int = 0, **fields: Any) -> Event:
        def match(e: Event) -> bool:
            return e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items())

        self.owner.wait_for(
            lambda _e: any(match(e) for e in self.owner.events[after:]), timeout=EVENT_S
        )
        return next(e for e in self.owner.events[after:] if match(e))

    def mark(self) -> int:
        return len(self.owner.events)


def _gauges(text: str) -> dict[str, int]:
    values = {"guest": 0, "owner": 0}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "p2pchat_signal_guest_connections":
            values["guest"] = int(float(value))
        elif name == "p2pchat_signal_owner_connections":
            values["owner"] = int(float(value))
    return values


@pytest.fixture
def cluster_world(make_internet: MakeInternet, tmp_path: Path) -> Iterator[ClusterWorld]:
    require_chromium()
    require_command("redis-server")
    net = make_internet("udp-blocked")
    ca = CertAuthority(tmp_path / "ca")
    leaf = ca.issue("signal", [net.shared_address, *net.instance_addresses])
    redis = RedisServer(net.srv, net.redis_address)
    instances = [
        SignalInstance(
            net.srv,
            [address, net.shared_address],
            certificate=leaf,
            redis_url=redis.url,
            reuse_port=True,
            extra_args=["--metrics-allow", f"{net.net}.0.0/24", "--instance-name", f"inst{i}"],
        )
        for i, address in enumerate(net.instance_addresses, start=1)
    ]
    owner = ChatNode(net.lan_a, tmp_path / "owner", OWNER_NAME)
    owner.start(env=ca.client_env())  # the node trusts the test CA (SSL_CERT_FILE)
    try:
        yield ClusterWorld(net, ca, leaf, redis, instances, owner)
    finally:
        owner.stop()


# -- the page ---------------------------------------------------------------------------


async def open_guest(launch_browser: LaunchBrowser, world: ClusterWorld, url: str) -> Page:
    browser = await launch_browser(
        world.net.lan_b.name, extra_args=world.ca.chromium_args(world.leaf)
    )
    context = await new_context(browser, ignore_https_errors=False)
    page = await context.new_page()
    await page.goto(url, timeout=UI_MS)
    await page.get_by_label("Your name").fill("gus")
    await page.get_by_role("button", name="Join").click()
    await wait_connected(page)
    return page


async def wait_connected(page: Page) -> None:
    try:
        await page.wait_for_selector("#status[data-state=connected]", timeout=CONNECT_MS)
    except Exception as exc:
        state = {
            "state": await page.get_attribute("#status", "data-state"),
            "status": await page.inner_text("#status"),
            "error": await page.text_content("#error"),
        }
        raise AssertionError(f"guest page not connected: {state}") from exc


async def page_texts(page: Page, direction: str) -> list[str]:
    texts: list[str] = await page.locator(f".msg.{direction} .text").all_inner_texts()
    return texts


async def place_apart(world: ClusterWorld, page: Page, invite_id: str) -> tuple[int, int, str]:
    """Reload until the page and the owner are on different instances: (guest's
    instance, owner's instance, the guest's label)."""
    for _ in range(MAX_PLACEMENT_TRIES):
        mark = world.mark()
        joined = await asyncio.to_thread(world.wait_event, "guest_joined", 0, invite_id=invite_id)
        guest_at, owner_at = await asyncio.to_thread(world.placement)
        if guest_at != owner_at:
            return guest_at, owner_at, str(joined["peer_id"])
        await page.reload(timeout=UI_MS)
        await wait_connected(page)
        await asyncio.to_thread(
            world.wait_event, "guest_joined", mark, invite_id=invite_id, peer_id=joined["peer_id"]
        )
    raise AssertionError(f"page and owner on one instance after {MAX_PLACEMENT_TRIES} tries")


class Chat:
    """Both sides' sent texts, and the check that each arrived once and in order."""

    def __init__(self, world: ClusterWorld, page: Page, label: str) -> None:
        self.world, self.page, self.label = world, page, label
        self.to_owner: list[str] = []
        self.to_guest: list[str] = []

    async def exchange(self, tag: str, count: int = MESSAGES) -> None:
        """``count`` messages each way, then wait until all arrived and check them all."""
        for n in range(count):
            text = f"{tag} page {n:02d}"
            await self.page.get_by_label("Message").fill(text)
            await self.page.get_by_role("button", name="Send").click()
            self.to_owner.append(text)
        for n in range(count):
            text = f"{tag} owner {n:02d}"
            sent = await asyncio.to_thread(self.world.owner.cli, "send", self.label, text)
            assert sent.returncode == 0, sent.stderr
            self.to_guest.append(text)
        await self.check()

    def owner_got(self) -> list[str]:
        return [
            str(e["text"])
            for e in list(self.world.owner.events)
            if e.get("type") == "message"
            and e.get("direction") == "in"
            and e.get("peer_id") == self.label
        ]

    async def check(self) -> None:
        deadline = time.monotonic() + EVENT_S
        while True:
            got_owner = self.owner_got()
            got_page = await page_texts(self.page, "in")
            done = len(got_owner) >= len(self.to_owner) and len(got_page) >= len(self.to_guest)
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert got_owner == self.to_owner, "owner side"
        assert got_page == self.to_guest, "page side"
        # The page's own messages: each once, each delivered (the owner's receipt).
        assert await page_texts(self.page, "out") == self.to_owner
        receipts = self.page.locator(".msg.out .receipt[data-state=delivered]")
        await expect(receipts).to_have_count(len(self.to_owner), timeout=UI_MS)


async def rejoined(world: ClusterWorld, page: Page, label: str, mark: int) -> None:
    """The page came back: a new session of the same guest, and the page says so."""
    await asyncio.to_thread(world.wait_event, "guest_joined", mark, peer_id=label)
    await wait_connected(page)


# -- tests ------------------------------------------------------------------------------


async def test_chat_survives_the_guests_instance_and_then_the_owners_dying(
    cluster_world: ClusterWorld, launch_browser: LaunchBrowser
) -> None:
    world = cluster_world
    invite = world.invite("--uses", "1")
    page = await open_guest(launch_browser, world, invite["url"])
    guest_at, owner_at, label = await place_apart(world, page, invite["invite_id"])
    chat = Chat(world, page, label)
    await chat.exchange("before")

    mark = world.mark()
    world.instances[guest_at].kill()
    await rejoined(world, page, label, mark)
    await chat.exchange("after-guest-kill")

    mark = world.mark()
    world.instances[owner_at].kill()
    # The node re-claims its room through .10 (another instance) by itself...
    await asyncio.to_thread(world.wait_event, "invite_server_status", mark, state="reconnecting")
    await asyncio.to_thread(world.wait_event, "invite_server_status", mark, state="connected")
    # ...and the page finds it again (its socket died, or its instance closed it 1012).
    await rejoined(world, page, label, mark)
    await chat.exchange("after-owner-kill")
    view = {i["invite_id"]: i for i in world.owner.cli_json("invites")}[invite["invite_id"]]
    assert (view["uses_left"], view["guests"]) == (0, 1), view  # reconnects use nothing


async def test_chat_resumes_after_a_redis_restart_and_a_new_guest_joins(
    cluster_world: ClusterWorld, launch_browser: LaunchBrowser
) -> None:
    world = cluster_world
    invite = world.invite("--uses", "2")
    page = await open_guest(launch_browser, world, invite["url"])
    _, _, label = await place_apart(world, page, invite["invite_id"])
    chat = Chat(world, page, label)
    await chat.exchange("before", 5)

    world.redis.kill()  # SIGKILL: no persistence, every room is gone from Redis
    await asyncio.to_thread(world.wait_health, 503)
    await asyncio.sleep(1.0)  # the outage the contract names (not a threshold)
    world.redis.start()
    await asyncio.to_thread(world.wait_health, 200)
    await chat.exchange("after-redis")

    # The owner's instance restored the room: a new guest (a fresh tab) joins the link.
    mark = world.mark()
    newcomer = await open_guest(launch_browser, world, invite["url"])
    joined = await asyncio.to_thread(
        world.wait_event, "guest_joined", mark, invite_id=invite["invite_id"]
    )
    assert joined["peer_id"] != label
    second = Chat(world, newcomer, str(joined["peer_id"]))
    await second.exchange("newcomer", 3)
    await chat.check()  # the first guest's whole chat: still each once, in order
