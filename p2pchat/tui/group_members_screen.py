"""``m``: the open group's members (who is online, who is admin), with add,
remove, invite guest and keep guest (the admin only: others see those buttons
disabled) and leave.

Keep: a browser guest the admin keeps stays listed while its page is away
(shown "away"); the node emits no event for it, so the screen redraws from the
view the call returns and hands it on (``changed``).

The screen calls the node itself; a refusal is the node's one line, as a toast.
The main screen hands it fresh views (``show_group``) when the group changes
or a member comes online while it is open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from p2pchat.control.api import ContactView, GroupMemberView, GroupView, NodeApi
from p2pchat.errors import UserError
from p2pchat.tui.confirm_screen import ConfirmScreen
from p2pchat.tui.text_format import one_line

Online = Callable[[GroupMemberView], bool]
Invite = Callable[[GroupView], None]  # opens Start chat for this group's guests
Changed = Callable[[GroupView], None]  # the node's view after a change made here


class GroupMembersScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    GroupMembersScreen { align: center middle; }
    GroupMembersScreen > Vertical { width: 78; max-width: 100%; height: auto; max-height: 100%;
                                    padding: 0 1; border: thick $accent; background: $surface; }
    GroupMembersScreen #members { height: auto; max-height: 12; border: none; }
    GroupMembersScreen #members-note { height: auto; color: $text-muted; }
    GroupMembersScreen Horizontal { height: auto; }
    GroupMembersScreen Button { margin-right: 1; min-width: 8; }
    GroupMembersScreen #close { margin-right: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("x", "remove", "Remove"),
        Binding("i", "invite", "Invite guest"),
        Binding("k", "keep", "Keep guest"),
        Binding("l", "leave", "Leave"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(
        self,
        api: NodeApi,
        group: GroupView,
        contacts: Callable[[], list[ContactView]],
        online: Online,
        *,
        invite: Invite | None = None,
        changed: Changed | None = None,
    ) -> None:
        super().__init__()
        self.api = api
        self.group = group
        self._contacts = contacts  # the accepted contacts, asked when Add is pressed
        self._online = online
        self._invite = invite
        self._changed = changed

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="members-title")
            yield OptionList(id="members")
            yield Static(id="members-note")
            with Horizontal():
                yield Button("Add (a)", id="add", variant="primary")
                yield Button("Remove (x)", id="remove")
                yield Button("Invite guest (i)", id="invite")
                yield Button("Keep (k)", id="keep")
                yield Button("Leave (l)", id="leave", variant="warning")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.show_group(self.group)
        self.query_one("#members", OptionList).focus()

    def show_group(self, group: GroupView) -> None:
        """Redraw from ``group`` (the node's latest view); the highlight stays put."""
        self.group = group
        members = self.query_one("#members", OptionList)
        keep = members.highlighted_option.id if members.highlighted_option else None
        online = sum(self._online(m) for m in group.members)
        title = Text("# ", style="cyan")
        title.append(one_line(group.name, 40), style="bold")
        title.append(f"  {len(group.members)} members, {online} online", style="dim")
        self.query_one("#members-title", Static).update(title)
        members.set_options([self._row(m) for m in group.members])
        ids = [m.peer_id for m in group.members]
        if keep in ids:
            members.highlighted = ids.index(keep)
        elif ids:
            members.highlighted = 0
        active = group.state == "active"
        admin = next((m for m in group.members if m.admin), None)
        admin_name = one_line(admin.name, 30) if admin else "the admin"
        if not active:
            note = "You left this group." if group.state == "left" else "You were removed."
        elif group.am_admin:
            note = "You are the admin: you add and remove members, and invite guests."
        else:
            note = f"Only the admin ({admin_name}) adds and removes members, or invites guests."
        self.query_one("#members-note", Static).update(Text(note))
        self.query_one("#add", Button).disabled = not (active and group.am_admin)
        self.query_one("#remove", Button).disabled = not (active and group.am_admin)
        self.query_one("#invite", Button).disabled = not (
            active and group.am_admin and self._invite is not None
        )
        self.query_one("#leave", Button).disabled = not active
        self._enable_keep()

    def _enable_keep(self) -> None:
        """Keep: the admin's, for the highlighted guest that is not kept yet."""
        member = self._highlighted()
        self.query_one("#keep", Button).disabled = not (
            self.group.state == "active" and self.group.am_admin and member is not None
            and member.kind == "guest" and not member.kept
        )  # fmt: skip

    @on(OptionList.OptionHighlighted, "#members")
    def _moved(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._enable_keep()

    def _row(self, member: GroupMemberView) -> Option:
        online = self._online(member)
        line = Text("● " if online else "○ ", style="green" if online else "dim")
        line.append(one_line(member.name, 24), style="bold" if member.me else "")
        if member.not_contact is not None:  # named as a contact is, with another key
            line.append(f" (not your contact {one_line(member.not_contact, 24)})", style="yellow")
        flags = (("you", member.me), ("admin", member.admin),
                 ("guest", member.kind == "guest"), ("kept", member.kept))  # fmt: skip
        tags = [t for t, on_ in flags if on_]
        if tags:
            line.append(f"  ({', '.join(tags)})", style="cyan")
        if member.needs_upgrade:  # a session, but it gets nothing of the group
            line.append("  needs a newer p2pchat", style="yellow")
        elif online:
            line.append("  online", style="green")
        else:  # a kept guest's page is away: it is still listed, and comes back
            line.append("  away" if member.kept else "  offline", style="dim")
        return Option(line, id=member.peer_id)

    def _highlighted(self) -> GroupMemberView | None:
        option = self.query_one("#members", OptionList).highlighted_option
        return next((m for m in self.group.members if option and m.peer_id == option.id), None)

    # -- buttons and keys --------------------------------------------------------

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = {"add": self.action_add, "remove": self.action_remove,
                  "invite": self.action_invite, "keep": self.action_keep,
                  "leave": self.action_leave,
                  "close": self.action_close}  # fmt: skip
        action[event.button.id or "close"]()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_add(self) -> None:
        if not self.query_one("#add", Button).disabled:
            self._add()

    def action_remove(self) -> None:
        if not self.query_one("#remove", Button).disabled:
            self._remove()

    def action_invite(self) -> None:
        if not self.query_one("#invite", Button).disabled and self._invite is not None:
            self._invite(self.group)

    def action_keep(self) -> None:
        member = self._highlighted()
        if not self.query_one("#keep", Button).disabled and member is not None:
            self._keep(member.peer_id)

    def action_leave(self) -> None:
        if not self.query_one("#leave", Button).disabled:
            self._leave()

    @work(exclusive=True, group="members")
    async def _add(self) -> None:
        present = {m.peer_id for m in self.group.members}
        choices = [c for c in self._contacts() if c.peer_id not in present]
        if not choices:
            self.notify("Every contact is in this group already.")
            return
        peer = await self.app.push_screen_wait(PickContactScreen(choices))
        if peer:
            await self._change(self.api.async_group_add(self.group.conversation, peer))

    @work(exclusive=True, group="members")
    async def _remove(self) -> None:
        member = self._highlighted()
        if member is None:
            return
        if member.me:
            self.notify("That is you: Leave (l) instead.")
            return
        question = Text("Remove ")
        question.append(one_line(member.name, 40), style="bold")
        question.append(" from ")
        question.append(one_line(self.group.name, 40), style="bold")
        question.append("?\n\nThey receive nothing sent after this and can no longer send to it.")
        if await self.app.push_screen_wait(ConfirmScreen(question, "Remove")):
            await self._change(self.api.async_group_remove(self.group.conversation, member.peer_id))

    @work(exclusive=True, group="members")
    async def _keep(self, guest: str) -> None:
        await self._change(self.api.async_group_keep(self.group.conversation, guest))

    @work(exclusive=True, group="members")
    async def _leave(self) -> None:
        question = Text("Leave ")
        question.append(one_line(self.group.name, 40), style="bold")
        question.append("?\n\nYou stop receiving its messages; only its admin can add you back.")
        if not await self.app.push_screen_wait(ConfirmScreen(question, "Leave")):
            return
        if await self._change(self.api.async_group_leave(self.group.conversation)):
            self.dismiss(None)

    async def _change(self, call: Awaitable[GroupView]) -> bool:
        try:
            view = await call
        except UserError as exc:
            self.notify(one_line(str(exc), 200), severity="error", timeout=8)
            return False
        self.show_group(view)
        if self._changed is not None:
            self._changed(view)
        return True


class PickContactScreen(ModalScreen[str | None]):
    """One contact to add: Enter picks, Esc cancels."""

    DEFAULT_CSS = """
    PickContactScreen { align: center middle; }
    PickContactScreen > Vertical { width: 60; max-width: 100%; height: auto; max-height: 100%;
                                   padding: 0 1; border: thick $accent; background: $surface; }
    PickContactScreen OptionList { height: auto; max-height: 14; border: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, contacts: list[ContactView]) -> None:
        super().__init__()
        self._contacts = contacts

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Add which contact? (Enter adds, Esc cancels)", style="bold"))
            yield OptionList(
                *[
                    Option(Text(one_line(c.name, 30)).append(f"  {c.peer_id}", style="dim"),
                           id=c.peer_id)
                    for c in self._contacts
                ],
                id="pick-contact",
            )  # fmt: skip

    def on_mount(self) -> None:
        self.query_one("#pick-contact", OptionList).focus()

    @on(OptionList.OptionSelected, "#pick-contact")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
