"""Browser guests end to end: a real ``p2pchat daemon`` in host 1, headless Chromium in
host 2 opening real invite links (DESIGN.md sections 3 and 5, docs/guest-protocol.md).

One LAN and one owner node are shared by the whole module (starting them is the slow
part); every test makes its own invites and its own browser, and looks only at the
events of its own invite or guest, so the tests do not depend on their order.

No timing thresholds: the timeouts below only catch hangs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.chromium import new_context
from tests.browser.conftest import LaunchBrowser, LaunchFirefox
from tests.browser.firefox import (
    FirefoxPage,
    guest_join,
    guest_send,
    guest_wait_connected,
    guest_wait_delivered,
    guest_wait_in_log,
)
from tests.browser.relay_proxy import RELAY, SIGNAL, ProxyProcess
from tests.conftest import require_chromium, require_netns
from tests.lan.chat_nodes import ChatNode, Event
from tests.lan.netns import PYTHON, Host, Lan

pytestmark = [pytest.mark.browser, pytest.mark.lan]

OWNER_NAME = "olivia"
#: Generous: catch hangs only (ICE gathering, mDNS resolution, the 4 s direct wait…).
CONNECT_MS = 45_000
UI_MS = 20_000
EVENT_S = 45.0

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{time.monotonic_ns() % 1_000_000}"


@dataclass
class GuestLan:
    lan: Lan
    owner: ChatNode
    tmp: Path

    @property
    def owner_host(self) -> Host:
        return self.lan.hosts[0]

    @property
    def guest_host(self) -> Host:
        return self.lan.hosts[1]

    def invite(self, *args: str) -> dict[str, Any]:
        invite: dict[str, Any] = self.owner.cli_json("invite", *args)
        return invite

    def invite_view(self, invite_id: str) -> dict[str, Any]:
        views = [i for i in self.owner.cli_json("invites") if i["invite_id"] == invite_id]
        assert len(views) == 1, views
        return views[0]

    def wait_event(self, type_: str, timeout: float = EVENT_S, **fields: Any) -> Event:
        return self.owner.wait_for(
            lambda e: e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items()),
            timeout=timeout,
        )

    def take_upload(self, guest: str, name: str, size: int, timeout: float = EVENT_S) -> Event:
        """A guest's file: its offer (a guest's always waits for the owner), ``files
        accept``, then the file in place: the owner's ``file_done`` event."""
        offered = self.wait_event("file_offered", timeout, peer_id=guest, name=name)
        assert offered["size"] == size, offered
        tid = offered["transfer_id"]
        accepted = self.owner.cli("files", "accept", tid[:12])
        assert accepted.returncode == 0, accepted.stderr
        return self.wait_event("file_done", timeout, transfer_id=tid, direction="in")

    def events(self, type_: str, **fields: Any) -> list[Event]:
        return [
            e
            for e in list(self.owner.events)
            if e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items())
        ]


@contextlib.contextmanager
def owner_with_downloads(tmp: Path) -> Iterator[GuestLan]:
    """Two hosts; the owner "olivia" in host 1, saving files into ``tmp/downloads``."""
    with Lan(2) as lan:
        owner = ChatNode(lan.hosts[0], tmp / "owner", "olivia")
        owner.daemon_args = ["--downloads", str(tmp / "downloads")]
        owner.start()
        try:
            yield GuestLan(lan, owner, tmp)
        finally:
            lan.hosts[1].clear_drops()
            owner.stop()


@pytest.fixture(scope="module")
def guest_lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestLan]:
    """Two hosts; a daemon named "olivia" in host 1 (the owner). Shared by the module."""
    require_netns()
    require_chromium()
    tmp = tmp_path_factory.mktemp("guests")
    with Lan(2) as lan:
        owner = ChatNode(lan.hosts[0], tmp / "owner", OWNER_NAME)
        owner.start()
        try:
            yield GuestLan(lan, owner, tmp)
        finally:
            lan.hosts[1].clear_drops()
            owner.stop()


@pytest.fixture
def clean_drops(guest_lan: GuestLan) -> Iterator[None]:
    """Whatever a test drops in host 2, the next test starts with a clean network."""
    guest_lan.guest_host.clear_drops()
    yield
    guest_lan.guest_host.clear_drops()


# -- the guest's browser -------------------------------------------------------------


async def guest_context(launch_browser: LaunchBrowser, gl: GuestLan) -> BrowserContext:
    browser: Browser = await launch_browser(gl.guest_host.name)
    return await new_context(browser)


