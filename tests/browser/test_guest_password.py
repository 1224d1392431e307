"""A password link in a real Chromium (docs/guest-protocol.md "Password links"): the
Join form asks for the password; a wrong one is told with the tries left and the form
comes back; the right one joins and chats both ways. The owner is a real daemon made
with ``invite --password-file``; no timing thresholds (timeouts only catch hangs)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.browser.conftest import LaunchBrowser, LaunchFirefox
from tests.browser.firefox import (
    guest_send,
    guest_state,
    guest_wait_connected,
    guest_wait_delivered,
)
from tests.browser.test_guest_chat import (
    UI_MS,
    GuestLan,
    chat_both_ways,
    guest_context,
    guest_lan,
    open_link,
    wait_connected,
    wait_error,
)

pytestmark = [pytest.mark.browser, pytest.mark.lan]
__all__ = ["guest_lan"]  # the shared module fixture: one LAN and one owner here too

PASSWORD = "open sesame"


async def test_password_link_asks_refuses_a_wrong_one_then_joins(
    guest_lan: GuestLan, launch_browser: LaunchBrowser
) -> None:
    gl = guest_lan
    secret_file = gl.tmp / "link-password"
    secret_file.write_text(PASSWORD + "\n", encoding="utf-8")
    invite = gl.invite("--password-file", str(secret_file))
    assert invite["url"].endswith(".pw")
    assert invite["password"] is True
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    password = page.get_by_label("Password")
    await expect(password).to_be_visible(timeout=UI_MS)

    await page.get_by_label("Your name").fill("pat")
    await password.fill("open sesamE")
    await page.get_by_role("button", name="Join").click()
    await wait_error(page, "wrong password (4 tries left)")
    await expect(password).to_be_visible(timeout=UI_MS)  # asked again, field empty
    await expect(password).to_have_value("")
    refused = await asyncio.to_thread(gl.wait_event, "guest_refused", invite_id=invite["invite_id"])
    assert "wrong password" in refused["reason"]

    await password.fill(f"  {PASSWORD} ")  # the page normalises as the node does
    await page.get_by_role("button", name="Join").click()
    await wait_connected(page)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["name"] == "pat"
    await chat_both_ways(gl, page, joined["peer_id"])
    view = gl.invite_view(invite["invite_id"])
    assert view["uses_left"] == 0
    await context.close()


_JOIN_WITH_PASSWORD = """([name, password]) => {
  if (document.querySelector("#join").hidden) return false;
  if (document.querySelector("#password-row").hidden) return false;
  document.querySelector("#name").value = name;
  document.querySelector("#password").value = password;
  document.querySelector("#join-form").requestSubmit();
  return true;
}"""
_PASSWORD_ASKED_AGAIN = """() => !document.querySelector("#password-row").hidden
  && document.querySelector("#password").value === ""
  && !document.querySelector("#join").hidden"""


async def test_firefox_password_link_refuses_a_wrong_one_then_joins(
    guest_lan: GuestLan, launch_firefox: LaunchFirefox
) -> None:
    """The same in Firefox ESR (the page's CPace runs on libsodium's sumo build there too)."""
    gl = guest_lan
    secret_file = gl.tmp / "link-password-firefox"
    secret_file.write_text(PASSWORD + "\n", encoding="utf-8")
    invite = gl.invite("--password-file", str(secret_file))
    fox = await launch_firefox(gl.guest_host)
    loaded = await fox.goto(invite["url"])
    assert loaded["status"] == 200, loaded
    await fox.wait_for(_JOIN_WITH_PASSWORD, ["fox", "not it"], timeout=20.0)
    refused = await asyncio.to_thread(gl.wait_event, "guest_refused", invite_id=invite["invite_id"])
    assert "wrong password" in refused["reason"], refused
    await fox.wait_for(_PASSWORD_ASKED_AGAIN, None, timeout=20.0)
    assert "wrong password (4 tries left)" in (await guest_state(fox))["error"]
    await fox.wait_for(_JOIN_WITH_PASSWORD, ["fox", PASSWORD], timeout=20.0)
    await guest_wait_connected(fox)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["name"] == "fox", joined
    to_owner = f"hi from firefox {invite['invite_id']}"
    await guest_send(fox, to_owner)
    got = await asyncio.to_thread(
        gl.wait_event, "message", direction="in", peer_id=joined["peer_id"], text=to_owner
    )
    assert got["text"] == to_owner
    await guest_wait_delivered(fox, to_owner)
