"""``g``: a new group: its name and members picked from the accepted contacts.

The screen makes the group itself (the ``create`` it is given, the node's
``async_group_create``), so that a refusal (a bad or taken name, too many
groups) shows on it as one line and the user can fix it and try again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, SelectionList, Static

from p2pchat.control.api import ContactView, GroupView
from p2pchat.errors import UserError
from p2pchat.tui.text_format import one_line

#: The design's bound on a group name (the node checks it too).
MAX_GROUP_NAME_BYTES = 64

CreateGroup = Callable[[str, Sequence[str]], Awaitable[GroupView]]


class NewGroupScreen(ModalScreen[GroupView | None]):
    DEFAULT_CSS = """
    NewGroupScreen { align: center middle; }
    NewGroupScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%;
                                padding: 0 1; border: thick $accent; background: $surface; }
    NewGroupScreen #group-members { height: auto; max-height: 8; }
    NewGroupScreen #new-group-error { color: $error; height: auto; }
    NewGroupScreen Horizontal { height: auto; }
    NewGroupScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, contacts: Sequence[ContactView], create: CreateGroup) -> None:
        super().__init__()
        self._contacts = list(contacts)
        self._create = create

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("New group", style="bold"))
            yield Input(placeholder="Group name", id="group-name", max_length=MAX_GROUP_NAME_BYTES)
            if self._contacts:
                yield Static("Members (Space picks; you can add more later):")
                choices = [
                    (Text(one_line(c.name, 30)).append(f"  {c.peer_id}", style="dim"), c.peer_id)
                    for c in self._contacts
                ]
                yield SelectionList[str](*choices, id="group-members")
            else:
                yield Static(
                    Text("No contacts yet: the group starts with you; add members later.",
                         style="dim")
                )  # fmt: skip
            yield Static("", id="new-group-error")
            with Horizontal():
                yield Button("Create", id="create", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#group-name", Input).focus()

    @on(Input.Submitted, "#group-name")
    def _name_entered(self, event: Input.Submitted) -> None:
        event.stop()
        if self._contacts:
            self.query_one("#group-members", SelectionList).focus()
        else:
            self._try_create()

    @on(Button.Pressed, "#create")
    def _create_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._try_create()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _try_create(self) -> None:
        name = self.query_one("#group-name", Input).value.strip()
        problem = name_problem(name)
        if problem:
            self._error(problem)
            return
        members: list[str] = []
        if self._contacts:
            members = list(self.query_one("#group-members", SelectionList).selected)
        self._create_group(name, members)

    @work(exclusive=True, group="new-group")
    async def _create_group(self, name: str, members: list[str]) -> None:
        self.query_one("#create", Button).disabled = True
        try:
            view = await self._create(name, members)
        except UserError as exc:
            self._error(str(exc))
            return
        finally:
            self.query_one("#create", Button).disabled = False
        self.dismiss(view)

    def _error(self, message: str) -> None:
        self.query_one("#new-group-error", Static).update(Text(one_line(message, 200)))


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a group (checked here first for a quick answer)."""
    if not name:
        return "Give the group a name."
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_GROUP_NAME_BYTES:
        return f"A group name is at most {MAX_GROUP_NAME_BYTES} bytes (this one is {size})."
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "A group name cannot hold control characters."
    return None