async def open_link(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(url, timeout=UI_MS)
    return page


async def join(page: Page, name: str) -> None:
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name="Join").click()


async def wait_connected(page: Page) -> None:
    try:
        await page.wait_for_selector("#status[data-state=connected]", timeout=CONNECT_MS)
    except Exception as exc:
        raise AssertionError(f"guest page not connected: {await page_state(page)}") from exc


async def page_state(page: Page) -> dict[str, Any]:
    return {
        "state": await page.get_attribute("#status", "data-state"),
        "status": await page.inner_text("#status"),
        "error": await page.text_content("#error"),
    }


async def send_from_page(page: Page, text: str) -> None:
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Send").click()


async def expect_in_log(page: Page, text: str) -> None:
    await expect(page.get_by_role("log")).to_contain_text(text, timeout=UI_MS)


async def wait_error(page: Page, *needles: str) -> str:
    """Wait until #error is shown and says all of ``needles`` (case-insensitive)."""
    error = page.locator("#error")
    await expect(error).to_be_visible(timeout=CONNECT_MS)
    for needle in needles:
        await expect(error).to_contain_text(needle, ignore_case=True, timeout=CONNECT_MS)
    return await error.inner_text()


async def chat_both_ways(gl: GuestLan, page: Page, label: str) -> tuple[str, str]:
    """Guest → owner and owner → guest; returns the two texts."""
    to_owner, to_guest = unique("hello owner"), unique("hello guest")
    await send_from_page(page, to_owner)
    got = await asyncio.to_thread(
        gl.wait_event, "message", direction="in", peer_id=label, text=to_owner
    )
    assert got["text"] == to_owner
    result = await asyncio.to_thread(gl.owner.cli, "send", label, to_guest)
    assert result.returncode == 0, result.stderr
    await expect_in_log(page, to_guest)
    return to_owner, to_guest


