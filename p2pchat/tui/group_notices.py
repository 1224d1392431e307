"""The lines a group's conversation shows for what is not a message: members
coming and going, refused messages, gaps in a sender's chain.

Names come from the network: they go through ``one_line`` and are drawn as
plain text (ChatPane never reads markup).
"""

from __future__ import annotations

from p2pchat.node.events import GroupChanged, GroupMessageRefused, MessageEvent
from p2pchat.store.conversation_id import GROUP_PREFIX
from p2pchat.tui.text_format import one_line

NAME_LIMIT = 30


def group_label(group_id: str) -> str:
    """The conversation label of a group (its conversation id)."""
    return GROUP_PREFIX + group_id


def is_group(label: str | None) -> bool:
    return label is not None and label.startswith(GROUP_PREFIX)


def change_notice(event: GroupChanged, my_peer_id: str) -> str:
    who = one_line(event.member_name or "someone", NAME_LIMIT)
    if event.member_id is not None and event.member_id == my_peer_id:
        who = "you"
    group = one_line(event.group_name, NAME_LIMIT)
    return {
        "created": f"you created {group}",
        "joined": f"you were added to {group}",
        "member_added": f"{who} joined" if who != "you" else "you were added",
        "member_removed": f"{who} was removed" if who != "you" else "you were removed",
        "member_left": f"{who} left",
        "you_left": "you left the group",
        "you_were_removed": "you were removed",
        # A member listed under one of my contacts' names, with another key.
        "name_clash": (
            f"careful: {who} ({one_line(event.member_id or '?', 40)}) is not your contact"
            f" {who}: another key"
        ),
    }.get(event.change, f"the group changed ({one_line(event.change, 40)})")


def refused_notice(event: GroupMessageRefused, sender_name: str | None) -> str:
    source = one_line(sender_name, NAME_LIMIT) if sender_name else event.from_peer_id
    return f"refused a message via {source}: {one_line(event.reason, 120)} ({event.code})"


def gap_notice(event: MessageEvent) -> str:
    n = event.missing_before
    return (
        f"{n} earlier message{'s' if n != 1 else ''} from "
        f"{one_line(event.sender, NAME_LIMIT)} never arrived"
    )
