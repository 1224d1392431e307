"""The main screen: sidebar + chat pane, fed by the node's events.

One worker reads ``api.subscribe()`` and updates the state (Roster, the
conversation logs) and the widgets; user actions call the ``NodeApi``. The
screen knows the node only as a ``NodeApi`` and history only as a
``HistoryReader``, so it runs as well over fakes (snapshot tests).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Header, OptionList

from p2pchat.control.api import (
    ContactView,
    FileView,
    GroupMemberView,
    GroupView,
    NodeApi,
    StatusView,
)
from p2pchat.errors import UserError
from p2pchat.node.events import (
    ContactRequestReceived,
    EventsDropped,
    FileCancelled,
    FileDone,
    FileFailed,
    FileOffered,
    FileProgress,
    GroupChanged,
    GroupMessageRefused,
    GuestJoined,
    GuestLeft,
    GuestRefused,
    GuestWaiting,
    InviteServerStatus,
    KeyChangeWarning,
    MessageEvent,
    NodeEvent,
    ReceiptEvent,
    SessionChanged,
)
from p2pchat.store import StoreError
from p2pchat.store.conversation_id import GROUP_PREFIX
from p2pchat.tui.chat_pane import ChatPane
from p2pchat.tui.confirm_screen import ConfirmScreen
from p2pchat.tui.conversation_log import HISTORY_PAGE, ConversationLog, Conversations
from p2pchat.tui.group_members_screen import GroupMembersScreen
from p2pchat.tui.group_notices import (
    change_notice,
    gap_notice,
    group_label,
    is_group,
    refused_notice,
)
from p2pchat.tui.help_screen import HelpScreen
from p2pchat.tui.history import HistoryReader
from p2pchat.tui.invite_screen import InviteScreen
from p2pchat.tui.invite_target import ONE_TO_ONE, InvitesMade, InviteTarget, invite_refusal
from p2pchat.tui.key_warning_screen import KeyWarningScreen
from p2pchat.tui.new_group_screen import NewGroupScreen
from p2pchat.tui.notifier import Notifier
from p2pchat.tui.open_folder import open_folder
from p2pchat.tui.request_screen import RequestScreen
from p2pchat.tui.roster import Change, Roster
from p2pchat.tui.safety_screen import SafetyScreen
from p2pchat.tui.search_screen import SearchScreen
from p2pchat.tui.send_file_screen import SendFileScreen
from p2pchat.tui.settings import TuiSettings, load_settings, save_settings
from p2pchat.tui.sidebar import Sidebar
from p2pchat.tui.text_format import one_line
from p2pchat.tui.transfers import FileEvent, Transfer, Transfers, size_text

T = TypeVar("T")

#: After the user acknowledged a contact's key warning, further attempts for that
#: contact are a notification, not another blocking dialog, for this long.
WARNING_QUIET_S = 600.0
#: Progress of the open conversation's transfers is drawn at most this often (the
#: node sends 4 a second per transfer; several at once would redraw the pane often).
PROGRESS_REDRAW_S = 0.25


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start_chat", "Start chat"),
        Binding("slash", "search", "Search"),
        Binding("g", "new_group", "New group"),
        Binding("m", "members", "Members"),  # in the footer while a group is open
        Binding("v", "safety", "Safety no."),  # in the footer while a contact is open
        Binding("a", "answer('accept')", "Accept", show=False),
        Binding("r", "answer('reject')", "Reject", show=False),
        Binding("i", "write", "Write", show=False),
        # Files, in the open contact's conversation (the last transfer each applies to).
        Binding("f", "send_file", "Send file", show=False),
        Binding("A", "accept_file", "Accept file", show=False),
        Binding("X", "cancel_file", "Cancel file", show=False),
        Binding("o", "open_folder", "Open folder", show=False),
        # Not in the footer: it must fit 80 columns beside the palette key (? lists it).
        Binding("n", "toggle_notifications", "Notify on/off", show=False),
        Binding("escape", "to_sidebar", "Sidebar", show=False),
        Binding("question_mark,f1", "help", "Keys"),
    ]

    def __init__(
        self,
        api: NodeApi,
        history: HistoryReader,
        me: StatusView,
        *,
        data_dir: Path | None,
        events: AsyncIterator[NodeEvent] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.api = api
        # Events from a subscription made before the node started (NodeHost.events),
        # so that nothing it did while this screen was coming up is missed.
        self._events = events
        self.history = history
        self.me = me
        self.clock = clock  # the time of notices (group changes), in seconds
        self.data_dir = data_dir  # where tui.json lives; None: settings not saved
        self.settings = load_settings(data_dir) if data_dir else TuiSettings()
        self.roster = Roster()
        self.conversations = Conversations()
        self.transfers = Transfers()
        self._progress_redraw: Timer | None = None
        self.current: str | None = None  # label of the conversation in view
        self.warnings_shown = 0
        self.invites_made: InvitesMade = {}  # which link is for which group (or 1:1)
        self._warning_acknowledged: dict[str, float] = {}  # peer id → monotonic time
        self.notifier: Notifier  # made on mount, when the app is there

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield Sidebar()
            yield ChatPane()
        yield Footer()

    async def on_mount(self) -> None:
        self.notifier = Notifier(
            self.app, self.app.title, enabled=lambda: self.settings.notifications
        )
        self.sub_title = f"{one_line(self.me.name, 30)} · {self.me.peer_id}"
        await self._refresh_contacts()
        await self._refresh_groups()
        await self._refresh_files()
        self.sidebar.options.focus()
        self.consume_events()

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one(Sidebar)

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

    # -- events from the node ------------------------------------------------------

    @work(exclusive=True, group="node-events")
    async def consume_events(self) -> None:
        events = self._events if self._events is not None else self.api.subscribe()
        async for event in events:
            await self.on_node_event(event)

    async def on_node_event(self, event: NodeEvent) -> None:
        change = self.roster.apply(event)
        if isinstance(event, MessageEvent):
            self._message(event)
        elif isinstance(event, ReceiptEvent):
            self._receipt(event)
        elif isinstance(event, FileOffered | FileProgress | FileDone | FileFailed | FileCancelled):
            self._file_event(event)
        elif isinstance(event, GroupChanged):
            self._group_changed(event)
        elif isinstance(event, GroupMessageRefused):
            self._group_refused(event)
        elif isinstance(event, KeyChangeWarning):
            self._key_warning(event)
        elif isinstance(event, ContactRequestReceived):
            self.notify(f"{one_line(event.name, 30)} wants to be your contact: see the sidebar.")
            self.notifier.attention(f"{event.name} wants to be your contact")
        elif isinstance(event, GuestWaiting):
            self.notify(f"Guest {one_line(event.name, 30)} is waiting: Enter on them to let in.")
            self.notifier.attention(f"Guest {event.name} is waiting to come in")
        elif isinstance(event, GuestJoined):
            self.notify(
                f"Guest {one_line(event.name, 30)} joined ({event.path}). Safety number: "
                f"{event.safety_number}",
                timeout=15,
            )
            if self.current is None:  # show it, without taking the focus from the user
                self.open_conversation(event.peer_id, focus_input=False)
        elif isinstance(event, GuestLeft):
            self.notify(f"Guest {one_line(event.name, 30)} left: {one_line(event.reason, 60)}")
        elif isinstance(event, GuestRefused):
            who = f"Guest {one_line(event.name, 30)}" if event.name else "A guest"
            self.notify(f"{who} could not join: {one_line(event.reason, 120)}", severity="warning")
        elif isinstance(event, InviteServerStatus) and event.state in ("reconnecting", "refused"):
            self.notify(
                f"Invite server {one_line(event.url, 60)}: {event.state}"
                + (f" ({one_line(event.detail, 80)})" if event.detail else ""),
                severity="warning",
            )
        if isinstance(
            event, GuestWaiting | GuestJoined | GuestLeft | GuestRefused | InviteServerStatus
        ):
            for screen in self.app.screen_stack:  # its uses left changed
                if isinstance(screen, InviteScreen):
                    if isinstance(event, InviteServerStatus):
                        screen.server_status(event)
                    screen.refresh_invites()
        if change is Change.CONTACTS:
            await self._refresh_contacts()
        elif change is Change.GROUPS:
            await self._refresh_groups()
        elif change is Change.SIDEBAR:
            self._redraw_sidebar()
        if isinstance(event, EventsDropped):  # a group change may be among the missed
            await self._refresh_groups()
            await self._refresh_files()
        # Who is online changed (a guest's from its own events: a kept one goes away).
        if isinstance(event, SessionChanged | EventsDropped | GuestJoined | GuestLeft):
            self._redraw_members()
        if self.current is not None and change is not Change.NOTHING:
            self._redraw_title()

    def _key_warning(self, event: KeyChangeWarning) -> None:
        """One dialog per contact at a time: a warning for a contact whose dialog is
        open updates it (the node already folds a flood into a count)."""
        for screen in self.app.screen_stack:
            if isinstance(screen, KeyWarningScreen) and screen.warning.peer_id == event.peer_id:
                screen.update_warning(event)
                return
        acknowledged = self._warning_acknowledged.get(event.peer_id)
        if acknowledged is not None and time.monotonic() - acknowledged < WARNING_QUIET_S:
            self.notify(
                f"Still someone claiming to be {one_line(event.name, 30)} with another key"
                f" ({event.count} attempts): not connecting to it.",
                severity="warning",
            )
            return
        self.warnings_shown += 1
        self.notifier.attention(f"Key change warning for {event.name}")

        def acknowledged_now(_warning: KeyChangeWarning | None) -> None:
            self._warning_acknowledged[event.peer_id] = time.monotonic()

        self.app.push_screen(KeyWarningScreen(event), acknowledged_now)

    def _message(self, event: MessageEvent) -> None:
        # A group's conversation is the group's, whoever wrote in it.
        label = group_label(event.group_id) if event.group_id else event.peer_id
        log = self.conversations.log(label)
        self._seed(label, log)  # history first, so the new line lands after it
        # Whether the line was there already says nothing: the node stores a message
        # before it announces it, so the history just read may hold this one and the
        # ones after it. The event is what makes a message new (and unread).
        fresh = log.first_event(event.message_id)
        if fresh and event.missing_before:  # never silent; just before the message
            log.notice(gap_notice(event), event.timestamp_ms - 1, warning=True)
        log.add(
            message_id=event.message_id, direction=event.direction, sender=event.sender,
            timestamp_ms=event.timestamp_ms, text=event.text,
        )  # fmt: skip
        if not fresh:
            return
        in_view = label == self.current and self.app.screen is self
        if event.direction == "in" and not in_view:
            self.roster.count_unread(label)
            self._redraw_sidebar()
        if event.direction == "in" and (not in_view or not self.app.app_focus):
            who = f"{event.sender} in {event.group_name}" if event.group_name else event.sender
            self.notifier.unseen_message(who, self.roster.total_unread())
        self._redraw_chat_if(label)

    def _receipt(self, event: ReceiptEvent) -> None:
        if not is_group(event.conversation):
            if self.conversations.log(event.peer_id).advance(event.message_id, "delivered"):
                self._redraw_chat_if(event.peer_id)
            return
        # A group's: one per member that has my message (peer_id is that member).
        log = self.conversations.log(event.conversation)
        advanced = log.advance(event.message_id, "delivered")
        if log.reach(event.message_id, event.peer_id) or advanced:
            self._redraw_chat_if(event.conversation)

    def _seed(self, label: str, log: ConversationLog) -> None:
        if not log.seeded:
            reached = self.history.reached(label) if is_group(label) else None
            log.seed(self.history.messages(label, limit=HISTORY_PAGE), reached)

    # -- files ---------------------------------------------------------------------

    def _file_event(self, event: FileEvent) -> None:
        # A contact's or guest's conversation is labelled by its id; a group's file
        # (one transfer per member) shows in the group's conversation.
        label = _file_label(event.conversation, event.peer_id)
        direction = "in" if isinstance(event, FileOffered) else event.direction
        self.transfers.apply(event)
        self._transfer_line(label, event.transfer_id, direction,
                            sender=self.roster.name_of(event.peer_id))  # fmt: skip
        name = one_line(event.name, 40)
        who = one_line(self.roster.name_of(event.peer_id), 30)
        if isinstance(event, FileOffered):
            self.notify(
                f"{who} offers {name} ({size_text(event.size)}; {one_line(event.reason, 60)}):"
                " in the conversation, A accepts, X declines.",
                timeout=15,
            )
            self.notifier.attention(f"{event.peer_name} offers a file")
        elif isinstance(event, FileDone) and direction == "in":
            self.notify(f"{name} from {who} saved: {one_line(event.path, 80)} (o opens the folder)")
        elif isinstance(event, FileFailed):
            self.notify(f"{name}: failed: {one_line(event.reason, 80)}", severity="warning")
        elif isinstance(event, FileCancelled) and event.by != "me":
            self.notify(f"{who} cancelled {name}.", severity="warning")
        if isinstance(event, FileOffered) and label != self.current:
            self.roster.count_unread(label)  # it waits for an answer: like a message
            self._redraw_sidebar()
        if isinstance(event, FileProgress):
            self._redraw_progress_soon(label)
        else:
            self._redraw_chat_if(label)

    def _redraw_progress_soon(self, label: str) -> None:
        if label == self.current and self._progress_redraw is None:
            self._progress_redraw = self.set_timer(PROGRESS_REDRAW_S, self._redraw_progress)

    def _redraw_progress(self) -> None:
        self._progress_redraw = None
        if self.current is not None:
            self._redraw_chat_if(self.current)

    def _transfer_line(
        self, label: str, transfer_id: str, direction: str, *, sender: str | None = None
    ) -> None:
        """The transfer's place in its conversation: its history row if history has
        it (read first), else now."""
        log = self.conversations.log(label)
        self._seed(label, log)
        if direction == "out":
            sender = self.me.name
        elif sender is None:
            sender = self.roster.name_of(label)
        known = self.transfers.get(transfer_id)
        log.transfer(transfer_id, direction, sender, int(self.clock() * 1000),
                     known.name if known else "")  # fmt: skip

    def _track(self, view: FileView) -> None:
        """A view the node answered with (send, accept, cancel)."""
        self.transfers.set_view(view)
        label = _file_label(view.conversation, view.peer_id)
        self._transfer_line(label, view.transfer_id, view.direction, sender=view.peer_name)
        self._redraw_chat_if(label)

    async def _refresh_files(self) -> None:
        views = await self._call(self.api.async_files())
        for view in views or []:
            self.transfers.set_view(view)
        if views and self.current is not None:
            self._redraw_chat_if(self.current)

    def _last_transfer(self, wanted: Callable[[Transfer], bool]) -> Transfer | None:
        """The open conversation's latest transfer that ``wanted`` picks."""
        if self.current is None:
            return None
        for transfer_id in reversed(self.conversations.log(self.current).transfer_ids()):
            transfer = self.transfers.get(transfer_id)
            if transfer is not None and wanted(transfer):
                return transfer
        return None

    def action_send_file(self) -> None:
        label = self.current
        if label is None:
            self.notify("Open a contact's conversation first, then press f.")
            return
        group = self.roster.groups.get(label)
        if group is not None:  # each LAN member gets its own transfer
            self._send_file(label, group.name)
            return
        guest = self.roster.guests.get(label)
        if guest is not None:  # while their page is in the chat: it keeps nothing queued
            if guest.state != "joined":
                self.notify(f"{guest.name} is not in the chat now: files go to a guest"
                            " while their page is open.", severity="warning")  # fmt: skip
                return
            self._send_file(label, guest.name)
            return
        contact = self.roster.contacts.get(label)
        if contact is None:
            self.notify("Open a contact's conversation first, then press f.")
            return
        self._send_file(label, contact.name)

    @work(group="dialog")
    async def _send_file(self, label: str, name: str) -> None:
        path = await self.app.push_screen_wait(SendFileScreen(name))
        if path is None:
            return
        sent = await self._call(self.api.async_send_files(label, path))
        if sent is None:
            return
        for view in sent.files:
            self._track(view)
        if sent.not_sent_to:  # a group's browser guests: not yet
            names = one_line(", ".join(sent.not_sent_to), 60)
            self.notify(f"Not sent to guests: {names}.", severity="warning")

    def action_accept_file(self) -> None:
        transfer = self._last_transfer(lambda t: t.direction == "in" and t.state == "offered")
        if transfer is None:
            self.notify("No file waits for you in this conversation.")
            return
        self._file_call(self.api.async_file_accept(transfer.transfer_id))

    def action_cancel_file(self) -> None:
        transfer = self._last_transfer(lambda t: not t.finished)
        if transfer is None:
            self.notify("No transfer to cancel in this conversation.")
            return
        self._file_call(self.api.async_file_cancel(transfer.transfer_id))

    @work(group="files")
    async def _file_call(self, call: Awaitable[FileView]) -> None:
        view = await self._call(call)
        if view is not None:
            self._track(view)

    def action_open_folder(self) -> None:
        transfer = self._last_transfer(
            lambda t: t.direction == "in" and t.state == "done" and bool(t.path)
        )
        if transfer is None or transfer.path is None:
            self.notify("No received file in this conversation yet.")
            return
        folder = Path(transfer.path).parent
        self.app.copy_to_clipboard(str(folder))  # OSC 52: terminals that pass it
        self._open_folder(folder)

    @work(group="files")
    async def _open_folder(self, folder: Path) -> None:
        shown = one_line(str(folder), 100)
        why_not = await open_folder(folder)
        if why_not is None:
            self.notify(f"Opened {shown} (the path is copied too).")
        else:
            self.notify(f"The file is in {shown} ({why_not}; the path is copied).", timeout=15)

    def _group_changed(self, event: GroupChanged) -> None:
        label = group_label(event.group_id)
        text = change_notice(event, self.me.peer_id)
        warning = event.change in ("you_were_removed", "name_clash")
        self._notice(label, text, warning=warning)
        if event.change == "name_clash":  # wherever the user is: it is about trust
            self.notify(f"{one_line(event.group_name, 30)}: {text}.", severity="warning")
        elif event.change in ("joined", "you_were_removed") and label != self.current:
            self.notify(f"{one_line(event.group_name, 30)}: {text}.")

    def _group_refused(self, event: GroupMessageRefused) -> None:
        label = group_label(event.group_id)
        group = self.roster.groups.get(label)
        # Who it came through: a member's name from the list, else a contact's, else the id.
        members = {m.peer_id: m.name for m in group.members} if group else {}
        via = members.get(event.from_peer_id) or self.roster.name_of(event.from_peer_id)
        text = refused_notice(event, via)
        if event.group_id and group is not None:
            self._notice(label, text, warning=True)
        else:
            self.notify(f"A group {text}", severity="warning", timeout=8)

    def _notice(self, label: str, text: str, *, warning: bool = False) -> None:
        log = self.conversations.log(label)
        self._seed(label, log)
        log.notice(text, int(self.clock() * 1000), warning=warning)
        self._redraw_chat_if(label)

    # -- opening conversations ---------------------------------------------------

    def open_conversation(self, label: str, *, focus_input: bool = True) -> None:
        self.current = label
        log = self.conversations.log(label)
        self._seed(label, log)
        self.chat.open(label, self.roster.name_of(label), closed=self._closed_reason(label))
        self.refresh_bindings()  # Members shows in the footer for a group
        self.roster.mark_read(label)
        self.notifier.show_unread(self.roster.total_unread())
        self._redraw_chat_if(label)
        self._redraw_title()
        self._redraw_sidebar()
        if focus_input:
            self.chat.input.focus()

    @on(OptionList.OptionSelected, "#roster")
    def _row_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        kind, _, key = (event.option.id or "").partition(":")
        if kind == "c":
            self.open_conversation(key)
        elif kind == "r":
            self._answer_request(key)
        elif kind == "p":
            self._ask_peer(key)
        elif kind == "k":
            self.open_conversation(key)
        elif kind == "g":
            guest = self.roster.guests.get(key)
            if guest is not None and guest.state == "waiting":
                self._admit(key, guest.name)
            else:
                self.open_conversation(key)

    @on(Button.Pressed, "#start-chat")
    def _start_chat_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start_chat()

    @on(ChatPane.Send)
    def _send(self, event: ChatPane.Send) -> None:
        self._async_send(event.label, event.text)

    @work(group="send")
    async def _async_send(self, label: str, text: str) -> None:
        sent = await self._call(self.api.async_send(label, text))
        if (
            sent is not None
            and sent.status == "sent"
            and self.conversations.log(label).advance(sent.message_id, "sent")
        ):
            self._redraw_chat_if(label)

    # -- actions -----------------------------------------------------------------

    def action_start_chat(self) -> None:
        """A link for the open group's guests (if I am its admin), else a 1:1 link."""
        group = self.roster.groups.get(self.current or "")
        if group is None:
            self.start_chat(ONE_TO_ONE)
        else:
            self.invite_guests(group)

    def invite_guests(self, group: GroupView) -> None:
        refusal = invite_refusal(group)
        if refusal is not None:
            self.notify(refusal, severity="warning")
            return
        self.start_chat(InviteTarget.of_group(group))

    def start_chat(self, target: InviteTarget) -> None:
        self.app.push_screen(
            InviteScreen(self.api, target=target, made=self.invites_made, save_dir=self.data_dir)
        )

    def action_search(self) -> None:
        names = {label: self.roster.name_of(label) for label in self.roster.contacts}
        names.update({label: g.name for label, g in self.roster.guests.items()})
        names.update({label: g.name for label, g in self.roster.groups.items()})

        def chosen(label: str | None) -> None:
            if label:
                self.open_conversation(label)

        self.app.push_screen(SearchScreen(self.history, names), chosen)

    def action_safety(self) -> None:
        if self.current is None or self.current not in self.roster.contacts:
            self.notify("Open a contact's conversation first (guests show theirs on joining).")
            return
        self._show_safety(self.current)

    @work(group="safety")
    async def _show_safety(self, label: str) -> None:
        view = await self._call(self.api.async_verify(label, mark_verified=False))
        if view is None:
            return
        if not await self.app.push_screen_wait(SafetyScreen(view)):
            return
        if await self._call(self.api.async_verify(label, mark_verified=True)):
            self.notify(f"{one_line(view.name, 30)} is now marked verified ✓")
            await self._refresh_contacts()

    def action_answer(self, answer: str) -> None:
        option = self.sidebar.options.highlighted_option
        kind, _, key = ((option.id if option else None) or "").partition(":")
        if kind != "r" or self.focused is not self.sidebar.options:
            return
        self._settle_request(key, answer)

    def action_write(self) -> None:
        if self.current is not None:
            self.chat.input.focus()

    def action_to_sidebar(self) -> None:
        self.sidebar.options.focus()

    def action_toggle_notifications(self) -> None:
        self.settings = TuiSettings(notifications=not self.settings.notifications)
        if self.data_dir is not None:
            try:
                save_settings(self.data_dir, self.settings)
            except OSError as exc:
                self.notify(f"could not save the setting: {exc}", severity="error")
        self.notifier.show_unread(self.roster.total_unread())
        state = "on" if self.settings.notifications else "off"
        self.notify(f"Notifications {state} (bell, title, desktop).")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Shown in the footer only where they apply, so that it fits 80 columns.
        if action == "members":
            return is_group(self.current)
        if action == "safety":
            return self.current in self.roster.contacts
        return True

    def action_new_group(self) -> None:
        contacts = [c for c in self.roster.accepted() if c.state == "accepted"]

        def made(view: GroupView | None) -> None:
            if view is not None:
                self.roster.groups[view.conversation] = view
                self.open_conversation(view.conversation)
                self._refresh_groups_later()

        self.app.push_screen(NewGroupScreen(contacts, self.api.async_group_create), made)

    def action_members(self) -> None:
        group = self.roster.groups.get(self.current or "")
        if group is None:
            self.notify("Open a group's conversation first.")
            return

        def contacts() -> list[ContactView]:
            return [c for c in self.roster.accepted() if c.state == "accepted"]

        def closed(_: None) -> None:
            self._refresh_groups_later()

        def changed(view: GroupView) -> None:
            # A keep emits no event: the roster takes the view, so that a redraw from
            # it (someone coming online) does not undo what the dialog shows.
            self.roster.groups[view.conversation] = view

        self.app.push_screen(
            GroupMembersScreen(
                self.api, group, contacts, self._member_online,
                invite=self.invite_guests, changed=changed,
            ),
            closed,
        )  # fmt: skip

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    # -- requests, peers, guests -------------------------------------------------

    @work(group="dialog")
    async def _answer_request(self, peer: str) -> None:
        view = self.roster.contacts.get(peer)
        if view is None:
            return
        answer = await self.app.push_screen_wait(RequestScreen(view))
        if answer:
            await self._settle(peer, answer)

    @work(group="dialog")
    async def _settle_request(self, peer: str, answer: str) -> None:
        await self._settle(peer, answer)

    async def _settle(self, peer: str, answer: str) -> None:
        call = self.api.async_accept if answer == "accept" else self.api.async_reject
        view = await self._call(call(peer))
        if view is not None:
            verb = "accepted" if answer == "accept" else "rejected"
            self.notify(f"{one_line(view.name, 30)}: request {verb}.")
            await self._refresh_contacts()

    @work(group="dialog")
    async def _ask_peer(self, peer: str) -> None:
        lan = self.roster.peers.get(peer)
        if lan is None:
            return
        question = Text("Ask ")
        question.append(one_line(lan.name, 40), style="bold")
        question.append(f" ({lan.peer_id}) to be your contact?\n\n")
        question.append("They see your name and peer id, and can accept or refuse.", style="dim")
        if not await self.app.push_screen_wait(ConfirmScreen(question, "Ask")):
            return
        view = await self._call(self.api.async_add_contact(peer))
        if view is not None:
            self.notify(f"Contact request sent to {one_line(view.name, 30)}.")
            await self._refresh_contacts()

    @work(group="dialog")
    async def _admit(self, label: str, name: str) -> None:
        question = Text("Let guest ")
        question.append(one_line(name, 40), style="bold")
        question.append(" in?")
        admit: bool = await self.app.push_screen_wait(
            ConfirmScreen(question, "Let in", "Turn away")
        )
        view = await self._call(self.api.async_admit(label, admit=admit))
        if view is not None and not admit:
            self.roster.guests.pop(label, None)
            self._redraw_sidebar()

    # -- drawing -----------------------------------------------------------------

    async def _refresh_contacts(self) -> None:
        views = await self._call(self.api.async_contacts())
        if views is not None:
            self.roster.set_contacts(views)
        self._redraw_sidebar()
        if self.current is not None:
            self._redraw_title()

    async def _refresh_groups(self) -> None:
        views = await self._call(self.api.async_groups())
        if views is None:
            return
        self.roster.set_groups(views)
        self._redraw_sidebar()
        self._redraw_members()
        if is_group(self.current):
            self._redraw_title()
            label = self.current or ""
            self.chat.open(label, self.roster.name_of(label), closed=self._closed_reason(label))
            self._redraw_chat_if(label)  # "✓ 2/3" counts the members on the list now

    @work(group="groups")
    async def _refresh_groups_later(self) -> None:
        await self._refresh_groups()

    def _redraw_members(self) -> None:
        for screen in self.app.screen_stack:
            if isinstance(screen, GroupMembersScreen):
                view = self.roster.groups.get(screen.group.conversation, screen.group)
                screen.show_group(view)

    def _member_online(self, member: GroupMemberView) -> bool:
        return self.roster.member_online(member.peer_id, me=member.me)

    def _closed_reason(self, label: str) -> str | None:
        group = self.roster.groups.get(label)
        if group is None or group.state == "active":
            return None
        if group.state == "left":
            return "You left this group: nothing can be sent to it."
        return "You were removed from this group: nothing can be sent to it."

    def _redraw_sidebar(self) -> None:
        self.sidebar.show(self.roster, self.current)

    def _redraw_chat_if(self, label: str) -> None:
        if label == self.current:
            # In a group, names are not unique: my own lines say "me".
            me = "me" if is_group(label) else self.me.name
            group = self.roster.groups.get(label)
            others = (
                frozenset(m.peer_id for m in group.members if m.kind == "lan" and not m.me)
                if group is not None
                else None
            )
            self.chat.show_lines(
                self.conversations.log(label).lines(), me=me,
                keep_history=self.history.keep_history, members=others,
                transfers=self.transfers.as_dict(),
            )  # fmt: skip

    def _redraw_title(self) -> None:
        label = self.current
        if label is None:
            return
        self.refresh_bindings()  # what the footer offers depends on the conversation
        title = Text(one_line(self.roster.name_of(label), 40), style="bold")
        contact = self.roster.contacts.get(label)
        guest = self.roster.guests.get(label)
        group = self.roster.groups.get(label)
        if group is not None:
            title = Text("# ", style="cyan") + title
            if group.state != "active":
                title.append("  ·  you left" if group.state == "left" else "  ·  removed")
            else:
                online = sum(self._member_online(m) for m in group.members)
                title.append(f"  ·  {online} of {len(group.members)} online")
                if group.am_admin:
                    title.append("  ·  you are admin", style="green")
            title.append("  ·  members (m)", style="dim")
        elif contact is not None:
            session = self.roster.session(label)
            where = (
                "online" if self.roster.online(label) else "offline: messages wait in the outbox"
            )
            title.append(f"  ·  {where}", style="")
            if session != "none":
                title.append(f"  ·  session {session}", style="green" if session == "open" else "")
            if contact.verified:
                title.append("  ·  ✓ verified", style="green")
            else:
                title.append("  ·  not verified (v)", style="yellow")
        elif guest is not None:
            title.append(f"  ·  guest, {guest.state}", style="")
            if guest.path:
                title.append(f" ({guest.path})", style="")
        if not self.history.keep_history:
            title.append("  ·  history off", style="dim")
        self.chat.show_title(title)

    async def _call(self, call: Awaitable[T]) -> T | None:
        """A node call; a user error becomes a red toast instead of a crash."""
        try:
            return await call
        except (UserError, StoreError) as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return None


def _file_label(conversation: str, peer_id: str) -> str:
    """Where a transfer shows: its group's conversation, else its peer's."""
    return conversation if conversation.startswith(GROUP_PREFIX) else peer_id
