"""``groups`` and ``group create|add|remove|keep|leave``: groups, through the running node.

Every string that came from the network goes through ``terminal_safe``.
"""

from __future__ import annotations

import argparse
from typing import Any

from p2pchat.commands.history_cmd import terminal_safe
from p2pchat.commands.node_cmds import _client, _print_json, _print_table, _text
from p2pchat.errors import UsageError


def run_groups(args: argparse.Namespace) -> int:
    groups = _client(args).call("groups")
    if args.json:
        _print_json(groups)
        return 0
    if not groups:
        print("You are in no groups: `p2pchat group create NAME MEMBER...` makes one.")
        return 0
    for i, group in enumerate(groups):
        if i:
            print()
        _print_group(group)
    return 0


def run_group_usage(args: argparse.Namespace) -> int:
    raise UsageError(
        "name an ACTION: group create, add, remove, keep or leave (`p2pchat group --help`)"
    )


def run_group_create(args: argparse.Namespace) -> int:
    from p2pchat.protocol.group_wire import MAX_LAN_MEMBERS, check_name

    try:  # before the node is asked: the bounds a list has
        check_name(args.name, "a group name")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(args.members) >= MAX_LAN_MEMBERS:
        raise UsageError(f"a group has at most {MAX_LAN_MEMBERS} members, you included")
    members = "\n".join(args.members)
    return _show(args, _client(args).call("group_create", name=args.name, members=members))


def run_group_add(args: argparse.Namespace) -> int:
    return _show(args, _client(args).call("group_add", group=args.group, member=args.member))


def run_group_remove(args: argparse.Namespace) -> int:
    return _show(args, _client(args).call("group_remove", group=args.group, member=args.member))


def run_group_keep(args: argparse.Namespace) -> int:
    return _show(args, _client(args).call("group_keep", group=args.group, guest=args.guest))


def run_group_leave(args: argparse.Namespace) -> int:
    return _show(args, _client(args).call("group_leave", group=args.group))


def _show(args: argparse.Namespace, group: dict[str, Any]) -> int:
    if args.json:
        _print_json(group)
    else:
        _print_group(group)
    return 0


def _role(member: dict[str, Any]) -> str:
    if member.get("admin"):
        return "admin"
    if member.get("kind") == "guest":
        # a browser guest, through its host (the admin); kept: listed while away
        return "guest, kept" if member.get("kept") else "guest"
    return "contact" if member.get("contact") else "member"


def _online(member: dict[str, Any]) -> str:
    if member.get("needs_upgrade"):
        return "needs a newer p2pchat"  # connected, but from before groups: gets nothing
    return "yes" if member.get("online") else "no"


def _clash(member: dict[str, Any]) -> str:
    """A member named as one of my contacts, under another key: not that contact."""
    name = member.get("not_contact")
    return f" (not your contact {terminal_safe(str(name))})" if name else ""


def _print_group(group: dict[str, Any]) -> None:
    state = _text(group, "state")
    status = "" if state == "active" else f" ({'you left' if state == 'left' else 'removed'})"
    print(f"{_text(group, 'name')}  {_text(group, 'conversation')}{status}")
    members = group.get("members") or []
    _print_table(
        ("  MEMBER", "PEER ID", "ROLE", "ONLINE"),
        [
            (
                "  " + _text(m, "name") + (" (you)" if m.get("me") else "") + _clash(m),
                _text(m, "peer_id"),
                _role(m),
                _online(m),
            )
            for m in members
            if isinstance(m, dict)
        ],
    )
    if not group.get("am_admin"):
        admin = next((m for m in members if isinstance(m, dict) and m.get("admin")), None)
        name = terminal_safe(str(admin.get("name"))) if admin else _text(group, "admin_id")
        print(f"  Only the admin ({name}) adds and removes members.")