def with_authority(url: str, host: str, port: int) -> str:
    """The same link (path and fragment) on another host:port."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{host}:{port}").geturl()


# -- 1. a guest joins and chats --------------------------------------------------------


async def test_guest_joins_and_chats_both_ways(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    gl = guest_lan
    invite = gl.invite()
    assert "#" in invite["url"]
    fragment = invite["url"].split("#", 1)[1]
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    # The secret leaves the address bar at once (history.replaceState).
    assert "#" not in page.url, page.url
    assert fragment not in page.url
    assert await page.evaluate("location.hash") == ""

    await join(page, "gus")
    await wait_connected(page)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    label = joined["peer_id"]
    assert label.startswith("guest:")
    assert joined["name"] == "gus"
    assert joined["path"] == "direct"

    await expect(page.locator("#peer-name")).to_have_text(OWNER_NAME)
    assert await page.get_attribute("#status", "data-state") == "connected"
    await expect(page.locator("#status")).to_contain_text("direct")
    await expect(page.locator("#path")).to_have_text("direct")
    await expect(page.locator("html")).to_have_attribute("data-path", "direct")  # ice.js
    safety_label = await page.get_attribute("#safety", "aria-label")
    assert safety_label is not None
    page_digits = "".join(ch for ch in safety_label if ch.isdigit())
    node_digits = "".join(ch for ch in joined["safety_number"] if ch.isdigit())
    assert len(node_digits) == 60, joined
    assert page_digits == node_digits

    to_owner, to_guest = await chat_both_ways(gl, page, label)
    # The page's own message shows delivered (the owner's receipt came back).
    mine = page.locator(".msg.out", has_text=to_owner)
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )
    await expect(page.locator(".msg.in", has_text=to_guest)).to_have_count(1)

    history = await asyncio.to_thread(gl.owner.cli_json, "history", label)
    texts = {(m["direction"], m["text"]) for m in history}
    assert ("in", to_owner) in texts, history
    assert ("out", to_guest) in texts, history
    await context.close()


async def test_phone_guest_joins_and_chats_both_ways(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    """Chromium emulating a phone (Playwright's Pixel 7: viewport, touch, mobile UA)."""
    gl = guest_lan
    invite = gl.invite()
    browser = await launch_browser(gl.guest_host.name)
    context = await new_context(browser, **launch_browser.devices["Pixel 7"])  # type: ignore[attr-defined]
    page = await open_link(context, invite["url"])
    assert await page.evaluate("navigator.maxTouchPoints") > 0
    await page.get_by_label("Your name").fill("phone")
    await page.get_by_role("button", name="Join").tap()
    await wait_connected(page)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["path"] == "direct", joined
    await chat_both_ways(gl, page, joined["peer_id"])
    await context.close()


async def test_firefox_guest_joins_and_chats_both_ways(
    guest_lan: GuestLan, launch_firefox: LaunchFirefox, clean_drops: None
) -> None:
    """Firefox ESR offers only ``<uuid>.local`` host candidates (and end-of-candidates);
    the owner answers at once with its own, Firefox's checks reach them, and the
    session is direct."""
    gl = guest_lan
    await firefox_chats_both_ways(gl, await launch_firefox(gl.guest_host), "fox", "direct")


async def firefox_chats_both_ways(gl: GuestLan, page: FirefoxPage, name: str, path: str) -> Event:
    """Join as ``name`` through a new invite; chat both ways; the ``guest_joined`` event."""
    invite = gl.invite()
    loaded = await page.goto(invite["url"])
    assert loaded["status"] == 200, loaded
    await guest_join(page, name)
    state = await guest_wait_connected(page)
    assert state["path"] == path, state
    assert state["error"] == "", state
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert (joined["name"], joined["path"]) == (name, path), joined
    label = joined["peer_id"]
    to_owner, to_guest = unique("hello owner"), unique("hello guest")
    await guest_send(page, to_owner)
    got = await asyncio.to_thread(
        gl.wait_event, "message", direction="in", peer_id=label, text=to_owner
    )
    assert got["text"] == to_owner
    result = await asyncio.to_thread(gl.owner.cli, "send", label, to_guest)
    assert result.returncode == 0, result.stderr
    await guest_wait_in_log(page, to_guest)
    await guest_wait_delivered(page, to_owner)
    return joined


# -- 2. links that no longer work --------------------------------------------------------


async def test_expired_link_is_refused(guest_lan: GuestLan, launch_browser: LaunchBrowser) -> None:
    gl = guest_lan
    invite = gl.invite("--expires", "2s")
    await asyncio.sleep(3)
    context = await guest_context(launch_browser, gl)
    page = await context.new_page()
    response = await page.goto(invite["url"], timeout=UI_MS)
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("This link is not valid")
    await expect(page.locator("body")).to_contain_text("ask for a new one")
    await context.close()


THEME_PROPS = ("background-color", "color", "font-family", "font-size")


THEME_JS = """(props) => Object.fromEntries(["body", ".bar", ".brand"].map((sel) => {
    const el = document.querySelector(sel);
    const style = el ? getComputedStyle(el) : null;
    return [sel, Object.fromEntries(props.map((p) => [p, style ? style.getPropertyValue(p) : ""]))];
}))"""


async def theme_of(page: Page) -> dict[str, dict[str, str]]:
    """Computed styles of the page's body, its bar and its brand (the theme's marks)."""
    styles: dict[str, dict[str, str]] = await page.evaluate(THEME_JS, list(THEME_PROPS))
    return styles


async def test_not_valid_page_wears_the_page_theme_and_says_nothing_more(
    guest_lan: GuestLan, launch_browser: LaunchBrowser
) -> None:
    gl = guest_lan
    live = gl.invite()
    expired = gl.invite("--expires", "1s")
    await asyncio.sleep(2)
    context = await guest_context(launch_browser, gl)
    real = await open_link(context, live["url"])
    await expect(real.locator("#status")).to_be_visible(timeout=UI_MS)
    theme = await theme_of(real)
    assert "monospace" in theme["body"]["font-family"], theme

    never = base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()  # a room nobody opened
    pages = {"expired": expired["url"], "never": with_room(expired["url"], never)}
    bodies: dict[str, bytes] = {}
    for why, url in pages.items():
        page = await context.new_page()
        response = await page.goto(url, timeout=UI_MS)
        assert response is not None
        assert response.status == 404, why
        bodies[why] = await response.body()
        await expect(page.locator("h1")).to_have_text("This link is not valid")
        await expect(page.locator("body")).to_contain_text("ask for a new one")
        # The guest page's own look: its stylesheet, same origin, allowed by the CSP.
        assert await theme_of(page) == theme, why
    assert bodies["expired"] == bodies["never"]  # one generic page: nothing to probe
    await context.close()


def with_room(url: str, room_id: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/c/{room_id}", fragment="").geturl()


async def test_revoked_link_is_refused(guest_lan: GuestLan, launch_browser: LaunchBrowser) -> None:
    gl = guest_lan
    invite = gl.invite()
    context = await guest_context(launch_browser, gl)
    # The page was already open when the owner revoked the link: joining fails clearly.
    early = await open_link(context, invite["url"])
    result = await asyncio.to_thread(gl.owner.cli, "revoke", invite["invite_id"])
    assert result.returncode == 0, result.stderr
    assert "revoked" in result.stdout
    # The page's socket was opened before the revocation (at load, for its probe): the
    # owner refuses the Join as revoked; a socket opened after it gets "not valid".
    # Revoking also closes the sockets of guests still at Join, so the page may show
    # the refusal before the Join is pressed (its form hidden): both are correct.
    try:
        await early.get_by_label("Your name").fill("late", timeout=5_000)
        await early.get_by_role("button", name="Join").click(timeout=5_000)
    except PlaywrightTimeoutError:
        assert await early.get_attribute("#status", "data-state") == "failed"
    text = await wait_error(early, "ask for a new one")
    assert "not valid" in text or "revoked" in text, text
    assert await early.get_attribute("#status", "data-state") == "failed"
    # Opened after the revocation: the generic 404 page.
    page = await context.new_page()
    response = await page.goto(invite["url"], timeout=UI_MS)
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("This link is not valid")
    assert not [i for i in gl.owner.cli_json("invites") if i["invite_id"] == invite["invite_id"]]
    await context.close()


async def test_used_up_link_is_refused(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    gl = guest_lan
    invite = gl.invite("--uses", "1")
    browser = await launch_browser(gl.guest_host.name)
    first = await new_context(browser)
    page = await open_link(first, invite["url"])
    await join(page, "first")
    await wait_connected(page)
    await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])

    second = await new_context(browser)  # a separate browser context: another guest
    other = await open_link(second, invite["url"])
    # Said before asking for a name: the page never shows its Join form.
    text = await wait_error(other, "already used")
    assert "ask for a new one" in text
    assert await other.get_attribute("#status", "data-state") == "failed"
    assert await other.locator("#join").is_hidden()
    refused = await asyncio.to_thread(gl.wait_event, "guest_refused", invite_id=invite["invite_id"])
    assert "already used" in refused["reason"]
    # The first guest is still in; the count did not move.
    assert await page.get_attribute("#status", "data-state") == "connected"
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (0, 1)
    # The guest already in still gets back in (its tab keeps its guest id).
    await page.reload(timeout=UI_MS)
    await wait_connected(page)
    assert await page.locator("#join").is_hidden()
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (0, 1)
    await first.close()
    await second.close()


# -- 3. link previews ---------------------------------------------------------------------

PREVIEW = """
import ssl, sys, urllib.request
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for _ in range(int(sys.argv[2])):
    with urllib.request.urlopen(sys.argv[1], context=ctx, timeout=20) as r:
        body = r.read()
        print(r.status, len(body), r.headers.get("Cache-Control"), flush=True)
"""


async def test_link_preview_does_not_burn_the_link(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    gl = guest_lan
    invite = gl.invite("--uses", "1")
    page_url = invite["url"].split("#", 1)[0]  # a previewer never sees the fragment
    result = await asyncio.to_thread(gl.guest_host.run, [PYTHON, "-c", PREVIEW, page_url, "4"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert all(line.startswith("200 ") and line.endswith("no-store") for line in lines), lines
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (1, 0)

    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    await join(page, "previewed")
    await wait_connected(page)
    await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (0, 1)
    await context.close()


#: Injected before the page's own scripts (through the DevTools protocol, so the CSP does
#: not apply): counts the WebSockets the page opens.
COUNT_SOCKETS = """
(() => {
  const opened = [];
  Object.defineProperty(window, "__p2pchatSockets", { value: opened });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      opened.push(String(args[0]));
    }
  };
})();
"""


async def test_a_page_left_at_join_spends_nothing_and_joins_on_one_socket(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    """The page opens its WebSocket and gathers ICE while it shows Join (and probes on
    that socket): a tab that never joins spends no use of a one-use link, and a guest
    who joins does it on the socket its probe used."""
    gl = guest_lan
    invite = gl.invite("--uses", "1")
    browser = await launch_browser(gl.guest_host.name)
    idle = await new_context(browser)
    await idle.add_init_script(COUNT_SOCKETS)
    page = await open_link(idle, invite["url"])
    await expect(page.get_by_role("button", name="Join")).to_be_visible(timeout=UI_MS)
    assert len(await page.evaluate("window.__p2pchatSockets")) == 1
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (1, 0)
    await idle.close()  # left at the Join form
    assert not gl.events("guest_joined", invite_id=invite["invite_id"])

    joiner = await new_context(browser)
    await joiner.add_init_script(COUNT_SOCKETS)
    page = await open_link(joiner, invite["url"])
    await join(page, "late-joiner")
    await wait_connected(page)
    await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    sockets = await page.evaluate("window.__p2pchatSockets")
    assert len(sockets) == 1, sockets  # the probe's socket carried the Join
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (0, 1)
    await joiner.close()


async def test_firefox_used_up_link_and_not_valid_page(
    guest_lan: GuestLan,
    launch_browser: LaunchBrowser,
    launch_firefox: LaunchFirefox,
    clean_drops: None,
) -> None:
    """Firefox ESR: a used-up link says so without the Join form; the 404 page wears
    the page's theme."""
    gl = guest_lan
    invite = gl.invite("--uses", "1")
    context = await guest_context(launch_browser, gl)
    first = await open_link(context, invite["url"])
    await join(first, "first")
    await wait_connected(first)
    await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])

    fox = await launch_firefox(gl.guest_host)
    loaded = await fox.goto(invite["url"])
    assert loaded["status"] == 200, loaded  # the room stays live for the guest already in
    state = await fox.wait_for(
        """() => !document.getElementById("error").hidden && {
            error: document.getElementById("error").textContent,
            joinHidden: document.getElementById("join").hidden }""",
    )
    assert "already used" in state["error"], state
    assert state["joinHidden"], state
    theme = await fox.evaluate(THEME_JS, list(THEME_PROPS))
    assert "monospace" in theme["body"]["font-family"], theme

    never = base64.urlsafe_b64encode(bytes(range(16, 32))).rstrip(b"=").decode()
    loaded = await fox.goto(with_room(invite["url"], never))
    assert loaded["status"] == 404, loaded
    assert await fox.evaluate(THEME_JS, list(THEME_PROPS)) == theme
    await context.close()


# -- 3b. a tab in the background -----------------------------------------------------------

# Records every Notification the page makes (headless Chromium shows none).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (typeof Real !== "function") return;
  window.__notes = [];
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title, body: options?.body ?? "" });
    }
  };
})();
"""

SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => state === "hidden" });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


async def test_background_tab_counts_unread_and_notifies(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    gl = guest_lan
    invite = gl.invite()
    browser = await launch_browser(gl.guest_host.name)
    origin = "https://" + urlsplit(invite["url"]).netloc
    context = await new_context(browser, permissions=["notifications"])
    await context.grant_permissions(["notifications"], origin=origin)
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await open_link(context, invite["url"])
    await join(page, "backgrounder")
    await wait_connected(page)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    label = joined["peer_id"]
    assert await page.title() == "p2pchat"

    async def owner_says(text: str) -> None:
        result = await asyncio.to_thread(gl.owner.cli, "send", label, text)
        assert result.returncode == 0, result.stderr
        await expect_in_log(page, text)

    # Visible: no count, no notification.
    await owner_says(unique("seen at once"))
    assert await page.title() == "p2pchat"
    assert await page.evaluate("window.__notes.length") == 0

    await page.evaluate(SET_VISIBILITY, "hidden")
    first, second = unique("while away one"), unique("while away two")
    await owner_says(first)
    await expect(page).to_have_title("(1) p2pchat", timeout=UI_MS)
    await owner_says(second)
    await expect(page).to_have_title("(2) p2pchat", timeout=UI_MS)
    notes = await page.evaluate("window.__notes")
    assert len(notes) == 2, notes
    assert notes[0]["title"] == f"{OWNER_NAME} (p2pchat)"
    assert [n["body"] for n in notes] == ["1 new message", "2 new messages"], notes
    assert not [n for n in notes if first in str(n) or second in str(n)], notes  # never the text

    await page.evaluate(SET_VISIBILITY, "visible")
    await expect(page).to_have_title("p2pchat", timeout=UI_MS)
    await owner_says(unique("back again"))
    assert await page.title() == "p2pchat"
    assert len(await page.evaluate("window.__notes")) == 2
    await context.close()


# -- 4. reconnect ---------------------------------------------------------------------------


async def test_reload_reconnects_as_the_same_guest(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    gl = guest_lan
    invite = gl.invite("--uses", "1")
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    await join(page, "reloader")
    await wait_connected(page)
    first = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    label = first["peer_id"]
    await chat_both_ways(gl, page, label)

    await page.reload(timeout=UI_MS)  # same tab: sessionStorage keeps secret and guest id
    await wait_connected(page)  # no Join form this time: it reconnects at once

    def second_join() -> list[Event]:
        gl.owner.wait_for(
            lambda e: (
                e.get("type") == "guest_joined"
                and e.get("invite_id") == invite["invite_id"]
                and e is not first
            ),
            timeout=EVENT_S,
        )
        return gl.events("guest_joined", invite_id=invite["invite_id"])

    joins = await asyncio.to_thread(second_join)
    assert len(joins) == 2, joins
    assert {j["peer_id"] for j in joins} == {label}  # the same guest id, the same label
    assert joins[1]["safety_number"] != joins[0]["safety_number"]  # a new session, new keys
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (0, 1)  # the reconnect used nothing
    await chat_both_ways(gl, page, label)
    await context.close()


# -- 5. relay fallback ------------------------------------------------------------------------


async def test_relay_fallback_without_udp(
    guest_lan: GuestLan, launch_browser: LaunchBrowser, clean_drops: None
) -> None:
    gl = guest_lan
    gl.guest_host.drop_udp(100)  # no WebRTC (and no mDNS) for host 2: relay only
    invite = gl.invite()
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    await join(page, "relayed")
    await wait_connected(page)
    await expect(page.locator("#path")).to_contain_text("relay")
    await expect(page.locator("#status")).to_contain_text("relay")
    await expect(page.locator("html")).to_have_attribute("data-path", "websocket")  # ice.js
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["path"] == "relay"
    to_owner, _ = await chat_both_ways(gl, page, joined["peer_id"])
    mine = page.locator(".msg.out", has_text=to_owner)
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )
    await context.close()


# -- 6. an untrusted relay in between -----------------------------------------------------------


class RelayProxy(ProxyProcess):
    """tests/browser/relay_proxy.py running in host 1 in front of the node's server."""

    def __init__(self, gl: GuestLan, invite_url: str, mode: str) -> None:
        workdir = gl.tmp / unique(f"proxy-{mode}")
        upstream = urlsplit(invite_url).netloc
        args = ["--upstream", upstream, "--cert-dir", str(workdir / "tls"), "--mode", mode]
        super().__init__(gl.owner_host, workdir, args)
        self.url = with_authority(invite_url, self.host.ip, self.port)


