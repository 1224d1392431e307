"""Start chat over a scripted node, driven by keys as a user would: it fits 80x24, the
QR code that does not fit is offered full screen and as a PNG, the link can be had
without a clipboard, and ``s`` offers the live link again with its real uses left.
(The same dialog against the real node: test_tui_lan.py.)"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Static

from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.link_screen import LinkScreen
from p2pchat.tui.main_screen import MainScreen
from p2pchat.tui.qr_screen import QrScreen
from tests.tui.fakes import INVITE_URL, FakeNode, MainScreenApp, bob_history, until

# Link-local IPv6: the longest links there are, too big a code for 80x24.
IPV6_URL = INVITE_URL.replace("192.168.1.20", "[fe80::1234:5678:9abc:def0]")
BUTTONS = ("copy", "link", "full", "save", "new", "revoke", "password", "server", "close")


async def open_start_chat(pilot: Pilot[None], app: MainScreenApp) -> InviteScreen:
    await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
    await pilot.press("s")
    await until(
        pilot,
        lambda: isinstance(app.screen, InviteScreen) and app.screen.invite is not None,
        "an invite shown",
    )
    assert isinstance(app.screen, InviteScreen)
    return app.screen


def text_of(widget: Widget) -> str:
    return " ".join(lines_of(widget))


def shown(widget: Widget, app: MainScreenApp) -> bool:
    """Drawn, and wholly on the terminal: not cut by its dialog or by the screen."""
    screen = Region(0, 0, *app.size)
    return (
        widget.display
        and widget.region.area > 0
        and screen.contains_region(widget.region)
        and widget.region == widget.region.intersection(widget.parent.region)  # type: ignore[union-attr]
    )


async def all_shown(pilot: Pilot[None], app: MainScreenApp, screen: Screen[None],
                    selectors: list[str]) -> None:  # fmt: skip
    def missing() -> list[str]:
        return [name for name in selectors if not shown(screen.query_one(name), app)]

    try:
        await until(pilot, lambda: not missing(), "all on the screen")
    except AssertionError:
        raise AssertionError(f"not wholly on the screen: {missing()}") from None


def shown_id(screen: InviteScreen) -> str | None:
    return screen.invite.invite_id if screen.invite is not None else None


def lines_of(widget: Widget) -> list[str]:
    return [widget.render_line(y).text.rstrip() for y in range(widget.region.height)]


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (110, 46)])
async def test_everything_in_start_chat_is_on_the_screen(size: tuple[int, int]) -> None:
    """Issue 10: at 80x24 the QR code was cut, the dialog wider than the screen, and
    Expires / Revoke / Copy hidden."""
    app = MainScreenApp(FakeNode(), bob_history())
    async with app.run_test(size=size) as pilot:
        invite = await open_start_chat(pilot, app)
        parts = ["#qr", "#invite-title", "#invite-link", "#invite-status"]
        await all_shown(pilot, app, invite, parts + [f"#{name}" for name in BUTTONS])
        assert "█" in "".join(lines_of(invite.query_one("#qr")))
        for name in BUTTONS:
            assert not invite.query_one(f"#{name}", Button).disabled, name
        status = text_of(invite.query_one("#invite-status"))
        assert "Expires in" in status
        assert "1 use left" in status
        assert INVITE_URL in "".join(lines_of(invite.query_one("#invite-link")))


async def test_a_qr_code_that_does_not_fit_is_offered_full_screen_and_as_a_png(
    tmp_path: Path,
) -> None:
    app = MainScreenApp(FakeNode(invite_url=IPV6_URL), bob_history(), data_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        await all_shown(pilot, app, invite, ["#qr-note"] + [f"#{name}" for name in BUTTONS])
        assert not invite.query_one("#qr").display
        assert "does not fit" in text_of(invite.query_one("#qr-note"))

        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, QrScreen), "the code's own screen")
        full = app.screen
        assert isinstance(full, QrScreen)
        assert full.fits
        await all_shown(pilot, app, full, ["#qr-code"])
        assert "█" in "".join(lines_of(full.query_one("#qr-code")))
        await pilot.press("escape")
        assert app.screen is invite

        await pilot.press("w")
        png = tmp_path / "invite-inv1.png"
        await until(pilot, png.exists, "the PNG written")
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert stat.S_IMODE(png.stat().st_mode) == 0o600  # it holds the link's secret
        await pilot.press("x")  # revoking deletes it: the link in it is dead anyway
        await until(pilot, lambda: not png.exists(), "the PNG deleted")


async def test_a_terminal_too_small_for_the_full_screen_code_says_so() -> None:
    app = MainScreenApp(FakeNode(invite_url=IPV6_URL), bob_history())
    async with app.run_test(size=(40, 20)) as pilot:
        await open_start_chat(pilot, app)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, QrScreen), "the code's own screen")
        full = app.screen
        assert isinstance(full, QrScreen)
        assert not full.fits
        assert "Make the window bigger" in text_of(full.query_one("#qr-code"))


async def test_the_link_alone_for_terminals_without_a_clipboard() -> None:
    """Issue 10: Copy fell back silently in tmux (no OSC 52)."""
    app = MainScreenApp(FakeNode(), bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        invite = await open_start_chat(pilot, app)
        await pilot.press("c")
        assert app.clipboard == INVITE_URL
        hint = [n.message for n in app._notifications]
        assert any("press l" in message for message in hint)

        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LinkScreen), "the link's own screen")
        alone = app.screen
        assert isinstance(alone, LinkScreen)
        link = alone.query_one("#link", Static)
        assert (link.region.x, link.region.y) == (0, 0)  # nothing before it, no border
        rows = lines_of(link)
        assert "".join(rows) == INVITE_URL  # only the link, cut only by the window's edge
        assert all(len(row) == 80 for row in rows[:-1])
        assert "p2pchat invite" in text_of(alone.query_one("#link-hint"))
        await pilot.press("escape")
        assert app.screen is invite


async def test_start_chat_again_offers_the_live_link_with_its_real_uses() -> None:
    """Issue 10: each s made another live link, and the dialog kept "1 use left"
    after the guest had joined."""
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(80, 24)) as pilot:
        first = await open_start_chat(pilot, app)
        assert shown_id(first) == "inv1"
        await pilot.press("escape")
        again = await open_start_chat(pilot, app)
        assert shown_id(again) == "inv1"
        assert [call for call in node.calls if call[0] == "invite"] == [("invite", (900, 1, None))]

        await pilot.press("n")  # one more, on purpose
        await until(pilot, lambda: shown_id(again) == "inv2", "the new link shown")
        title = again.query_one("#invite-title")
        await until(pilot, lambda: "link 2 of 2" in text_of(title), "link 2 of 2")
        await pilot.press("left")
        assert shown_id(again) == "inv1"

        # A guest comes in through inv1: the dialog asks the node again.
        await node.queue.put(node.guest_joins("inv1", "guest:q7fz2k", "Grandma"))
        status = again.query_one("#invite-status")
        await until(pilot, lambda: "no uses left" in text_of(status), "no uses left")
        assert "1 guest came in" in text_of(status)

        # s now offers inv2, the one still open to a new guest.
        await pilot.press("escape")
        third = await open_start_chat(pilot, app)
        assert shown_id(third) == "inv2"
        await pilot.press("x")
        status = third.query_one("#invite-status")
        await until(pilot, lambda: "Revoked" in text_of(status), "revoked")
        assert ("revoke", ("inv2",)) in node.calls

        # Nothing open any more: s makes a new link.
        await pilot.press("escape")
        fourth = await open_start_chat(pilot, app)
        assert shown_id(fourth) == "inv3"
