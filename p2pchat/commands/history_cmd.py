"""``p2pchat history PEER``: a conversation read straight from the encrypted profile.

No node needed: the profile is opened with the passphrase (SQLCipher in WAL mode
lets a running node keep writing meanwhile). Also home to the message line format
that ``p2pchat watch`` shares, and to ``terminal_safe``: names and texts come from
the network and must not drive the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from datetime import datetime
from typing import Any

DELIVERY_LABELS = {"pending": "queued", "sent": "sent", "delivered": "delivered"}


def run_history(args: argparse.Namespace) -> int:
    # Imported here: `p2pchat watch` imports this module for its line format only.
    from p2pchat.crypto.identity import peer_id
    from p2pchat.passphrase import read_passphrase
    from p2pchat.peer_match import resolve_peer
    from p2pchat.store import contact_conversation_id, open_profile, resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    with open_profile(data_dir, read_passphrase(args.passphrase_file)) as profile:
        contact = resolve_peer(
            args.peer,
            profile.contacts(),
            name_of=lambda c: c.display_name,
            key_of=lambda c: peer_id(c.public_key),
            kind="contact",
        )
        conversation = contact_conversation_id(contact.public_key)
        messages = profile.messages(conversation, limit=args.limit)
        keep_history = profile.settings.keep_history
    contact_id = peer_id(contact.public_key)
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "conversation": m.conversation_id,
                "peer_id": contact_id,
                "message_id": m.message_id.hex(),
                "direction": m.direction.value,
                "sender": m.sender,
                "timestamp_ms": m.timestamp_ms,
                "text": m.body,
                "delivery": m.delivery.value,
            }
            for m in messages
        ]
        json.dump(rows, sys.stdout)
        print()
        return 0
    if not messages:
        who = terminal_safe(contact.display_name)
        print(f"No messages with {who} ({contact_id}).")
        if not keep_history:
            print("History is off for this profile: message texts are not kept on disk.")
        return 0
    width = max(len(terminal_safe(m.sender)) for m in messages)
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


def format_message(
    *,
    timestamp_ms: int,
    sender: str,
    direction: str,
    text: str,
    delivery: str | None = None,
    sender_width: int = 0,
) -> str:
    """``2026-11-23 10:01:02  alice  > hello``, plus ``[sent]`` etc. on outgoing ones.

    Later lines of a multi-line text are indented under the first.
    """
    head = f"{format_time(timestamp_ms)}  {terminal_safe(sender).ljust(sender_width)}  > "
    lines = [terminal_safe(line) for line in text.splitlines()] or [""]
    body = ("\n" + " " * len(head)).join(lines)
    label = DELIVERY_LABELS.get(delivery or "", delivery)
    suffix = f"  [{label}]" if direction == "out" and label else ""
    return head + body + suffix


def format_time(timestamp_ms: int) -> str:
    """Local wall-clock time, to the second."""
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000)
    except (OverflowError, OSError, ValueError):
        return f"@{timestamp_ms}ms".ljust(19)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def terminal_safe(text: str) -> str:
    """``text`` with no control or formatting characters (escape sequences, bidi
    overrides, newlines) left to act on the terminal: spaces stay spaces, the
    rest is shown escaped (``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(_safe_char(c) for c in text)


def _safe_char(char: str) -> str:
    if char.isprintable():
        return char
    if char == "\t" or unicodedata.category(char) == "Zs":
        return " "
    return repr(char)[1:-1]