@pytest.fixture
def relay_proxies(guest_lan: GuestLan) -> Iterator[Callable[[str, str], RelayProxy]]:
    proxies: list[RelayProxy] = []

    def start(invite_url: str, mode: str) -> RelayProxy:
        proxy = RelayProxy(guest_lan, invite_url, mode)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def secret_forms(url: str) -> list[bytes]:
    """The link secret as the fragment (base64url), its raw bytes and its hex."""
    fragment = url.split("#", 1)[1]
    raw = base64.urlsafe_b64decode(fragment + "=" * (-len(fragment) % 4))
    assert len(raw) == 32
    return [fragment.encode(), raw, raw.hex().encode(), raw.hex().upper().encode()]


async def test_relay_sees_only_ciphertext(
    guest_lan: GuestLan,
    launch_browser: LaunchBrowser,
    relay_proxies: Callable[[str, str], RelayProxy],
    clean_drops: None,
) -> None:
    """Everything the guest and the owner say through the relay is recorded: no SDP, no
    message text, no link secret in it. UDP is dropped in host 2 so the chat itself also
    runs through the relay (RELAY frames), not only the handshake."""
    gl = guest_lan
    invite = gl.invite()
    proxy = relay_proxies(invite["url"], "pass")
    gl.guest_host.drop_udp(100)
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, proxy.url)
    assert "#" not in page.url
    await join(page, "Gwendolyn-the-guest")
    await wait_connected(page)
    await expect(page.locator("#path")).to_contain_text("relay")
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["path"] == "relay"
    page_label = await page.get_attribute("#safety", "aria-label")
    assert page_label is not None
    assert "".join(c for c in page_label if c.isdigit()) == "".join(
        c for c in joined["safety_number"] if c.isdigit()
    )  # nobody in the middle: the relay could not change the keys
    texts = await chat_both_ways(gl, page, joined["peer_id"])
    await context.close()
    await asyncio.sleep(0.5)  # let the proxy write the last frames

    records = proxy.records()
    tags = [tag for tag, _ in records]
    heads = [data for tag, data in records if tag == "H"]
    assert any(
        h.startswith(b"GET /c/" + invite["url"].split("/c/")[1].split("#")[0].encode())
        for h in heads
    )
    assert any(h.startswith(b"GET /static/") for h in heads)
    assert any(h.startswith(b"GET /ws/") for h in heads)
    up_signals = [d for t, d in records if t == "g" and d[:1] == bytes([SIGNAL])]
    down_signals = [d for t, d in records if t == "G" and d[:1] == bytes([SIGNAL])]
    up_relay = [d for t, d in records if t == "g" and d[:1] == bytes([RELAY])]
    down_relay = [d for t, d in records if t == "G" and d[:1] == bytes([RELAY])]
    assert len(up_signals) >= 1, tags  # the OFFER…
    assert len(down_signals) >= 1, tags  # …and the ANSWER went through it
    assert len(up_relay) >= 2, tags  # stream header + chat frames, both ways
    assert len(down_relay) >= 2, tags
    everything = b"\n".join(data for _, data in records)
    forbidden = [b"v=0", b"a=fingerprint", b"candidate", b"Gwendolyn", OWNER_NAME.encode()]
    forbidden += [t.encode() for t in texts]
    forbidden += secret_forms(invite["url"])
    for needle in forbidden:
        assert needle not in everything, f"the relay saw {needle!r}"
    # The HTTP requests themselves (where a careless page would leak a Referer or the
    # fragment) carry no secret either.
    for head in heads:
        assert b"#" not in head.split(b"\r\n", 1)[0]


