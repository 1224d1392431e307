"""File transfers in the TUI, over a scripted node: the transfer lines, the offer that
waits, the keys (f, A, X, o). The same with the real node: test_tui_lan.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Input, RichLog

from p2pchat.control.api import FileView
from p2pchat.node.events import FileDone, FileOffered, FileProgress
from p2pchat.tui import open_folder
from p2pchat.tui.help_screen import KEYS
from p2pchat.tui.send_file_screen import SendFileScreen, check_path
from p2pchat.tui.transfers import Transfers
from tests.tui.fakes import (
    BOB,
    FakeHistory,
    FakeNode,
    MainScreenApp,
    bob_history,
    file_row,
    until,
)

SIZE = (110, 34)
TID = f"{7:032x}"  # the history row n=7's id
MB = 1 << 20


def offered_view(state: str = "offered", **changes: object) -> FileView:
    view = FileView(TID, "contact:bob", BOB.peer_id, "bob", "in", "holiday.jpg", 3 * MB, 0,
                    state, None, None)  # fmt: skip
    return replace(view, **changes)  # type: ignore[arg-type]


def offer() -> FileOffered:
    return FileOffered(TID, "contact:bob", BOB.peer_id, "bob", "holiday.jpg", 3 * MB,
                       "bigger than your auto-accept limit")  # fmt: skip


def progress(done: int, state: str = "receiving") -> FileProgress:
    return FileProgress(TID, "contact:bob", BOB.peer_id, "in", "holiday.jpg", state, done,
                        3 * MB, 512 * 1024, (3 * MB - done) // (512 * 1024))  # fmt: skip


def shown(app: MainScreenApp) -> str:
    """What the chat pane shows now (its lines as written, joined where they wrap)."""
    log = app.main.chat.query_one("#chat-log", RichLog)
    return "".join(line.text for line in log.lines)


def toasts(app: MainScreenApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def open_bob(app: MainScreenApp) -> None:
    app.main.open_conversation(BOB.peer_id)
    app.main.action_to_sidebar()  # the keys act from the sidebar, not the message box


async def test_an_offer_that_waits_shows_how_to_act_and_A_accepts_it() -> None:
    node = FakeNode(files={TID: offered_view()})
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        open_bob(app)
        await node.queue.put(offer())
        await until(pilot, lambda: "holiday.jpg" in shown(app), "the offer's line")
        assert "↓ holiday.jpg  3.0 MB  waiting for you: A accepts, X declines" in shown(app)
        assert any("bob offers holiday.jpg" in t and "A accepts" in t for t in toasts(app))
        await pilot.press("A")
        await until(pilot, lambda: ("file_accept", (TID, None)) in node.calls, "the accept")
        await node.queue.put(progress(MB))
        await until(pilot, lambda: "33%" in shown(app), "the progress")


async def test_progress_updates_the_one_line_in_place_then_done() -> None:
    node = FakeNode(files={TID: offered_view("receiving")})
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        open_bob(app)
        await node.queue.put(progress(MB // 2))
        await node.queue.put(progress(3 * MB // 2))
        await until(pilot, lambda: "50%" in shown(app), "the second progress")
        text = shown(app)
        assert text.count("holiday.jpg") == 1
        assert "512.0 kB/s" in text
        assert "0:03 left" in text
        path = "/home/alice/Downloads/holiday.jpg"
        await node.queue.put(FileDone(TID, "contact:bob", BOB.peer_id, "in", "holiday.jpg",
                                      3 * MB, path))  # fmt: skip
        await until(pilot, lambda: "done ✓" in shown(app), "done")
        assert shown(app).count("holiday.jpg") == 1
        assert any(path in t for t in toasts(app))


async def test_X_cancels_the_last_transfer_still_going() -> None:
    node = FakeNode(files={TID: offered_view("receiving")})
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        open_bob(app)
        await node.queue.put(progress(MB))
        await until(pilot, lambda: "33%" in shown(app), "the progress")
        await pilot.press("X")
        await until(pilot, lambda: "cancelled by you" in shown(app), "cancelled")
        assert ("file_cancel", (TID,)) in node.calls


async def test_history_file_rows_show_their_stored_state() -> None:
    history = bob_history()
    history.stored[BOB.peer_id].append(file_row(BOB.peer_id, 7, "holiday.jpg", "in", "bob"))
    node = FakeNode(files={TID: offered_view("failed", error="the file's hash did not match")})
    app = MainScreenApp(node, history)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        open_bob(app)
        await until(pilot, lambda: "holiday.jpg" in shown(app), "the file row")
        assert "↓ holiday.jpg  3.0 MB  failed: the file's hash did not match" in shown(app)


async def test_f_sends_a_file_after_a_one_line_error_for_a_missing_one(tmp_path: Path) -> None:
    node = FakeNode()
    app = MainScreenApp(node, FakeHistory())
    (tmp_path / "notes.txt").write_text("hello")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        open_bob(app)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, SendFileScreen), "the dialog")
        await pilot.press(*str(tmp_path / "nope.txt"), "enter")
        error = app.screen.query_one("#send-file-error")
        await until(pilot, lambda: "no such file" in str(error.render()), "the error line")
        assert not any(call[0] == "send_file" for call in node.calls)
        app.screen.query_one("#send-file-path", Input).value = str(tmp_path / "notes.txt")
        await pilot.press("enter")
        await until(pilot, lambda: "↑ notes.txt" in shown(app), "the outgoing line")
        assert ("send_file", (BOB.peer_id, str(tmp_path / "notes.txt"))) in node.calls
        assert "queued: waiting for them to accept" in shown(app)


def test_the_path_check_expands_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    assert check_path("~/a.txt") == tmp_path / "a.txt"
    assert check_path("~/dir") == "~/dir is a folder: pick a file in it"
    assert check_path("   ") == "type the path of a file"


async def test_f_with_nothing_open_says_why_not() -> None:
    node = FakeNode()
    app = MainScreenApp(node, FakeHistory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        app.main.action_send_file()
        await pilot.pause(0.1)
        assert not isinstance(app.screen, SendFileScreen)
        assert "Open a contact's conversation first, then press f." in toasts(app)


async def test_f_in_a_group_sends_to_each_member_in_the_group_conversation(
    tmp_path: Path,
) -> None:
    node = FakeNode()
    group = node.join_group("climbing", BOB, [])
    app = MainScreenApp(node, FakeHistory())
    (tmp_path / "topo.pdf").write_text("route")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        app.main.open_conversation(group.conversation)
        app.main.action_send_file()
        await until(pilot, lambda: isinstance(app.screen, SendFileScreen), "the dialog")
        await pilot.press(*str(tmp_path / "topo.pdf"), "enter")
        await until(pilot, lambda: "↑ topo.pdf" in shown(app), "the outgoing line")
        assert ("send_files", (group.conversation, str(tmp_path / "topo.pdf"))) in node.calls
        assert [v.group for v in node.files.values()] == ["climbing"]  # bob, the one other


async def test_o_without_xdg_open_shows_the_folder_and_copies_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(open_folder.shutil, "which", lambda _name: None)
    folder = "/home/alice/Downloads"
    node = FakeNode(files={TID: offered_view("done", path=f"{folder}/holiday.jpg")})
    history = FakeHistory()
    history.stored[BOB.peer_id] = [file_row(BOB.peer_id, 7, "holiday.jpg", "in", "bob")]
    app = MainScreenApp(node, history)
    copied: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        open_bob(app)
        await until(pilot, lambda: "done ✓" in shown(app), "the done file")
        await pilot.press("o")
        await until(pilot, lambda: any(folder in t for t in toasts(app)), "the folder's path")
        assert copied == [folder]
        assert any("no xdg-open here" in t for t in toasts(app))


def test_the_help_lists_the_file_keys() -> None:
    assert any(k == "f" and "send a file" in w for k, w in KEYS)
    assert any(k == "A / X" for k, _ in KEYS)
    assert any(k == "o" for k, _ in KEYS)


async def test_an_offer_out_of_view_counts_as_unread_and_X_declines_it() -> None:
    node = FakeNode(files={TID: offered_view()})
    app = MainScreenApp(node, bob_history())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await node.queue.put(offer())
        await until(pilot, lambda: app.main.roster.unread == {BOB.peer_id: 1}, "unread")
        open_bob(app)
        await until(pilot, lambda: "waiting for you" in shown(app), "the offer")
        await pilot.press("X")
        await until(pilot, lambda: "declined (cancelled by you)" in shown(app), "declined")
        assert ("file_cancel", (TID,)) in node.calls


def test_a_late_progress_event_does_not_reopen_a_finished_transfer() -> None:
    transfers = Transfers()
    transfers.apply(progress(MB))
    transfers.apply(FileDone(TID, "c", BOB.peer_id, "in", "holiday.jpg", 3 * MB, "/d/h.jpg"))
    after = transfers.apply(progress(2 * MB))
    assert (after.state, after.bytes_done, after.path) == ("done", 3 * MB, "/d/h.jpg")


async def test_f_with_a_guest_sends_while_their_page_is_in_the_chat(tmp_path: Path) -> None:
    node = FakeNode()
    invite = await node.async_invite(expires_s=900, uses=1, label=None, approve=False)
    app = MainScreenApp(node, FakeHistory())
    (tmp_path / "map.png").write_text("x")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await node.queue.put(node.guest_joins(invite.invite_id, "guest:q7fz2k", "Grandma"))
        await until(pilot, lambda: "guest:q7fz2k" in app.main.roster.guests, "the guest")
        app.main.open_conversation("guest:q7fz2k")
        app.main.action_send_file()
        await until(pilot, lambda: isinstance(app.screen, SendFileScreen), "the dialog")
        await pilot.press(*str(tmp_path / "map.png"), "enter")
        await until(pilot, lambda: "↑ map.png" in shown(app), "the outgoing line")
        assert ("send_file", ("guest:q7fz2k", str(tmp_path / "map.png"))) in node.calls


async def test_f_with_a_guest_who_left_says_why_not() -> None:
    node = FakeNode()
    invite = await node.async_invite(expires_s=900, uses=1, label=None, approve=False)
    app = MainScreenApp(node, FakeHistory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await node.queue.put(node.guest_joins(invite.invite_id, "guest:q7fz2k", "Grandma"))
        await until(pilot, lambda: "guest:q7fz2k" in app.main.roster.guests, "the guest")
        guest = app.main.roster.guests["guest:q7fz2k"]
        app.main.roster.guests["guest:q7fz2k"] = replace(guest, state="left")
        app.main.open_conversation("guest:q7fz2k")
        app.main.action_send_file()
        await pilot.pause(0.1)
        assert not isinstance(app.screen, SendFileScreen)
        assert any("Grandma is not in the chat now" in t for t in toasts(app))
