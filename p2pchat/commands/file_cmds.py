"""``send-file``, ``files``, ``files accept|cancel``: file transfers, through the running node.

``send-file`` queues each file with the node and then follows the node's events
(``watch`` over the control socket) until every one has ended: a progress bar on a
terminal, a plain line at each tenth otherwise. Ctrl-C stops only the watching:
the node goes on. Every string that came from the network goes through
``terminal_safe``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p2pchat.commands.history_cmd import terminal_safe
from p2pchat.commands.node_cmds import _client, _print_json, _print_table, _text
from p2pchat.control.client import ControlClient
from p2pchat.errors import UserError

ENDED = frozenset({"done", "failed", "cancelled", "declined"})
_END_EVENTS = {"file_done": "done", "file_failed": "failed", "file_cancelled": "cancelled"}
BAR_WIDTH = 24
MIN_REDRAW_S = 0.1


def run_send_file(args: argparse.Namespace) -> int:
    client = _client(args)
    paths = [str(Path(p).expanduser().absolute()) for p in args.paths]
    if args.no_wait:
        views, failed = _send_all(client, args.peer, paths)
        _show_sent(args, views)
        return 1 if failed else 0
    sent: dict[str, dict[str, Any]] = {}
    failures: list[bool] = []

    def send_now() -> None:  # once the watch is subscribed: no event is missed
        views, failed = _send_all(client, args.peer, paths)
        sent.update((v["transfer_id"], v) for v in views)
        failures.append(failed)
        if not sent:
            raise _NothingSent

    try:
        ok = _follow(client, client.watch(on_open=send_now), sent, as_json=args.json)
    except _NothingSent:
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        print(
            "stopped watching: the node goes on with the transfer (`p2pchat files`)",
            file=sys.stderr,
        )
        return 130
    if args.json:
        final = {v["transfer_id"]: v for v in client.call("files") if v["transfer_id"] in sent}
        _print_json([final.get(tid, view) for tid, view in sent.items()])
    return 0 if ok and not any(failures) else 1


def run_files(args: argparse.Namespace) -> int:
    files = _client(args).call("files")
    if args.json:
        _print_json(files)
        return 0
    if not files:
        print("No file transfers yet: `p2pchat send-file PEER PATH` sends one.")
        return 0
    _print_table(
        ("ID", "DIR", "PEER", "GROUP", "NAME", "SIZE", "DONE", "STATE"),
        [
            (
                _text(f, "transfer_id")[:8],
                "→" if f.get("direction") == "out" else "←",
                _text(f, "peer_name"),
                _text(f, "group") if f.get("group") else "-",
                _text(f, "name"),
                _size(int(f.get("size") or 0)),
                _percent(f),
                _state(f),
            )
            for f in files
        ],
    )
    waiting = [f for f in files if f.get("state") == "offered"]
    if waiting:
        print()
        print("Accept one with `p2pchat files accept ID` (or decline it: `files cancel ID`).")
    return 0


def run_file_accept(args: argparse.Namespace) -> int:
    to = str(Path(args.to).expanduser().absolute()) if args.to else None
    extra: dict[str, str | bool] = {"to": to} if to else {}
    view = _client(args).call("file_accept", transfer=args.transfer, **extra)
    if args.json:
        _print_json(view)
    else:
        print(f"accepted {_text(view, 'name')} ({_size(int(view.get('size') or 0))})"
              f" from {_text(view, 'peer_name')}")  # fmt: skip
    return 0


def run_file_cancel(args: argparse.Namespace) -> int:
    view = _client(args).call("file_cancel", transfer=args.transfer)
    if args.json:
        _print_json(view)
    else:
        print(f"{_text(view, 'state')}: {_text(view, 'name')}")
    return 0


# -- following a transfer ---------------------------------------------------------


def _send_all(client: ControlClient, peer: str, paths: list[str]) -> tuple[list[Any], bool]:
    """Each path to ``peer``: one transfer for a contact or guest, one per LAN member
    for a group (its browser guests get none yet: said once, on stderr)."""
    views: list[Any] = []
    failed = False
    skipped: dict[str, None] = {}
    for path in paths:
        try:
            sent = client.call("send_files", peer=peer, path=path)
        except UserError as exc:
            print(f"p2pchat: {exc}", file=sys.stderr)
            failed = True
            continue
        views.extend(sent.get("files") or [])
        skipped.update(dict.fromkeys(str(name) for name in sent.get("not_sent_to") or []))
    if skipped:
        names = ", ".join(terminal_safe(name) for name in skipped)
        print(f"not sent to guests: {names} (files to browser guests in a group: not yet)",
              file=sys.stderr)  # fmt: skip
    return views, failed


def _show_sent(args: argparse.Namespace, views: list[Any]) -> None:
    if args.json:
        _print_json(views)
        return
    for view in views:
        print(f"queued {_text(view, 'name')} ({_size(int(view.get('size') or 0))})"
              f" for {_text(view, 'peer_name')}: id {_text(view, 'transfer_id')[:8]}")  # fmt: skip


def _follow(
    client: ControlClient,
    events: Iterator[dict[str, Any]],
    sent: dict[str, dict[str, Any]],
    *,
    as_json: bool,
) -> bool:
    """Show the transfers in ``sent`` until each has ended; True if all are done.

    ``sent`` is filled when the watch opens, before its first event."""
    display = _Display(sent, quiet=as_json)
    states: dict[str, str] = {}
    for event in events:
        if not states:
            states = {tid: str(view.get("state")) for tid, view in sent.items()}
            display.start()
        kind = event.get("type")
        if kind == "events_dropped":  # missed some: ask where each stands
            for view in client.call("files"):
                if view.get("transfer_id") in states:
                    states[view["transfer_id"]] = str(view.get("state"))
        tid = event.get("transfer_id")
        if isinstance(tid, str) and tid in states:
            if kind == "file_progress":
                display.progress(tid, event)
            elif kind in _END_EVENTS:
                states[tid] = _END_EVENTS[kind]
                display.ended(tid, event)
        if all(state in ENDED for state in states.values()):
            break
    return all(state == "done" for state in states.values())


class _NothingSent(Exception):
    """Every file was refused (each said why): nothing to follow."""


class _Display:
    """A progress bar per transfer on a terminal; plain lines (each tenth) otherwise."""

    def __init__(self, sent: dict[str, dict[str, Any]], *, quiet: bool) -> None:
        self._sent = sent
        self._quiet = quiet
        self._tty = sys.stderr.isatty()
        self._drawn = 0.0
        self._tenths: dict[str, int] = {}
        self._bar_shown = False

    def start(self) -> None:
        if self._quiet:
            return
        for view in self._sent.values():
            self._line(f"sending {_text(view, 'name')} ({_size(int(view.get('size') or 0))})"
                       f" to {_text(view, 'peer_name')}")  # fmt: skip

    def progress(self, tid: str, event: dict[str, Any]) -> None:
        if self._quiet:
            return
        done, size = int(event.get("bytes_done") or 0), int(event.get("size") or 0)
        rate, eta = int(event.get("rate") or 0), event.get("eta_s")
        name = _text(self._sent[tid], "name")
        if event.get("state") == "hashing":  # read to hash it first: its own progress
            name, tid = f"{name} (reading)", f"{tid}:hashing"
        if self._tty:
            now = time.monotonic()
            if now - self._drawn < MIN_REDRAW_S:
                return
            self._drawn = now
            filled = BAR_WIDTH * done // size if size else BAR_WIDTH
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            left = f"{_duration(eta)} left" if isinstance(eta, int) else "…"
            sys.stderr.write(f"\r\x1b[K{name[:30]} [{bar}] {_size(done)}/{_size(size)}"
                             f"  {_size(rate)}/s  {left}")  # fmt: skip
            sys.stderr.flush()
            self._bar_shown = True
            return
        tenth = 10 * done // size if size else 10
        if tenth > self._tenths.get(tid, 0):
            self._tenths[tid] = tenth
            print(f"{name}: {_size(done)} of {_size(size)} ({tenth * 10}%), {_size(rate)}/s",
                  flush=True)  # fmt: skip

    def ended(self, tid: str, event: dict[str, Any]) -> None:
        name = _text(self._sent[tid], "name")
        kind = event.get("type")
        if kind == "file_done":
            if not self._quiet:
                self._line(f"sent {name} ({_size(int(event.get('size') or 0))}){self._to(tid)}")
            return
        reason = _text(event, "reason") if event.get("reason") else kind
        who = "by them" if event.get("by") == "peer" else ""
        verb = "failed" if kind == "file_failed" else f"cancelled {who}".strip()
        self._line(f"p2pchat: {name}{self._to(tid)} {verb}: {reason}", error=True)

    def _to(self, tid: str) -> str:
        """ " to PEER" for a group's file (one line per member), else nothing."""
        view = self._sent[tid]
        return f" to {_text(view, 'peer_name')}" if view.get("group") else ""

    def _line(self, text: str, *, error: bool = False) -> None:
        if self._bar_shown:
            sys.stderr.write("\r\x1b[K")
            self._bar_shown = False
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def _percent(view: dict[str, Any]) -> str:
    size = int(view.get("size") or 0)
    done = int(view.get("bytes_done") or 0)
    return "100%" if size == 0 or done >= size else f"{100 * done // size}%"


def _state(view: dict[str, Any]) -> str:
    state = _text(view, "state")
    if view.get("error") and state in ("failed", "cancelled", "declined"):
        return f"{state}: {_text(view, 'error')}"
    return state


def _size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _duration(seconds: int) -> str:
    minutes, secs = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