#: Injected before the page's own scripts (through the DevTools protocol, so the CSP does
#: not apply): remembers how each WebSocket of the page was closed.
RECORD_CLOSES = """
(() => {
  const closes = [];
  Object.defineProperty(window, "__p2pchatCloses", { value: closes });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("close", (e) => closes.push({ code: e.code, reason: e.reason }));
    }
  };
})();
"""


async def flipped_guest(
    gl: GuestLan,
    launch_browser: LaunchBrowser,
    relay_proxies: Callable[[str, str], RelayProxy],
) -> tuple[dict[str, Any], Page]:
    """A new guest opening a link through a relay that flips a bit in every OFFER;
    returns once the owner has refused it and the page has been told. The first
    OFFER is the page's probe, sent before its Join form: the page stops there."""
    invite = gl.invite()
    proxy = relay_proxies(invite["url"], "flip")
    context = await guest_context(launch_browser, gl)
    await context.add_init_script(RECORD_CLOSES)
    page = await open_link(context, proxy.url)
    refused = await asyncio.to_thread(gl.wait_event, "guest_refused", invite_id=invite["invite_id"])
    assert "tampered" in refused["reason"], refused
    assert "handshake failed" in refused["reason"], refused
    closed = await asyncio.to_thread(
        proxy.wait_for, lambda e: e["event"] == "ws_closed" and e["code"] == 4400
    )
    assert "tampered" in closed["reason"], closed
    # The page stops and says why (a reload tries again): no silent retry loop, and
    # no Join form for a link that cannot work through this relay.
    await page.wait_for_selector("#status[data-state=failed]", timeout=CONNECT_MS)
    closes = await page.evaluate("window.__p2pchatCloses")
    assert {"code": 4400, "reason": "handshake failed (tampered)"} in closes, closes
    assert await page.locator("#join").is_hidden()
    return invite, page


