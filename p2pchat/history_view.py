"""How history looks on a terminal: message lines, the conversation table, search hits.

Pure text in, text out (no store, no I/O but ``use_color``'s look at the stream).
Names and message texts come from the network, so everything shown goes through
``terminal_safe``: no escape sequence, bidi override or newline from a peer ever
reaches the terminal as such. Highlighting is the one escape sequence we write
ourselves, and only when ``use_color`` says the output is a terminal.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

DELIVERY_LABELS = {"pending": "queued", "sent": "sent", "delivered": "delivered"}

# Marks the store wraps around matched words in a search snippet: private-use
# characters, which chat text practically never holds (and if it does, the worst
# is a wrong highlight: every piece still goes through terminal_safe).
HIGHLIGHT_MARKS = ("\ue000", "\ue001")
_HIGHLIGHT_ON = "\x1b[1;7m"  # bold + reverse video: visible without colours
_HIGHLIGHT_OFF = "\x1b[0m"
# A snippet is shown on one line: what str.splitlines() breaks at becomes a space.
_LINE_BREAKS_TO_SPACES = str.maketrans(dict.fromkeys("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029", " "))


@dataclass(frozen=True)
class Conversation:
    """Who a conversation is with, as history shows it."""

    conversation_id: str
    name: str  # contact name, else the guest's latest name, else the id
    peer_id: str  # a contact's peer id; a guest's label (its conversation id)
    kind: str  # "contact", "guest" or "group"
    last_message_ms: int | None  # None: no stored message
    message_count: int


@dataclass(frozen=True)
class ShownHit:
    """One search hit, ready to show: where, when, who, and the snippet."""

    conversation: str  # the conversation's name
    timestamp_ms: int
    sender: str
    snippet: str  # with HIGHLIGHT_MARKS around the matches


def use_color(stream: TextIO) -> bool:
    """Highlight only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


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
    head = f"{format_time(timestamp_ms)}  {pad(terminal_safe(sender), sender_width)}  > "
    lines = [terminal_safe(line) for line in text.splitlines()] or [""]
    body = ("\n" + " " * display_width(head)).join(lines)
    label = DELIVERY_LABELS.get(delivery or "", delivery)
    suffix = f"  [{label}]" if direction == "out" and label else ""
    return head + body + suffix


def format_conversations(conversations: Sequence[Conversation]) -> list[str]:
    """An aligned table: name, peer id, last message time, message count; then a total."""
    header = ("NAME", "PEER ID", "LAST MESSAGE", "MESSAGES")
    rows = [
        (
            terminal_safe(c.name),
            terminal_safe(c.peer_id),
            "-" if c.last_message_ms is None else format_time(c.last_message_ms),
            str(c.message_count),
        )
        for c in conversations
    ]
    widths = [max(display_width(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = []
    for name, ident, last, count in [header, *rows]:
        lines.append(
            f"{pad(name, widths[0])}  {pad(ident, widths[1])}  {pad(last, widths[2])}"
            f"  {count.rjust(widths[3])}"
        )
    total = sum(c.message_count for c in conversations)
    lines.append(f"{_plural(len(conversations), 'conversation')}, {_plural(total, 'message')}")
    return lines


def format_hits(hits: Sequence[ShownHit], *, color: bool) -> list[str]:
    """One line per hit: time, [conversation], sender, the snippet (matches highlighted)."""
    names = [f"[{terminal_safe(h.conversation)}]" for h in hits]
    senders = [terminal_safe(h.sender) for h in hits]
    name_width = max((display_width(n) for n in names), default=0)
    sender_width = max((display_width(s) for s in senders), default=0)
    return [
        f"{format_time(hit.timestamp_ms)}  {pad(name, name_width)}  {pad(sender, sender_width)}"
        f"  > {render_snippet(hit.snippet, color=color)}"
        for hit, name, sender in zip(hits, names, senders, strict=True)
    ]


def render_snippet(snippet: str, *, color: bool) -> str:
    """The snippet on one safe line; matches in bold reverse video if ``color``."""
    pieces = []
    for text, matched in _snippet_pieces(snippet):
        safe = terminal_safe(text.translate(_LINE_BREAKS_TO_SPACES))
        pieces.append(f"{_HIGHLIGHT_ON}{safe}{_HIGHLIGHT_OFF}" if matched and color else safe)
    return "".join(pieces)


def split_snippet(snippet: str) -> tuple[str, list[tuple[int, int]]]:
    """The plain snippet text and the ``[start, end)`` character spans of its matches."""
    text = ""
    spans = []
    for piece, matched in _snippet_pieces(snippet):
        if matched:
            spans.append((len(text), len(text) + len(piece)))
        text += piece
    return text, spans


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


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK, emoji) count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns."""
    return text + " " * max(width - display_width(text), 0)


def _snippet_pieces(snippet: str) -> list[tuple[str, bool]]:
    start, end = HIGHLIGHT_MARKS
    pieces = []
    for outside_index, chunk in enumerate(snippet.split(start)):
        if outside_index == 0:
            pieces.append((chunk, False))
            continue
        matched, _, rest = chunk.partition(end)
        pieces.append((matched, True))
        pieces.append((rest, False))
    return [(text, matched) for text, matched in pieces if text]


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _safe_char(char: str) -> str:
    if char.isprintable():
        return char
    if char == "\t" or unicodedata.category(char) == "Zs":
        return " "
    return repr(char)[1:-1]
