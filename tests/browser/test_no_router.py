"""Guests on a LAN with no default route (issue 10, section 1; DESIGN.md section 4).

Two laptops on a switch, a router that gives no gateway, a link-local network: no
host has a default route. Chromium then gathers no ICE candidates at all, so its
offer gives no direct path: the owner answers "relay" and the chat runs over the
page's WebSocket, with no alarm on the page, and the owner's ``guest_joined`` says
why. Firefox gathers on every interface and gets a direct session.

One LAN (no default route in either host) and one owner for the module, as in
test_guest_chat.py, whose helpers this reuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from tests.browser.conftest import LaunchBrowser, LaunchFirefox
from tests.browser.test_guest_chat import (
    OWNER_NAME,
    UI_MS,
    GuestLan,
    chat_both_ways,
    firefox_chats_both_ways,
    guest_context,
    join,
    open_link,
    wait_connected,
)
from tests.conftest import require_chromium, require_netns
from tests.lan.chat_nodes import ChatNode
from tests.lan.netns import Lan

pytestmark = [pytest.mark.browser, pytest.mark.lan]


@pytest.fixture(scope="module")
def routeless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestLan]:
    """Two hosts without a default route; a daemon named "olivia" in host 1."""
    require_netns()
    require_chromium()
    tmp = tmp_path_factory.mktemp("routeless")
    with Lan(2, default_route=False) as lan:
        for host in lan.hosts:
            routes = host.run(["ip", "route", "show", "default"])
            assert routes.stdout.strip() == "", routes.stdout
        owner = ChatNode(lan.hosts[0], tmp / "owner", OWNER_NAME)
        owner.start()
        try:
            yield GuestLan(lan, owner, tmp)
        finally:
            owner.stop()


async def test_chromium_guest_chats_over_the_relay(
    routeless: GuestLan, launch_browser: LaunchBrowser
) -> None:
    gl = routeless
    invite = gl.invite()
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    await join(page, "nora")
    await wait_connected(page)
    await expect(page.locator("#path")).to_have_text("relay")
    await expect(page.locator("#error")).to_be_hidden()  # no alarm: nobody interferes
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["path"] == "relay", joined
    assert "offered no address" in joined["relay_reason"], joined
    to_owner, _ = await chat_both_ways(gl, page, joined["peer_id"])
    mine = page.locator(".msg.out", has_text=to_owner)
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )
    assert not gl.events("guest_refused", invite_id=invite["invite_id"])
    await context.close()


async def test_firefox_guest_chats(routeless: GuestLan, launch_firefox: LaunchFirefox) -> None:
    gl = routeless
    page = await launch_firefox(gl.guest_host)
    joined = await firefox_chats_both_ways(gl, page, "fiona", "direct")
    assert not gl.events("guest_refused", invite_id=joined["invite_id"])