async def test_relay_flipping_a_bit_fails_the_handshake(
    guest_lan: GuestLan,
    launch_browser: LaunchBrowser,
    relay_proxies: Callable[[str, str], RelayProxy],
    clean_drops: None,
) -> None:
    """The relay flips one bit inside every OFFER's ciphertext.

    Owner: refuses each OFFER (``guest_refused``, reason ``handshake failed (tampered):
    …``), closes the guest's socket with 4400 ``handshake failed (tampered)``; no guest
    joins and no use is consumed. Guest: its socket is closed with that code and
    reason, and it never connects (it stops, state ``failed``, until the user reloads).
    What the page shows is checked by the next test.
    """
    gl = guest_lan
    invite, page = await flipped_guest(gl, launch_browser, relay_proxies)
    await asyncio.sleep(1)
    assert await page.get_attribute("#status", "data-state") != "connected"
    await expect(page.locator("#peer-name")).to_be_hidden()
    assert not gl.events("guest_joined", invite_id=invite["invite_id"])
    view = gl.invite_view(invite["invite_id"])
    assert (view["uses_left"], view["guests"]) == (1, 0)


async def test_relay_flipping_a_bit_page_shows_a_clear_error(
    guest_lan: GuestLan,
    launch_browser: LaunchBrowser,
    relay_proxies: Callable[[str, str], RelayProxy],
    clean_drops: None,
) -> None:
    """DESIGN.md section 3: a relay that flips a bit makes the handshake fail with a
    clear error on both sides. The guest's side: #error says the handshake failed
    because of tampering."""
    _, page = await flipped_guest(guest_lan, launch_browser, relay_proxies)
    error = page.locator("#error")
    await expect(error).to_be_visible(timeout=5_000)
    await expect(error).to_contain_text("tamper", ignore_case=True)


