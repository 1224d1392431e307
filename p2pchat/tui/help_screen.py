"""``?``: every key, in one place."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Anywhere", ""),
    ("? or F1", "this help (F1 also while typing a message)"),
    ("Ctrl+Q", "quit (the node stops; queued messages wait in the outbox)"),
    ("Tab / Shift+Tab", "move between the sidebar, the chat and the buttons"),
    ("Esc", "close a dialog; from the message box, back to the sidebar"),
    ("Sidebar", ""),
    ("↑ ↓ Enter (or click)", "open a contact, group or guest; answer a request; ask a LAN peer"),
    (
        "s",
        "Start chat: an invite link and QR code for a browser guest (the open one"
        " again if there is one); with your group open, its guests join the group",
    ),
    ("/", "search the encrypted history"),
    ("g", "New group: a name and members picked from your contacts"),
    ("m", "the open group's members: who is online, who is admin; add, remove, leave"),
    ("v", "safety number of the open contact (compare it, then mark verified)"),
    ("a / r", "accept / reject the highlighted contact request"),
    ("i", "write in the open conversation"),
    ("n", "notifications on / off (bell, title, desktop)"),
    ("Files", ""),
    ("f", "send a file to the open contact: type its path (~ works)"),
    ("A / X", "accept the last file waiting for you / cancel (or decline) the last transfer"),
    ("o", "open the folder of the last file received (xdg-open; its path is copied too)"),
    ("Start chat dialog", ""),
    ("c", "copy the link (terminals that pass OSC 52; tmux does not by default)"),
    ("l", "the link alone on the screen, to select with the mouse"),
    ("f", "the QR code alone, as big as the terminal allows"),
    ("w", "save the QR code as a PNG file in the data folder"),
    ("n", "a new link (the others stay valid until used, expired or revoked)"),
    ("p", "a new link that also needs a password (asked twice)"),
    ("v", "the invite server new links go through: set or clear (LAN)"),
    ("← →", "the other live links, with their uses left"),
    ("x", "revoke the link: it stops working at once"),
    ("Group members dialog (m)", ""),
    ("a", "add one of your contacts (the group's admin only)"),
    ("x", "remove the highlighted member (the admin only)"),
    ("i", "invite guest: Start chat for this group (the admin only)"),
    ("k", "keep the highlighted guest listed while it is away (the admin only)"),
    ("l", "leave the group (asks first)"),
    ("Key-change warning", ""),
    ("A (Shift+a)", "acknowledge: the only way to close it"),
]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-width: 100%; height: auto; max-height: 100%;
                                  padding: 0 1; border: thick $accent; background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss_help", "Close"),
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            if what:
                table.add_row(key, what)
            else:
                table.add_row(f"[bold underline]{key}[/]", "")
        with VerticalScroll():
            yield Static("[b]p2pchat keys[/b]  (Esc closes; ↑ ↓ scroll)\n")
            yield Static(table)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
