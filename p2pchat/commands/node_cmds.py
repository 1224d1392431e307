"""Subcommands that ask the running node over its control socket.

``status``, ``peers``, ``contacts``, ``guests``, ``add``, ``requests``, ``accept``,
``reject``, ``verify``, ``send`` and ``watch``. Each prints readable, aligned text, or JSON
with ``--json`` where it prints data. Every string that came from the network
goes through ``terminal_safe`` before it reaches the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from p2pchat.commands.history_cmd import format_message, format_time, terminal_safe
from p2pchat.control.client import ControlClient
from p2pchat.control.wire import MAX_TEXT_BYTES
from p2pchat.errors import UsageError, UserError
from p2pchat.store.paths import resolve_data_dir

SAFETY_GROUPS_PER_LINE = 4
SAFETY_GROUP_DIGITS = 5
# `send -` counts what is over the limit, to say its size, but not forever (`yes |`).
STDIN_COUNT_CAP = 1 << 30


def run_status(args: argparse.Namespace) -> int:
    status = _client(args).call("status")
    if args.json:
        _print_json(status)
        return 0
    _print_fields(
        [
            ("Name", _text(status, "name")),
            ("Peer id", _text(status, "peer_id")),
            ("Port", _text(status, "port")),
            ("mDNS name", _text(status, "instance") if status.get("instance") else "-"),
            ("Profile", _text(status, "data_dir")),
        ]
    )
    return 0


def run_peers(args: argparse.Namespace) -> int:
    peers = _client(args).call("peers")
    if args.json:
        _print_json(peers)
        return 0
    if not peers:
        print("No peers on the LAN yet (the node keeps looking).")
        return 0
    _print_table(
        ("NAME", "PEER ID", "CONTACT", "SESSION", "ADDRESSES"),
        [
            (
                _text(p, "name"),
                _text(p, "peer_id"),
                _text(p, "contact") if p.get("contact") else "-",
                _text(p, "session"),
                terminal_safe(", ".join(str(a) for a in p.get("addresses") or [])) or "-",
            )
            for p in peers
        ],
    )
    return 0


def run_contacts(args: argparse.Namespace) -> int:
    contacts = _client(args).call("contacts")
    if args.json:
        _print_json(contacts)
        return 0
    if not contacts:
        print(
            "No contacts yet: `p2pchat peers` lists who is on the LAN,"
            " `p2pchat add PEER` asks one of them."
        )
        return 0
    _print_table(
        ("NAME", "PEER ID", "STATE", "VERIFIED", "ONLINE"),
        [
            (
                _text(c, "name"),
                _text(c, "peer_id"),
                _state_label(c),
                "yes" if c.get("verified") else "no",
                "online" if c.get("online") else "offline",
            )
            for c in contacts
        ],
    )
    return 0


def run_guests(args: argparse.Namespace) -> int:
    guests = _client(args).call("guests")
    if args.json:
        _print_json(guests)
        return 0
    if not guests:
        print(
            "No guests in this run yet: `p2pchat invite` makes a link for one"
            " (guests of earlier runs are in `p2pchat history`)."
        )
        return 0
    _print_table(
        ("NAME", "GUEST", "STATE", "INVITE", "LAST SEEN"),
        [
            (
                _text(g, "name"),
                _text(g, "peer_id"),
                _text(g, "state"),
                _text(g, "invite_id"),
                format_time(int(g.get("last_seen_ms") or 0)) if g.get("last_seen_ms") else "-",
            )
            for g in guests
        ],
    )
    print()
    print(
        "Write to one by name (a guest here now is the one meant) or by its GUEST label:"
        " `p2pchat send guest:ID TEXT`."
    )
    return 0


def run_requests(args: argparse.Namespace) -> int:
    requests = _client(args).call("requests")
    if args.json:
        _print_json(requests)
        return 0
    if not requests:
        print("No contact requests are waiting.")
        return 0
    _print_table(
        ("NAME", "PEER ID", "ONLINE"),
        [
            (_text(r, "name"), _text(r, "peer_id"), "online" if r.get("online") else "offline")
            for r in requests
        ],
    )
    print()
    print("Accept one with `p2pchat accept PEER`, or refuse it with `p2pchat reject PEER`.")
    return 0


def run_add(args: argparse.Namespace) -> int:
    contact = _client(args).call("add", peer=args.peer)
    who = _who(contact)
    if contact.get("state") == "accepted":
        print(f"{who} is now a contact.")
    elif contact.get("state") == "pending_outgoing":
        print(f"Asked {who} to become a contact: they need to accept it on their side.")
    else:
        print(f"{who}: {_state_label(contact)}.")
    return 0


def run_accept(args: argparse.Namespace) -> int:
    contact = _client(args).call("accept", peer=args.peer)
    if contact.get("state") == "accepted":
        print(f"{_who(contact)} is now a contact.")
    else:
        print(f"{_who(contact)}: {_state_label(contact)}.")
    return 0


def run_reject(args: argparse.Namespace) -> int:
    contact = _client(args).call("reject", peer=args.peer)
    print(f"Rejected {_who(contact)}.")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    safety = _client(args).call("verify", peer=args.peer, mark=args.mark_verified)
    if args.json:
        _print_json(safety)
        return 0
    from p2pchat.commands.profile import print_qr

    name = _text(safety, "name")
    print(f"Safety number with {_who(safety)}:")
    print()
    for line in _safety_lines(str(safety.get("safety_number", ""))):
        print(f"    {line}")
    print()
    print(
        f"Compare these digits with {name}'s screen (`p2pchat verify` on their side),"
        " or scan this QR code with their phone: they must be identical."
    )
    payload = safety.get("qr_payload")
    if isinstance(payload, str) and payload:
        print_qr(payload)
    if args.mark_verified:
        print(f"{name} is marked as verified.")
    elif safety.get("verified"):
        print(f"{name} is already verified.")
    else:
        print(
            f"Not verified yet: when the numbers match, run"
            f" `p2pchat verify {terminal_safe(args.peer)} --mark-verified`."
        )
    return 0


def run_send(args: argparse.Namespace) -> int:
    text = _read_stdin() if args.text == ["-"] else " ".join(args.text)
    if not text.strip():
        raise UsageError("nothing to send: the message is empty")
    _check_size(len(text.encode("utf-8", "surrogateescape")))
    sent = _client(args).call("send", peer=args.peer, text=text)
    if args.json:
        _print_json(sent)
        return 0
    if sent.get("status") == "queued":
        peer = terminal_safe(args.peer)
        print(f"queued: {peer} is offline, it will be delivered when they come back")
    else:
        print(_text(sent, "status"))
    return 0


def run_watch(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        for event in client.watch():
            if args.json:
                print(json.dumps(event), flush=True)
            else:
                print(describe_event(event), flush=True)
    except KeyboardInterrupt:  # Ctrl-C is how a watch ends
        return 0
    return 0


def describe_event(event: dict[str, Any]) -> str:
    """One readable line (more for a multi-line message) for an event from ``watch``."""
    kind = str(event.get("type", "?"))
    if kind == "message":
        timestamp = event.get("timestamp_ms")
        sender = str(event.get("sender", "?"))
        if event.get("group_name"):  # format_message makes it terminal-safe
            sender = f"[{event['group_name']}] {sender}"
        return format_message(
            timestamp_ms=timestamp if isinstance(timestamp, int) else _now_ms(),
            sender=sender,
            direction=str(event.get("direction", "in")),
            text=str(event.get("text", "")),
        )
    describe = _EVENT_LINES.get(kind)
    line = describe(event) if describe else f"{terminal_safe(kind)}: {_compact(event)}"
    return f"{format_time(_now_ms())}  {line}"


# -- events ------------------------------------------------------------------


def _session_line(e: dict[str, Any]) -> str:
    reason = f" ({_text(e, 'reason')})" if e.get("reason") else ""
    return f"session with {_who(e)}: {_text(e, 'state')}{reason}"


def _key_warning_line(e: dict[str, Any]) -> str:
    count = e.get("count")
    seen = ""
    if isinstance(count, int) and count > 1:
        where = f", the latest from {_text(e, 'address')}" if e.get("address") else ""
        seen = f" ({count} attempts{where})"
    return (
        f"WARNING: a LAN peer claims to be {_who(e)} with another key{seen}"
        f" (pinned fingerprint {_text(e, 'pinned_fingerprint')},"
        f" advertised {_text(e, 'advertised_fingerprint')}"
        f" as {_text(e, 'advertised_peer_id')}): not connecting to it;"
        " check with them in person before trusting a new key"
    )


def _group_changed_line(e: dict[str, Any]) -> str:
    group, member = _text(e, "group_name"), _text(e, "member_name")
    change = str(e.get("change"))
    lines = {
        "created": f"group {group} created",
        "joined": f"you are now in group {group}",
        "member_added": f"{member} joined group {group}",
        "member_removed": f"{member} was removed from group {group}",
        "member_left": f"{member} left group {group}",
        "you_left": f"you left group {group}",
        "you_were_removed": f"you were removed from group {group}",
        "name_clash": (
            f"careful: {member} in group {group} ({_text(e, 'member_id')}) is not your"
            f" contact {member}: another key"
        ),
    }
    return lines.get(change, f"group {group}: {terminal_safe(change)}")


def _contact_request_line(e: dict[str, Any]) -> str:
    pid = _text(e, "peer_id")
    return f"{_who(e)} asks to become a contact: `p2pchat accept {pid}` or `p2pchat reject {pid}`"


def _file_line(e: dict[str, Any]) -> str:
    kind, name, tid = str(e.get("type")), _text(e, "name"), _text(e, "transfer_id")[:8]
    way = "to" if e.get("direction") == "out" else "from"
    peer = _text(e, "peer_id")
    if kind == "file_offered":
        return (
            f"{_text(e, 'peer_name')} ({peer}) offers {name} ({_text(e, 'size')} bytes):"
            f" {_text(e, 'reason')} [id {tid}]"
        )
    if kind == "file_progress":
        return (
            f"{name} {way} {peer}: {_text(e, 'state')}, {_text(e, 'bytes_done')} of"
            f" {_text(e, 'size')} bytes"
        )
    if kind == "file_done":
        where = f", saved as {_text(e, 'path')}" if e.get("direction") == "in" else ""
        return f"{name} {way} {peer}: done{where}"
    if kind == "file_failed":
        return f"{name} {way} {peer}: failed: {_text(e, 'reason')}"
    by = "by them" if e.get("by") == "peer" else "by you"
    reason = f": {_text(e, 'reason')}" if e.get("reason") else ""
    return f"{name} {way} {peer}: cancelled {by}{reason}"


_EVENT_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    **{
        kind: _file_line
        for kind in ("file_offered", "file_progress", "file_done", "file_failed", "file_cancelled")
    },
    "node_started": lambda e: f"node started: {_who(e)}, port {_text(e, 'port')}",
    "peer_found": lambda e: (
        f"{_who(e)} is on the LAN" + (" (a contact)" if e.get("is_contact") else "")
    ),
    "peer_lost": lambda e: f"{_who(e)} left the LAN",
    "events_dropped": lambda e: (
        f"{_text(e, 'missed')} events were missed (this watcher fell behind);"
        " who is on the LAN now follows"
    ),
    "contact_request": _contact_request_line,
    "contact_accepted": lambda e: f"{_who(e)} is now a contact",
    "contact_rejected": lambda e: f"contact request with {_who(e)} rejected",
    "session": _session_line,
    "receipt": lambda e: (
        f"delivered to {_text(e, 'peer_id')}: message {_text(e, 'message_id')[:8]}"
    ),
    "key_warning": _key_warning_line,
    "group_changed": lambda e: _group_changed_line(e),
    "group_message_refused": lambda e: (
        f"group message from {_text(e, 'from_peer_id')} refused"
        f" ({_text(e, 'code')}): {_text(e, 'reason')}"
    ),
    "guest_waiting": lambda e: (
        f"{_who(e)} waits at invite {_text(e, 'invite_id')}:"
        f" `p2pchat admit {_text(e, 'peer_id')}` (or --deny)"
    ),
    "guest_joined": lambda e: (
        f"{_who(e)} joined through invite {_text(e, 'invite_id')} ({_text(e, 'path')} path"
        + (f": {_text(e, 'relay_reason')}" if e.get("relay_reason") else "")
        + f"); safety number {_text(e, 'safety_number')}"
    ),
    "guest_path": lambda e: f"{_who(e)} is now on the {_text(e, 'path')} path",
    "guest_left": lambda e: f"{_who(e)} left ({_text(e, 'reason')})",
    "guest_refused": lambda e: (
        f"{_who(e) if e.get('peer_id') else 'a guest'} could not join through invite"
        f" {_text(e, 'invite_id')}: {_text(e, 'reason')}"
    ),
    "invite_server_status": lambda e: (
        f"invite server {_text(e, 'url')}: {_text(e, 'state')}"
        + (f" ({_text(e, 'detail')})" if e.get("detail") else "")
    ),
}


# -- helpers -----------------------------------------------------------------


def _client(args: argparse.Namespace) -> ControlClient:
    return ControlClient(resolve_data_dir(args.data_dir))


def _read_stdin() -> str:
    stream = getattr(sys.stdin, "buffer", None)
    # The limit, a final CR LF, and one byte more to know it is over.
    wanted = MAX_TEXT_BYTES + 3
    raw = stream.read(wanted) if stream is not None else None
    if raw is None:
        text = sys.stdin.read(wanted)
    else:
        if len(raw) == wanted:
            _check_size(len(raw) + _count_rest(stream))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError("the message on stdin is not UTF-8 text") from None
    # One trailing newline is what `echo` and editors add; it is not part of it.
    return text.removesuffix("\n").removesuffix("\r")


def _count_rest(stream: Any) -> int:
    """Bytes left on ``stream``, read and dropped, counted up to STDIN_COUNT_CAP."""
    count = 0
    while count < STDIN_COUNT_CAP:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        count += len(chunk)
    return count


def _check_size(size: int) -> None:
    if size <= MAX_TEXT_BYTES:
        return
    shown = f"over {_bytes(STDIN_COUNT_CAP)}" if size >= STDIN_COUNT_CAP else _bytes(size)
    raise UserError(
        f"the message is {shown}, over the limit of {_bytes(MAX_TEXT_BYTES)}"
        " for one message: send a shorter text, or split it"
    )


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size:,} bytes ({size / scale:.1f} {unit})".replace(".0 ", " ")
    return f"{size:,} bytes"


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return "?" if value is None else terminal_safe(str(value))


def _who(obj: dict[str, Any]) -> str:
    return f"{_text(obj, 'name')} ({_text(obj, 'peer_id')})"


def _state_label(contact: dict[str, Any]) -> str:
    return _text(contact, "state").replace("_", " ")


def _safety_lines(number: str) -> list[str]:
    groups = number.split()
    if len(groups) == 1 and groups[0].isdigit():
        digits = groups[0]
        groups = [
            digits[i : i + SAFETY_GROUP_DIGITS] for i in range(0, len(digits), SAFETY_GROUP_DIGITS)
        ]
    groups = [terminal_safe(g) for g in groups]
    return [
        " ".join(groups[i : i + SAFETY_GROUPS_PER_LINE])
        for i in range(0, len(groups), SAFETY_GROUPS_PER_LINE)
    ]


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout)
    print()


def _print_fields(fields: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in fields) + 1
    for label, value in fields:
        print(f"{label + ':':<{width}} {value}")


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


def _compact(obj: dict[str, Any]) -> str:
    return terminal_safe(json.dumps({k: v for k, v in obj.items() if k != "type"}))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