async def test_relay_reflecting_envelopes_fails_the_handshake(
    guest_lan: GuestLan,
    launch_browser: LaunchBrowser,
    relay_proxies: Callable[[str, str], RelayProxy],
    clean_drops: None,
) -> None:
    """The relay reflects an envelope back to the side that sealed it, on both sides.

    The guest's OFFER reaches the owner, which answers. The relay then gives the guest
    its own OFFER instead of that ANSWER, and sends the owner's ANSWER back to the owner
    as an OFFER on a WebSocket of its own. "Both sides" means each endpoint is handed
    its own envelope and refuses it:

    * Guest: refuses the reflected OFFER (code ``reflected``), shows it in #error, state
      ``failed``, and never connects (the page keeps waiting for a genuine ANSWER,
      which the relay withholds).
    * Owner: refuses its reflected ANSWER (``guest_refused``, reason with ``reflected``;
      the relay's socket is closed 4400). The genuine OFFER it answered reserved a use
      for the guest's id, but no session ever opens (no ``guest_joined``), so the use
      is released when the attempt times out.
    """
    gl = guest_lan
    invite = gl.invite()
    proxy = relay_proxies(invite["url"], "reflect")
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, proxy.url)
    await join(page, "reflected")
    text = await wait_error(page, "reflected")
    assert "own offer came back" in text.lower(), text
    await expect(page.locator("#status")).to_have_attribute("data-state", "failed")
    refused = await asyncio.to_thread(gl.wait_event, "guest_refused", invite_id=invite["invite_id"])
    assert "reflected" in refused["reason"], refused
    closed = await asyncio.to_thread(
        proxy.wait_for, lambda e: e["event"] == "attacker_closed" and e["what"] == "reflect"
    )
    assert closed["code"] == 4400, closed
    assert "reflected" in (closed["reason"] or ""), closed
    assert await page.get_attribute("#status", "data-state") == "failed"
    assert not gl.events("guest_joined", invite_id=invite["invite_id"])
    await context.close()


