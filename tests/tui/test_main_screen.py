"""The main screen's behaviour over a scripted node: what events do to it, what
keys call on the node. (The same flow against the real node: test_tui_lan.py.)"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import RichLog

from p2pchat.node.events import (
    GuestJoined,
    GuestRefused,
    KeyChangeWarning,
    MessageEvent,
    PeerFound,
    ReceiptEvent,
)
from p2pchat.store import StoredMessage
from p2pchat.tui.chat_pane import render_chat_line
from p2pchat.tui.confirm_screen import ConfirmScreen
from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.key_warning_screen import KeyWarningScreen
from p2pchat.tui.main_screen import MainScreen
from p2pchat.tui.request_screen import RequestScreen
from p2pchat.tui.settings import load_settings
from tests.tui.fakes import (
    BOB,
    CAROL,
    DAVE,
    ME,
    NOW_MS,
    FakeHistory,
    FakeNode,
    MainScreenApp,
    bob_history,
    stored,
    until,
)

SIZE = (110, 34)


def incoming(label: str, n: int, text: str = "hi") -> MessageEvent:
    return MessageEvent(label, label, "bob", "in", f"dd{n:030x}", NOW_MS + n, text)


async def test_unread_and_notification_for_a_conversation_out_of_view(tmp_path: Path) -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history(), data_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        screen = app.main
        screen.open_conversation(CAROL.peer_id)
        await node.queue.put(incoming(BOB.peer_id, 1))
        await node.queue.put(incoming(BOB.peer_id, 2))
        await pilot.pause(0.1)
        assert screen.roster.unread == {BOB.peer_id: 2}
        assert app.title == "(2) p2pchat"
        assert len(screen.notifier.sent) == 2
        assert "hi" not in str(screen.notifier.sent[0])  # the sender, never the text
        # A message in the conversation in view is neither counted nor announced.
        await node.queue.put(incoming(CAROL.peer_id, 3))
        await pilot.pause(0.1)
        assert CAROL.peer_id not in screen.roster.unread
        assert len(screen.notifier.sent) == 2
        screen.open_conversation(BOB.peer_id)
        assert screen.roster.unread == {}
        assert app.title == "p2pchat"


async def test_notifications_setting_turns_them_off_and_is_saved(tmp_path: Path) -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history(), data_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await pilot.press("n")
        assert not load_settings(tmp_path).notifications
        await node.queue.put(incoming(BOB.peer_id, 1))
        await pilot.pause(0.1)
        assert app.main.roster.unread == {BOB.peer_id: 1}  # still counted
        assert not app.main.notifier.sent
        assert app.title == "p2pchat"
        await pilot.press("n")
        assert load_settings(tmp_path).notifications


async def test_send_shows_the_delivery_state(tmp_path: Path) -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        screen = app.main
        screen.open_conversation(BOB.peer_id)
        await pilot.press(*"hello [bold]bob[/]", "enter")
        await pilot.pause(0.1)
        assert node.calls[-1] == ("send", (BOB.peer_id, "hello [bold]bob[/]"))
        line = screen.conversations.log(BOB.peer_id).lines()[-1]
        assert (line.text, line.state) == ("hello [bold]bob[/]", "sent")
        await node.queue.put(ReceiptEvent(BOB.peer_id, BOB.peer_id, line.message_id))
        await pilot.pause(0.1)
        assert screen.conversations.log(BOB.peer_id).lines()[-1].state == "delivered"
        assert screen.chat.input.value == ""


async def test_ask_a_lan_peer_and_answer_a_request() -> None:
    node = FakeNode(events=[PeerFound("erin-0000-1111-2222", "erin", [], False)])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        options = app.main.sidebar.options
        options.highlighted = options.get_option_index("p:erin-0000-1111-2222")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing asked
        await pilot.pause(0.1)
        assert not any(call[0] == "add" for call in node.calls)
        await pilot.press("enter", "y")
        await pilot.pause(0.1)
        assert ("add", ("erin-0000-1111-2222",)) in node.calls

        options.highlighted = options.get_option_index(f"r:{DAVE.peer_id}")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RequestScreen)
        await pilot.press("a")
        await pilot.pause(0.1)
        assert ("accepted", (DAVE.peer_id,)) in node.calls
        assert app.main.roster.contacts[DAVE.peer_id].state == "accepted"


async def test_key_warning_blocks_until_acknowledged() -> None:
    bob_warning = KeyChangeWarning(BOB.peer_id, "bob", "aa", "bb", "zzzz-0000-0000-0000")
    carol_warning = KeyChangeWarning(CAROL.peer_id, "carol", "cc", "dd", "yyyy-0000-0000-0000")
    node = FakeNode(events=[bob_warning, carol_warning])  # two contacts: two acknowledgements
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        for acknowledge in ("key", "click"):
            assert isinstance(app.screen, KeyWarningScreen)
            shown = app.screen
            for key in ("escape", "enter", "space", "tab", "enter", "a", "q", "s", "question_mark"):
                await pilot.press(key)
                assert app.screen is shown, key
            await pilot.click(offset=(2, 30))  # outside the dialog: nothing
            assert app.screen is shown
            if acknowledge == "key":
                await pilot.press("A")
            else:
                await pilot.click("#ack")  # the mouse works too
            await pilot.pause(0.05)
        assert app.screen is app.main
        assert app.main.warnings_shown == 2


async def test_a_flood_of_key_warnings_opens_one_dialog_per_contact() -> None:
    """Issue 9 finding 1: 300 warnings for one contact once stacked 300 dialogs and
    ended in a RecursionError; now they update the contact's one dialog."""
    flood = [
        KeyChangeWarning(
            BOB.peer_id, "bob", "aa", f"{n:04x}", "zzzz-0000-0000-0000",
            count=n, source="contact_request", address=f"10.0.0.{n % 250}",
        )
        for n in range(1, 301)
    ]  # fmt: skip
    carol = KeyChangeWarning(CAROL.peer_id, "carol", "cc", "dd", "yyyy-0000-0000-0000")
    node = FakeNode(events=[*flood[:150], carol, *flood[150:]])
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        dialogs = [s for s in app.screen_stack if isinstance(s, KeyWarningScreen)]
        assert [d.warning.peer_id for d in dialogs] == [BOB.peer_id, CAROL.peer_id]
        assert app.main.warnings_shown == 2
        bob_dialog = dialogs[0]
        assert bob_dialog.warning.count == 300
        assert "Seen 300 times" in str(bob_dialog.query_one("#warning-text").render())
        await pilot.press("A")  # carol's, on top
        await pilot.press("A")  # bob's
        await pilot.pause(0.05)
        assert app.screen is app.main
        # After the acknowledgement, more attempts for bob are a notice, not a dialog.
        await app.main.on_node_event(flood[-1])
        await pilot.pause(0.05)
        assert app.screen is app.main
        assert app.main.warnings_shown == 2


