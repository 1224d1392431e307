"""A browser guest in a group, in real Chromium (docs/guest-protocol.md, "Groups").

The owner's side is tests/browser/group_host.py (p2pchat's own protocol code playing the
host's part until the node's groups module exists), in a test namespace together with
Chromium; the page talks to it over 127.0.0.1 on the relay path.

No timing thresholds: the timeouts below only catch hangs.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.chromium import new_context
from tests.browser.conftest import LaunchBrowser, LaunchFirefox
from tests.browser.firefox import (
    guest_join,
    guest_send,
    guest_wait_connected,
    guest_wait_delivered,
    guest_wait_in_log,
)
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON, Host

pytestmark = [pytest.mark.browser, pytest.mark.lan]

SCRIPT = Path(__file__).with_name("group_host.py")
REPO = Path(__file__).resolve().parents[2]
CONNECT_MS = 45_000
UI_MS = 20_000
EVENT_S = 45.0


class GroupHostProcess:
    """group_host.py in a namespace; its JSON lines, in order."""

    def __init__(self, host: Host, mode: str) -> None:
        self.proc = host.popen(
            [PYTHON, str(SCRIPT), mode], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait("ready")["url"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait(self, event: str, **fields: Any) -> dict[str, Any]:
        """The next line of that event (and fields); an ``error`` line fails at once."""
        while True:
            try:
                line = self.lines.get(timeout=EVENT_S)
            except queue.Empty:
                raise AssertionError(f"no {event} from the host; got {self.seen}") from None
            self.seen.append(line)
            assert line.get("event") != "error", line
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items()):
                return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def group_host(make_lan: MakeLan) -> Iterator[tuple[Host, list[GroupHostProcess]]]:
    host = make_lan(1).hosts[0]
    started: list[GroupHostProcess] = []
    yield host, started
    for proc in started:
        proc.stop()


async def open_and_join(launch_browser: LaunchBrowser, host: Host, url: str) -> Page:
    browser = await launch_browser(host.name)
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(url, timeout=UI_MS)
    await page.get_by_label("Your name").fill("Zoë")
    await page.get_by_role("button", name="Join").click()
    await page.wait_for_selector("#status[data-state=connected]", timeout=CONNECT_MS)
    return page


async def send(page: Page, text: str) -> None:
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Send").click()


async def test_guest_in_a_group_sees_members_and_messages_and_sends_signed_ones(
    group_host: tuple[Host, list[GroupHostProcess]], launch_browser: LaunchBrowser
) -> None:
    host, started = group_host
    gh = GroupHostProcess(host, "group")
    started.append(gh)
    page = await open_and_join(launch_browser, host, gh.url)
    log = page.get_by_role("log")

    # The list came first: the group, its members, the page itself as "me".
    await expect(page.locator("#group")).to_be_visible(timeout=UI_MS)
    await expect(page.locator("#group-name")).to_have_text("Team ✓")
    members = page.locator("#members li")
    await expect(members).to_have_count(5)
    await expect(page.locator("#members li.you")).to_have_text("me (you, guest)")
    await expect(page.locator("#members li", has_text="Alice")).to_contain_text("admin")
    await expect(page.locator("#peer-label")).to_have_text("in the group through")
    await expect(log).to_contain_text("You joined the group “Team ✓” (5 members).")
    assert await page.title() == "Team ✓ · p2pchat"

    # Members' messages with their names; the forged one (bad signature) never shows,
    # the one after it does; names and texts from the network stay text.
    await expect(log).to_contain_text("hello from carol", timeout=UI_MS)
    incoming = page.locator(".msg.in")
    assert await incoming.locator(".who").all_inner_texts() == ["Alice", "<b>bold</b>", "Carol"]
    assert await incoming.locator(".text").all_inner_texts() == [
        "hello from alice",
        "<i>not italic</i>",
        "hello from carol",
    ]
    assert "forged" not in await log.inner_text()
    assert await page.locator("#log b, #log i, #members b").count() == 0

    # The page sends a signed group message; the host (as a member) accepts its chain,
    # the frame id is the copy id for the host, and its receipt marks it delivered.
    await send(page, "hi group ✓")
    got = gh.wait("group_message")
    assert got == {
        "event": "group_message", "kind": 6, "verdict": "accepted", "code": "",
        "text": "hi group ✓", "seq": 1, "copy_ok": True,
    }  # fmt: skip
    mine = page.locator(".msg.out", has_text="hi group ✓")
    await expect(mine.locator(".who")).to_have_text("me")
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )

    # A newer list: Carol left, Dave joined, and Dave's message shows.
    gh.wait("list2")
    await expect(log).to_contain_text("Carol left the group.", timeout=UI_MS)
    await expect(log).to_contain_text("Dave joined the group.")
    await expect(log).to_contain_text("hello from dave")
    await expect(members).to_have_count(5)
    assert "Carol" not in await page.locator("#members").inner_text()

    await send(page, "second")
    got = gh.wait("group_message")
    assert (got["verdict"], got["seq"], got["text"]) == ("accepted", 2, "second")
    await page.context.close()


async def test_guest_of_a_groups_owner_without_a_group_chats_one_to_one(
    group_host: tuple[Host, list[GroupHostProcess]], launch_browser: LaunchBrowser
) -> None:
    host, started = group_host
    gh = GroupHostProcess(host, "one-to-one")
    started.append(gh)
    page = await open_and_join(launch_browser, host, gh.url)
    await send(page, "just us")
    assert gh.wait("text")["text"] == "just us"
    mine = page.locator(".msg.out", has_text="just us")
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )
    await expect(page.locator("#group")).to_be_hidden()
    await expect(page.locator("#peer-label")).to_have_text("chatting with")
    await page.context.close()


_GROUP_VIEW = """() => ({
  name: document.querySelector("#group:not([hidden]) #group-name")?.textContent ?? "",
  members: [...document.querySelectorAll("#members li")].map((li) => li.textContent),
  who: [...document.querySelectorAll(".msg.in .who")].map((el) => el.textContent),
  markup: document.querySelectorAll("#log b, #log i, #members b").length,
})"""


async def test_firefox_guest_in_a_group(
    group_host: tuple[Host, list[GroupHostProcess]], launch_firefox: LaunchFirefox
) -> None:
    """The same in Firefox ESR: the list, members' messages, a signed message back."""
    host, started = group_host
    gh = GroupHostProcess(host, "group")
    started.append(gh)
    page = await launch_firefox(host)
    loaded = await page.goto(gh.url)
    assert loaded["status"] == 200, loaded
    await guest_join(page, "Fox")
    await guest_wait_connected(page)
    await guest_wait_in_log(page, "hello from carol")
    view = await page.evaluate(_GROUP_VIEW)
    assert view["name"] == "Team ✓", view
    assert "me (you, guest)" in view["members"], view
    assert len(view["members"]) == 5, view
    assert view["who"] == ["Alice", "<b>bold</b>", "Carol"], view
    assert view["markup"] == 0, view
    await guest_send(page, "from firefox ✓")
    got = gh.wait("group_message")
    assert (got["verdict"], got["text"], got["copy_ok"]) == ("accepted", "from firefox ✓", True)
    await guest_wait_delivered(page, "from firefox ✓")
    await guest_wait_in_log(page, "hello from dave")