async def test_relay_replaying_envelopes_fails_the_handshake(
    guest_lan: GuestLan,
    launch_browser: LaunchBrowser,
    relay_proxies: Callable[[str, str], RelayProxy],
    clean_drops: None,
) -> None:
    """The relay replays envelopes of an earlier session, to both sides.

    * Owner: the relay sends the guest's first OFFER again on a WebSocket of its own;
      the owner refuses it (``guest_refused``, reason with ``replayed``; socket closed
      4400) and the real guest's session is unharmed.
    * Guest: after a reload (same tab: a new attempt with a new session), the relay
      gives the page the owner's ANSWER of the first session instead of the new one;
      the page refuses it (it belongs to another session: ``wrong-session``), shows it
      in #error with state ``failed``, and keeps waiting (the genuine ANSWER is
      withheld), so it never connects with the stale answer.
    """
    gl = guest_lan
    invite = gl.invite()
    proxy = relay_proxies(invite["url"], "replay")
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, proxy.url)
    await join(page, "replayed")
    await wait_connected(page)  # the first session goes through untouched
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])

    refused = await asyncio.to_thread(gl.wait_event, "guest_refused", invite_id=invite["invite_id"])
    assert "replayed" in refused["reason"], refused
    closed = await asyncio.to_thread(
        proxy.wait_for, lambda e: e["event"] == "attacker_closed" and e["what"] == "replay"
    )
    assert closed["code"] == 4400, closed
    assert "replayed" in (closed["reason"] or ""), closed
    await chat_both_ways(gl, page, joined["peer_id"])  # the real session is unharmed

    await page.reload(timeout=UI_MS)
    await asyncio.to_thread(proxy.wait_for, lambda e: e["event"] == "replayed_answer", EVENT_S)
    text = await wait_error(page, "another session")
    await expect(page.locator("#status")).to_have_attribute("data-state", "failed")
    assert "interfering" in text
    await context.close()
