"""What a Start chat link is for: a 1:1 chat with me, or a group's guests.

The TUI remembers it for the links it made (``InvitesMade``, kept by the main
screen for the node's life); for others the node's ``InviteView.group`` says which
group a link joins (a 1:1 link made with ``p2pchat invite`` shows as "made elsewhere").
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pchat.control.api import GroupView
from p2pchat.tui.text_format import one_line


@dataclass(frozen=True)
class InviteTarget:
    group: str | None = None  # the group's conversation id ("group:<hex>"); None: 1:1
    name: str = ""  # the group's name, to show

    @classmethod
    def of_group(cls, group: GroupView) -> InviteTarget:
        return cls(group.conversation, group.name)

    @property
    def short_name(self) -> str:
        return one_line(self.name, 30)


ONE_TO_ONE = InviteTarget()

InvitesMade = dict[str, InviteTarget]  # invite id → what it was made for


def invite_refusal(group: GroupView) -> str | None:
    """Why I cannot invite guests to ``group`` (``None``: I can), in one line."""
    name = one_line(group.name, 30)
    if group.state == "left":
        return f"You left {name}: no guest can join it through you."
    if group.state != "active":
        return f"You were removed from {name}: no guest can join it through you."
    if not group.am_admin:
        admin = next((m for m in group.members if m.admin), None)
        who = one_line(admin.name, 30) if admin else "its admin"
        return f"Only {name}'s admin, {who}, can invite guests to it."
    return None
