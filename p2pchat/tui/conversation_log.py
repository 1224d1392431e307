"""The messages of each conversation as shown, with their delivery state.

Seeded from history (the Profile) when a conversation is first opened, then
kept up to date by events: our own messages go queued → sent → delivered and
never back. Works the same with history off: what this session saw is kept
in memory (bounded), and nothing is written.

In a group, each of my messages also counts the members known to have it
(``reached``: their peer ids, from the history's per-member deliveries and the
receipts since), for the "✓ 2/3" mark.

A group's conversation also holds *notices* (someone joined, a message was
refused): lines of this session only, never stored, with direction "notice".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from p2pchat.store.records import StoredMessage

MAX_LINES_PER_CONVERSATION = 1000
HISTORY_PAGE = 200  # messages loaded from the profile when a conversation opens

# Our messages only move forward through these; incoming ones are "in".
_ORDER = {"queued": 0, "sent": 1, "delivered": 2}
_FROM_STORE = {"pending": "queued", "sent": "sent", "delivered": "delivered"}


@dataclass(frozen=True)
class ChatLine:
    message_id: str  # hex
    direction: str  # "in" | "out" | "notice"
    sender: str
    timestamp_ms: int
    text: str
    state: str  # "in"; for ours: "queued" | "sent" | "delivered"; notices: "info" | "warning"
    reached: frozenset[str] = frozenset()  # my group message: members (peer ids) that have it


class ConversationLog:
    def __init__(self) -> None:
        self._lines: OrderedDict[str, ChatLine] = OrderedDict()
        self._early_states: dict[str, str] = {}  # a state that came before its message
        self._early_reached: dict[str, set[str]] = {}  # receipts that came before it
        self._announced: OrderedDict[str, None] = OrderedDict()  # ids seen in events
        self._notices = 0
        self.seeded = False

    def lines(self) -> list[ChatLine]:
        return sorted(self._lines.values(), key=lambda line: line.timestamp_ms)

    def seed(
        self, stored: Iterable[StoredMessage], reached: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """History from the profile; lines this session already has win.

        ``reached``: of my group messages, message id → the members the history
        says have it (receipts this session saw before are added to it)."""
        reached = reached or {}
        for message in stored:
            key = message.message_id.hex()
            if key in self._lines:
                continue
            outgoing = message.direction.value == "out"
            members = frozenset(reached.get(key, ())) if outgoing else frozenset()
            self._put(
                ChatLine(
                    message_id=key,
                    direction=message.direction.value,
                    sender=message.sender,
                    timestamp_ms=message.timestamp_ms,
                    text=message.body,
                    state=_FROM_STORE.get(message.delivery.value, "queued") if outgoing else "in",
                    reached=members | self._early_reached.pop(key, set()),
                )
            )
        self.seeded = True

    def add(
        self, *, message_id: str, direction: str, sender: str, timestamp_ms: int, text: str
    ) -> bool:
        """A message event; False if the line was already there."""
        if message_id in self._lines:
            return False
        state = "in" if direction == "in" else self._early_states.pop(message_id, "queued")
        reached = frozenset(
            self._early_reached.pop(message_id, set()) if direction == "out" else ()
        )
        self._put(ChatLine(message_id, direction, sender, timestamp_ms, text, state, reached))
        return True

    def notice(self, text: str, timestamp_ms: int, *, warning: bool = False) -> None:
        """A line about the conversation, not a message: shown, never stored."""
        self._notices += 1
        state = "warning" if warning else "info"
        self._put(ChatLine(f"notice:{self._notices}", "notice", "", timestamp_ms, text, state))

    def first_event(self, message_id: str) -> bool:
        """True the first time an event announces ``message_id`` (whether or not the
        history read when the conversation was seeded already held it)."""
        if message_id in self._announced:
            return False
        self._announced[message_id] = None
        while len(self._announced) > MAX_LINES_PER_CONVERSATION:
            self._announced.popitem(last=False)
        return True

    def advance(self, message_id: str, state: str) -> bool:
        """Move one of our messages forward (queued → sent → delivered); False if no change."""
        line = self._lines.get(message_id)
        if line is None:
            # The send's result or the receipt can overtake the message event.
            if _ORDER[state] > _ORDER.get(self._early_states.get(message_id, "queued"), 0):
                self._early_states[message_id] = state
                while len(self._early_states) > MAX_LINES_PER_CONVERSATION:
                    del self._early_states[next(iter(self._early_states))]
            return False
        if line.direction != "out" or _ORDER[state] <= _ORDER[line.state]:
            return False
        self._lines[message_id] = replace(line, state=state)
        return True

    def reach(self, message_id: str, member: str) -> bool:
        """``member`` has my group message (its receipt came); False if no change."""
        line = self._lines.get(message_id)
        if line is None:  # the receipt overtook the message event
            self._early_reached.setdefault(message_id, set()).add(member)
            while len(self._early_reached) > MAX_LINES_PER_CONVERSATION:
                del self._early_reached[next(iter(self._early_reached))]
            return False
        if line.direction != "out" or member in line.reached:
            return False
        self._lines[message_id] = replace(line, reached=line.reached | {member})
        return True

    def _put(self, line: ChatLine) -> None:
        self._lines[line.message_id] = line
        while len(self._lines) > MAX_LINES_PER_CONVERSATION:
            self._lines.popitem(last=False)


class Conversations:
    """One ConversationLog per conversation label, made on first use."""

    def __init__(self) -> None:
        self._logs: dict[str, ConversationLog] = {}

    def log(self, label: str) -> ConversationLog:
        return self._logs.setdefault(label, ConversationLog())
