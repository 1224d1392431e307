"""Browser guests in a group, end to end: two real daemons and two headless Chromiums.

Host 1 runs alice (the group's admin, the guests' host), host 2 bob (a LAN member),
host 3 two Chromiums that open one ``invite --group`` link as Zoë and Yann. Every one
of the four sends; every one sees the other three's messages with the right sender
names, once. Then Yann closes his page: alice takes him off the list, and bob's
``groups --json`` no longer lists him. A guest alice keeps stays listed while its tab is
elsewhere, and when the tab comes back it gets what was sent meanwhile, once, in order. And a member who is not the admin cannot
invite guests to the group (one line).

No timing thresholds: the timeouts only catch hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.chromium import new_context
from tests.browser.conftest import LaunchBrowser
from tests.conftest import require_chromium, require_netns
from tests.lan.chat_nodes import ChatNode, Event, befriend
from tests.lan.netns import Lan

pytestmark = [pytest.mark.browser, pytest.mark.lan]

GROUP = "team"
CONNECT_MS = 45_000
UI_MS = 30_000
EVENT_S = 90.0


@dataclass
class GroupLan:
    lan: Lan
    alice: ChatNode
    bob: ChatNode
    group_id: str


@pytest.fixture
def group_lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GroupLan]:
    """alice and bob, contacts, in the group "team" alice made (she is its admin)."""
    require_netns()
    require_chromium()
    tmp = tmp_path_factory.mktemp("group-guests")
    with Lan(3) as lan:
        alice = ChatNode(lan.hosts[0], tmp / "alice", "alice")
        bob = ChatNode(lan.hosts[1], tmp / "bob", "bob")
        started: list[ChatNode] = []
        try:
            for node in (alice, bob):
                node.start()
                started.append(node)
            befriend(alice, bob)
            created = alice.cli_json("group", "create", GROUP, "bob")
            bob.wait_for(lambda e: _changed(e, "joined"), timeout=EVENT_S)
            yield GroupLan(lan, alice, bob, created["group_id"])
        finally:
            for node in started:
                node.stop()


def _changed(event: Event, change: str, member: str | None = None) -> bool:
    return (
        event.get("type") == "group_changed"
        and event.get("change") == change
        and (member is None or event.get("member_name") == member)
    )


def group_texts(node: ChatNode, group_id: str) -> list[tuple[str, str]]:
    """(sender, text) of every group message ``node`` received, in order."""
    return [(str(e["sender"]), str(e["text"])) for e in node.messages_in()
            if e.get("group_id") == group_id]  # fmt: skip


def member_names(node: ChatNode) -> list[str]:
    groups: list[dict[str, Any]] = node.cli_json("groups")
    [team] = [g for g in groups if g["name"] == GROUP]
    return [str(m["name"]) for m in team["members"]]


async def join_page(context: BrowserContext, url: str, name: str) -> Page:
    page = await context.new_page()
    await page.goto(url, timeout=UI_MS)
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name="Join").click()
    await page.wait_for_selector("#status[data-state=connected]", timeout=CONNECT_MS)
    await expect(page.locator("#group-name")).to_have_text(GROUP, timeout=UI_MS)
    return page


async def send_from(page: Page, text: str) -> None:
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Send").click()
    mine = page.locator(".msg.out", has_text=text)
    await expect(mine.locator(".receipt")).to_have_attribute(
        "data-state", "delivered", timeout=UI_MS
    )


async def page_incoming(page: Page) -> list[tuple[str, str]]:
    incoming = page.locator(".msg.in")
    who = await incoming.locator(".who").all_inner_texts()
    texts = await incoming.locator(".text").all_inner_texts()
    return list(zip(who, texts, strict=True))


async def test_two_guests_and_two_members_all_see_every_message_once(
    group_lan: GroupLan, launch_browser: LaunchBrowser
) -> None:
    gl = group_lan
    invite = gl.alice.cli_json("invite", "--group", GROUP, "--uses", "2")
    url = invite["url"]
    guest_host = gl.lan.hosts[2].name
    zoe = await join_page(await new_context(await launch_browser(guest_host)), url, "Zoë")
    yann = await join_page(await new_context(await launch_browser(guest_host)), url, "Yann")
    for page in (zoe, yann):  # each page holds the list with both guests
        await expect(page.locator("#members li")).to_have_count(4, timeout=UI_MS)
    await asyncio.to_thread(gl.bob.wait_for, lambda e: _changed(e, "member_added", "Yann"), EVENT_S)
    assert sorted(await asyncio.to_thread(member_names, gl.bob)) == [
        "Yann", "Zoë", "alice", "bob"
    ]  # fmt: skip

    sent = {name: f"hello from {name}" for name in ("alice", "bob", "Zoë", "Yann")}
    await asyncio.to_thread(gl.alice.cli, "send", GROUP, sent["alice"], check=True)
    await asyncio.to_thread(gl.bob.cli, "send", GROUP, sent["bob"], check=True)
    await send_from(zoe, sent["Zoë"])
    await send_from(yann, sent["Yann"])
    # A last message from each LAN member: behind everything else on its paths.
    for node in (gl.alice, gl.bob):
        await asyncio.to_thread(node.cli, "send", GROUP, f"last from {node.name}", check=True)
    last = {f"last from {n}" for n in ("alice", "bob")}

    def others(me: str) -> list[tuple[str, str]]:
        return sorted((n, t) for n, t in sent.items() if n != me) + sorted(
            (t.removeprefix("last from "), t) for t in last if not t.endswith(me)
        )

    for node in (gl.alice, gl.bob):
        want = others(node.name)
        await asyncio.to_thread(
            node.wait_for,
            lambda _e, node=node, want=want: len(group_texts(node, gl.group_id)) >= len(want),
            EVENT_S,
        )
        assert sorted(group_texts(node, gl.group_id)) == sorted(want), node.name
    for name, page in (("Zoë", zoe), ("Yann", yann)):
        log = page.get_by_role("log")
        for text in last:
            await expect(log).to_contain_text(text, timeout=UI_MS)
        await expect(page.locator(".msg.in")).to_have_count(len(others(name)), timeout=UI_MS)
        assert sorted(await page_incoming(page)) == sorted(others(name)), name


async def test_a_guest_who_leaves_is_taken_off_the_list(
    group_lan: GroupLan, launch_browser: LaunchBrowser
) -> None:
    gl = group_lan
    url = gl.alice.cli_json("invite", "--group", GROUP)["url"]
    context = await new_context(await launch_browser(gl.lan.hosts[2].name))
    await join_page(context, url, "Yann")
    await asyncio.to_thread(gl.bob.wait_for, lambda e: _changed(e, "member_added", "Yann"), EVENT_S)
    assert "Yann" in await asyncio.to_thread(member_names, gl.bob)
    await context.close()  # the guest closes its tab
    await asyncio.to_thread(
        gl.bob.wait_for, lambda e: _changed(e, "member_removed", "Yann"), EVENT_S
    )
    assert sorted(await asyncio.to_thread(member_names, gl.bob)) == ["alice", "bob"]
    assert sorted(await asyncio.to_thread(member_names, gl.alice)) == ["alice", "bob"]


async def test_a_kept_guest_reloads_and_gets_what_was_sent_while_it_was_away(
    group_lan: GroupLan, launch_browser: LaunchBrowser
) -> None:
    gl = group_lan
    url = gl.alice.cli_json("invite", "--group", GROUP)["url"]  # one use
    context = await new_context(await launch_browser(gl.lan.hosts[2].name))
    zoe = await join_page(context, url, "Zoë")
    kept = gl.alice.cli_json("group", "keep", GROUP, "Zoë")
    assert [m["kept"] for m in kept["members"] if m["name"] == "Zoë"] == [True]
    await zoe.goto("about:blank")  # the tab goes elsewhere: its session ends
    await asyncio.to_thread(
        gl.alice.wait_for, lambda e: e.get("type") == "guest_left" and e.get("name") == "Zoë",
        EVENT_S,
    )  # fmt: skip
    away = ["while away 1 (bob)", "while away 2 (bob)"]
    for text in away:
        await asyncio.to_thread(gl.bob.cli, "send", GROUP, text, check=True)
    await asyncio.to_thread(  # alice has bob's first: her own comes after them everywhere
        gl.alice.wait_for, lambda e: e.get("type") == "message" and e.get("text") == away[1],
        EVENT_S,
    )  # fmt: skip
    away.append("while away 3 (alice)")
    await asyncio.to_thread(gl.alice.cli, "send", GROUP, away[2], check=True)
    assert sorted(await asyncio.to_thread(member_names, gl.bob)) == ["Zoë", "alice", "bob"]

    await zoe.goto(url.split("#")[0], timeout=UI_MS)  # back: the tab kept the link and its key
    await zoe.wait_for_selector("#status[data-state=connected]", timeout=CONNECT_MS)
    await expect(zoe.locator(".msg.in")).to_have_count(len(away), timeout=UI_MS)
    assert await page_incoming(zoe) == [
        ("bob", away[0]), ("bob", away[1]), ("alice", away[2])
    ]  # fmt: skip
    await expect(zoe.locator("#members li")).to_have_count(3, timeout=UI_MS)
    await send_from(zoe, "back again")  # the same member: its chain goes on
    await asyncio.to_thread(
        gl.bob.wait_for, lambda e: e.get("type") == "message" and e.get("text") == "back again",
        EVENT_S,
    )  # fmt: skip
    assert not [e for e in gl.bob.events if _changed(e, "member_removed", "Zoë")]
    await context.close()


def test_only_the_admin_invites_guests_to_a_group(group_lan: GroupLan) -> None:
    result = group_lan.bob.cli("invite", "--group", GROUP)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"only alice can invite guests to {GROUP}: ask them" in lines[0]
    assert "Traceback" not in result.stderr
