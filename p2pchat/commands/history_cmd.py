"""``p2pchat history``: review the encrypted history, straight from the profile.

No node needed: the profile is opened with the passphrase (SQLCipher in WAL mode
lets a running node keep writing meanwhile). Four forms:

* ``history``: the conversations, most recent first;
* ``history PEER [--since D] [--until D] [--limit N]``: one conversation;
* ``history --search WORDS [PEER]``: full-text search, newest first, with a total;
* ``history PEER --export FILE``: JSON or Markdown (by extension), not encrypted.

PEER is a contact (name or peer-id prefix), a browser guest (name or
``guest:<id>``) or a group (name or ``group:<id>``). The message line format and ``terminal_safe`` live in
p2pchat/history_view.py and are re-exported here for ``p2pchat watch``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2pchat.errors import UsageError
from p2pchat.history_view import (
    DELIVERY_LABELS,
    HIGHLIGHT_MARKS,
    Conversation,
    ShownHit,
    display_width,
    format_conversations,
    format_hits,
    format_message,
    format_time,
    split_snippet,
    terminal_safe,
    use_color,
)

if TYPE_CHECKING:
    from p2pchat.store import Profile

__all__ = [
    "DELIVERY_LABELS",
    "format_message",
    "format_time",
    "parse_moment",
    "run_history",
    "terminal_safe",
]

DEFAULT_SEARCH_LIMIT = 50
DATE_EXAMPLES = '2026-11-23, "2026-11-23 14:30", 2026-11-23T14:30:00+01:00, or 2h, 3d (ago)'
_RELATIVE = re.compile(r"(\d{1,6})\s*([smhdw])")
_RELATIVE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def run_history(args: argparse.Namespace) -> int:
    from p2pchat.passphrase import read_passphrase
    from p2pchat.store import open_profile, resolve_data_dir

    now = time.time()
    since_ms = _moment_option("--since", args.since, now=now, end_of_day=False)
    until_ms = _moment_option("--until", args.until, now=now, end_of_day=True)
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise UsageError("--since must be before --until")
    _check_combination(args)
    if args.search is not None:
        _check_query(args.search)
    export_format = None
    if args.export is not None:  # checked before the passphrase is asked for
        from p2pchat import history_export

        export_format = history_export.export_format(args.export, json_requested=args.json)
        if args.export != "-":
            history_export.check_can_write(Path(args.export), force=args.force)

    data_dir = resolve_data_dir(args.data_dir)
    with open_profile(data_dir, read_passphrase(args.passphrase_file)) as profile:
        known = _conversations(profile)
        if args.search is not None:
            conversation = None if args.peer is None else _resolve(known, args.peer)
            return _search(profile, known, args, conversation, since_ms, until_ms)
        if args.peer is None:
            return _list_conversations(profile, args, known)
        conversation = _resolve(known, args.peer)
        messages = profile.messages(
            conversation.conversation_id, since_ms=since_ms, until_ms=until_ms, limit=args.limit
        )
        keep_history = profile.settings.keep_history
        # My group messages: which members have each (their copy's receipt came).
        delivered = (
            profile.groups.deliveries(conversation.conversation_id)
            if conversation.kind == "group"
            else None
        )
    if export_format is not None:
        filters = {"since": _iso(since_ms), "until": _iso(until_ms), "limit": args.limit}
        return _export(args, export_format, conversation, messages, filters, now)
    return _show_conversation(
        args, conversation, messages, keep_history=keep_history, delivered=delivered
    )


def parse_moment(text: str, *, now: float, end_of_day: bool = False) -> int:
    """Milliseconds since the epoch for a date the user typed; ValueError if unreadable.

    ``2h``/``3d`` (ago, also ``s``, ``m``, ``w``), ``YYYY-MM-DD``,
    ``YYYY-MM-DD HH:MM`` and ISO 8601; local time unless an offset is given. A day
    alone is its start, or with ``end_of_day`` its end (so ``--until`` a day
    includes that day).
    """
    cleaned = text.strip()
    relative = _RELATIVE.fullmatch(cleaned.lower())
    if relative:
        seconds = int(relative.group(1)) * _RELATIVE_UNITS[relative.group(2)]
        return round((now - seconds) * 1000)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", cleaned):
        day = date.fromisoformat(cleaned)
        if end_of_day:
            day += timedelta(days=1)
        return round(datetime.combine(day, time_of_day()).timestamp() * 1000)
    if not re.match(r"\d{4}-?\d{2}-?\d{2}[T ]", cleaned):
        raise ValueError(cleaned)
    moment = datetime.fromisoformat(cleaned.replace("z", "Z"))
    return round(moment.timestamp() * 1000)  # naive: local time


# -- the four forms -------------------------------------------------------------


def _list_conversations(
    profile: Profile, args: argparse.Namespace, known: Sequence[Conversation]
) -> int:
    conversations = [c for c in known if c.message_count]
    conversations.sort(key=lambda c: (-(c.last_message_ms or 0), c.name.casefold()))
    if args.limit is not None:
        conversations = conversations[: args.limit]
    if args.json:
        _print_json(
            [
                {
                    "conversation": c.conversation_id,
                    "name": c.name,
                    "kind": c.kind,
                    "peer_id": c.peer_id,
                    "last_message_ms": c.last_message_ms,
                    "message_count": c.message_count,
                }
                for c in conversations
            ]
        )
        return 0
    if not conversations:
        print("No conversations in your history yet.")
        if not profile.settings.keep_history:
            print("History is off for this profile: message texts are not kept on disk.")
        return 0
    for line in format_conversations(conversations):
        print(line)
    return 0


def _show_conversation(
    args: argparse.Namespace,
    conversation: Conversation,
    messages: Sequence[Any],
    *,
    keep_history: bool,
    delivered: dict[bytes, list[bytes]] | None = None,
) -> int:
    if args.json:
        from p2pchat.crypto.identity import peer_id

        rows = []
        for m in messages:
            row: dict[str, Any] = {
                "conversation": m.conversation_id,
                "peer_id": conversation.peer_id,
                "message_id": m.message_id.hex(),
                "direction": m.direction.value,
                "sender": m.sender,
                "timestamp_ms": m.timestamp_ms,
                "text": m.body,
                "delivery": m.delivery.value,
                "kind": m.kind.value,  # "text" | "file" (its text: the file's name)
            }
            if delivered is not None and m.direction.value == "out":
                # A group message of mine: the peer ids of the members that have it.
                row["delivered_to"] = sorted(peer_id(k) for k in delivered.get(m.message_id, []))
            rows.append(row)
        _print_json(rows)
        return 0
    if not messages:
        who = f"{terminal_safe(conversation.name)} ({terminal_safe(conversation.peer_id)})"
        ranged = " in that time range" if args.since or args.until else ""
        print(f"No messages with {who}{ranged}.")
        if not keep_history:
            print("History is off for this profile: message texts are not kept on disk.")
        return 0
    width = max(display_width(terminal_safe(m.sender)) for m in messages)
    for m in messages:
        print(
            format_message(
                timestamp_ms=m.timestamp_ms,
                sender=m.sender,
                direction=m.direction.value,
                text=m.body,
                delivery=m.delivery.value,
                sender_width=width,
            )
        )
    return 0


def _search(
    profile: Profile,
    known: Sequence[Conversation],
    args: argparse.Namespace,
    conversation: Conversation | None,
    since_ms: int | None,
    until_ms: int | None,
) -> int:
    query = args.search
    scope: dict[str, Any] = {
        "conversation_id": None if conversation is None else conversation.conversation_id,
        "since_ms": since_ms,
        "until_ms": until_ms,
    }
    limit = DEFAULT_SEARCH_LIMIT if args.limit is None else args.limit
    hits = profile.search(query, limit=limit, marks=HIGHLIGHT_MARKS, **scope)
    total = len(hits) if len(hits) < limit else profile.search_count(query, **scope)
    names = {c.conversation_id: c for c in known}

    def name_of(conversation_id: str) -> str:
        found = names.get(conversation_id)
        return conversation_id if found is None else found.name

    if args.json:
        rows = []
        for hit in hits:
            m = hit.message
            snippet, spans = split_snippet(hit.snippet)
            found = names.get(m.conversation_id)
            rows.append(
                {
                    "conversation": m.conversation_id,
                    "name": name_of(m.conversation_id),
                    "peer_id": m.conversation_id if found is None else found.peer_id,
                    "message_id": m.message_id.hex(),
                    "direction": m.direction.value,
                    "sender": m.sender,
                    "timestamp_ms": m.timestamp_ms,
                    "text": m.body,
                    "delivery": m.delivery.value,
                    "snippet": snippet,
                    "highlights": [list(span) for span in spans],
                }
            )
        _print_json({"query": query, "total": total, "shown": len(hits), "hits": rows})
        return 0
    shown_query = f'"{terminal_safe(query)}"'
    where = "" if conversation is None else f" with {terminal_safe(conversation.name)}"
    if not hits:
        print(f"No messages{where} match {shown_query}.")
        return 0
    shown = [
        ShownHit(
            conversation=name_of(h.message.conversation_id),
            timestamp_ms=h.message.timestamp_ms,
            sender=h.message.sender,
            snippet=h.snippet,
        )
        for h in hits
    ]
    for line in format_hits(shown, color=use_color(sys.stdout)):
        print(line)
    noun = "message matches" if total == 1 else "messages match"
    if total > len(hits):
        print(
            f"{total:,} {noun} {shown_query}{where}; showing the newest {len(hits)}"
            " (--limit N for more)"
        )
    else:
        print(f"{total:,} {noun} {shown_query}{where}.")
    return 0


def _export(
    args: argparse.Namespace,
    export_format: str,
    conversation: Conversation,
    messages: Sequence[Any],
    filters: dict[str, Any],
    now: float,
) -> int:
    from p2pchat.history_export import render_export, write_private_file

    target = args.export
    shown_target = "this export" if target == "-" else terminal_safe(target)
    print(
        f"warning: {shown_target} is not encrypted:"
        " anyone who can read it can read this conversation",
        file=sys.stderr,
        flush=True,
    )
    chunks = render_export(
        export_format,
        conversation,
        messages,
        exported_ms=round(now * 1000),
        filters=filters,
        ascii_only=target == "-",
    )
    if target == "-":
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return 0
    write_private_file(Path(target), chunks, force=args.force)
    if args.json:
        _print_json(
            {
                "file": str(Path(target).absolute()),
                "format": export_format,
                "conversation": conversation.conversation_id,
                "message_count": len(messages),
            }
        )
    else:
        kind = "Markdown" if export_format == "markdown" else "JSON"
        noun = "message" if len(messages) == 1 else "messages"
        print(
            f"Exported {len(messages):,} {noun} with {terminal_safe(conversation.name)}"
            f" to {shown_target} ({kind}, readable by you only)."
        )
    return 0


# -- helpers ----------------------------------------------------------------------


def _conversations(profile: Profile) -> list[Conversation]:
    """Every contact (with or without messages) and every other stored conversation."""
    from p2pchat.crypto.identity import peer_id
    from p2pchat.store import contact_conversation_id, contact_key_of
    from p2pchat.store.conversation_id import GUEST_PREFIX, group_conversation_id

    summaries = {s.conversation_id: s for s in profile.conversations()}
    found = []
    for contact in profile.contacts():
        conversation_id = contact_conversation_id(contact.public_key)
        summary = summaries.pop(conversation_id, None)
        found.append(
            Conversation(
                conversation_id=conversation_id,
                name=contact.display_name,
                peer_id=peer_id(contact.public_key),
                kind="contact",
                last_message_ms=None if summary is None else summary.last_message_ms,
                message_count=0 if summary is None else summary.message_count,
            )
        )
    for group in profile.groups.all():  # every group, as a contact: by name or group:ID
        conversation_id = group_conversation_id(group.group_id)
        summary = summaries.pop(conversation_id, None)
        found.append(
            Conversation(
                conversation_id=conversation_id,
                name=group.name,
                peer_id=conversation_id,
                kind="group",
                last_message_ms=None if summary is None else summary.last_message_ms,
                message_count=0 if summary is None else summary.message_count,
            )
        )
    for summary in summaries.values():  # guests, and contacts no longer in the list
        key = contact_key_of(summary.conversation_id)
        guest = summary.conversation_id.startswith(GUEST_PREFIX) or key is None
        found.append(
            Conversation(
                conversation_id=summary.conversation_id,
                name=summary.name,
                peer_id=summary.conversation_id if key is None else peer_id(key),
                kind="guest" if guest else "contact",
                last_message_ms=summary.last_message_ms,
                message_count=summary.message_count,
            )
        )
    return found


def _resolve(candidates: Sequence[Conversation], query: str) -> Conversation:
    from p2pchat.node.peer_match import resolve_peer

    only_contacts = all(c.kind == "contact" for c in candidates)
    return resolve_peer(
        query,
        candidates,
        name_of=lambda c: c.name,
        key_of=lambda c: c.peer_id,
        kind="contact" if only_contacts else "conversation",
    )


def _check_combination(args: argparse.Namespace) -> None:
    if args.export is not None:
        if args.search is not None:
            raise UsageError("--export writes one whole conversation: it cannot take --search")
        if args.peer is None:
            raise UsageError("--export needs a PEER: p2pchat history PEER --export FILE")
    elif args.force:
        raise UsageError("--force only goes with --export")
    if args.peer is None and args.search is None and (args.since or args.until):
        raise UsageError("--since and --until need a PEER or --search")


def _check_query(query: str) -> None:
    if any(not c.isprintable() and not c.isspace() for c in query):
        raise UsageError("the search has control characters in it: type words")
    if not any(c.isalnum() for c in query):
        raise UsageError(
            f"nothing to search for in {terminal_safe(query)!r}: give a word,"
            ' e.g. --search "lunch tomorrow" or --search "meet*"'
        )


def _moment_option(option: str, text: str | None, *, now: float, end_of_day: bool) -> int | None:
    if text is None:
        return None
    try:
        return parse_moment(text, now=now, end_of_day=end_of_day)
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"{option}: cannot read {terminal_safe(text)!r} as a date or time;"
            f" use e.g. {DATE_EXAMPLES}"
        ) from None


def _iso(timestamp_ms: int | None) -> str | None:
    if timestamp_ms is None:
        return None
    return datetime.fromtimestamp(timestamp_ms / 1000).astimezone().isoformat(timespec="seconds")


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout)
    print()