async def test_start_chat_button_shows_the_link_and_revokes() -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(110, 46)) as pilot:
        await pilot.pause(0.1)
        await pilot.click("#start-chat")
        await pilot.pause(0.2)
        assert isinstance(app.screen, InviteScreen)
        invite_screen = app.screen
        assert invite_screen.invite is not None
        assert invite_screen.invite.url.startswith("https://")
        await pilot.click("#revoke")
        await pilot.pause(0.1)
        assert ("revoke", ("inv1",)) in node.calls
        assert invite_screen.invite.revoked
        await pilot.press("escape")
        assert app.screen is app.main


async def test_the_first_messages_of_a_conversation_are_counted() -> None:
    """Issue 10: carol sent 2 → "carol 1"; a guest sent 1 → no count. The node stores a
    message before it announces it, so the history read for a conversation's first
    event already holds that message (and maybe the next): still unread, all of them."""
    guest = "guest:q7fz2k"
    carol_1, carol_2 = (stored(CAROL.peer_id, n, f"carol {n}", "in", "delivered", "carol")
                        for n in (1, 2))  # fmt: skip
    from_guest = stored(guest, 3, "hello from the guest", "in", "delivered", "Grandma")
    history = FakeHistory(stored={CAROL.peer_id: [carol_1, carol_2], guest: [from_guest]})
    node = FakeNode()
    app = MainScreenApp(node, history)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        screen = app.main
        screen.open_conversation(BOB.peer_id)
        for event in (
            as_event(carol_1), as_event(carol_2),
            GuestJoined(guest, "Grandma", "inv1", "12345", "direct"), as_event(from_guest),
        ):  # fmt: skip
            await node.queue.put(event)
        await until(pilot, node.queue.empty, "the events read")
        await until(pilot, lambda: screen.roster.total_unread() >= 3, "3 unread")
        assert screen.roster.unread == {CAROL.peer_id: 2, guest: 1}
        assert app.title == "(3) p2pchat"
        sidebar = rows_text(screen)
        assert "carol  2" in sidebar
        assert "Grandma  1" in sidebar
        # Each line shows once, however it came (history, event or both).
        assert [line.text for line in screen.conversations.log(CAROL.peer_id).lines()] == [
            "carol 1", "carol 2",
        ]  # fmt: skip


async def test_chat_lines_wrap_again_when_the_terminal_is_resized() -> None:
    """Issue 10: lines kept the width they were written at (and never less than 78)."""
    long = " ".join(["a long message"] * 12)
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=(110, 34)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        screen = app.main
        screen.open_conversation(BOB.peer_id)
        await node.queue.put(incoming(BOB.peer_id, 1, long))
        log = screen.chat.query_one("#chat-log", RichLog)
        chat = screen.conversations.log(BOB.peer_id)
        rows: dict[tuple[int, int], int] = {}
        for size in ((80, 24), (160, 40), (80, 24), (110, 34)):
            await pilot.resize_terminal(*size)

            def wrapped_to_fit(width: int = size[0]) -> bool:
                """Laid out for this terminal, each message wrapped at the log's width."""
                fit = log.scrollable_content_region.width
                texts = [render_chat_line(line, ME.name) for line in chat.lines()]
                wanted = sum(len(text.wrap(app.console, fit)) for text in texts)
                return screen.chat.region.right == width and len(log.lines) == wanted

            await until(pilot, wrapped_to_fit, f"lines wrapped to fit {size}")
            rows.setdefault(size, len(log.lines))
            assert len(log.lines) == rows[size], size  # the same size, the same lines
        assert rows[(160, 40)] < rows[(110, 34)] < rows[(80, 24)]


def as_event(message: StoredMessage) -> MessageEvent:
    label = message.conversation_id
    return MessageEvent(label, label, message.sender, message.direction.value,
                        message.message_id.hex(), message.timestamp_ms, message.body)  # fmt: skip


def rows_text(screen: MainScreen) -> str:
    options = screen.sidebar.options
    return "\n".join(
        str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
    )


async def test_a_failed_guest_attempt_names_the_guest_and_the_reason(tmp_path: Path) -> None:
    node = FakeNode()
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        reason = "the connection never opened: the guest left"
        await node.queue.put(GuestRefused("abcd2345", reason, peer_id="guest:AAAA", name="nora"))
        await node.queue.put(GuestRefused("abcd2345", "handshake failed (tampered): bad MAC"))
        await pilot.pause(0.1)
        shown = [n.message for n in app._notifications]
        assert f"Guest nora could not join: {reason}" in shown, shown
        assert "A guest could not join: handshake failed (tampered): bad MAC" in shown, shown
