"""Delivery marks written behind: SENT marks and receipts, a few at a time.

A message's own write (history + outbox) is synchronous: once ``send`` answers, it
survives a crash. What follows it — the PENDING → SENT mark, and on a receipt the
outbox removal and the DELIVERED mark — changes nothing that could be lost, so it
is queued here and written in one transaction ``delay`` seconds later (or at once
before anything reads the outbox). A crash inside that window loses only marks:
the message is still in the outbox, is sent again on the next session, and the
receiver, which has it already, stores nothing new and answers with a receipt.

New messages are added to the full-text index here too (``index_later``), many in
one statement: a crash before that leaves them for the next open to index.

Receipts must be told apart at once (a receipt for a message that is not in this
conversation's outbox is not news): :meth:`take_receipt` answers from the outbox
as stored plus what is queued here.
"""

from __future__ import annotations

import asyncio
import logging
import os

from p2pchat.store import Profile

logger = logging.getLogger(__name__)

#: How long marks wait to share a transaction: long enough to gather a burst, short
#: enough that a crash loses next to nothing. ``P2PCHAT_WRITE_BEHIND_S`` overrides it
#: (the fault tests widen the window to SIGKILL a node surely inside it).
DEFAULT_WRITE_DELAY_S = 0.005


def _write_delay() -> float:
    try:
        delay = float(os.environ.get("P2PCHAT_WRITE_BEHIND_S", DEFAULT_WRITE_DELAY_S))
    except ValueError:
        return DEFAULT_WRITE_DELAY_S
    return min(max(delay, 0.0), 600.0) if delay == delay else DEFAULT_WRITE_DELAY_S  # NaN


WRITE_DELAY_S = _write_delay()
#: Marks queued at most before they are written at once, whatever the delay.
MAX_QUEUED = 512


class DeliveryMarks:
    def __init__(self, profile: Profile, *, delay: float = WRITE_DELAY_S) -> None:
        self._profile = profile
        self._delay = delay
        self._sent: list[bytes] = []
        self._delivered: dict[bytes, str] = {}  # message id → conversation, in arrival order
        self._group: set[tuple[bytes, bytes]] = set()  # (my group message id, member key)
        self._timer: asyncio.TimerHandle | None = None
        self._index = False  # messages stored since the last flush wait for the FTS index

    def index_later(self) -> None:
        """Messages were stored: index them with the next flush."""
        self._index = True
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self.flush)

    def mark_sent(self, message_id: bytes) -> None:
        self._sent.append(message_id)
        self._schedule()

    def take_receipt(self, message_id: bytes, conversation: str) -> tuple[int, bytes | None] | None:
        """A receipt for ``message_id`` came in ``conversation``: what was waiting in
        that conversation's outbox (frame type, payload), now queued as delivered;
        None for a duplicate or a receipt that is not this conversation's to give."""
        if message_id in self._delivered:
            return None
        frame = self._profile.outbox_frame(message_id, conversation)
        if frame is None:
            return None
        self._delivered[message_id] = conversation
        self._schedule()
        return frame

    def group_delivered(self, message_id: bytes, member_key: bytes) -> None:
        """A member has my group message (its copy's receipt came): record it."""
        self._group.add((message_id, member_key))
        self._schedule()

    def flush(self) -> None:
        """Write what is queued, in one transaction. A failure (a full disk) is
        logged: the messages stay in the outbox and are sent again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._sent and not self._delivered and not self._index and not self._group:
            return
        sent, delivered, index, group = self._sent, self._delivered, self._index, self._group
        self._sent, self._delivered, self._index, self._group = [], {}, False, set()
        try:
            with self._profile.batch():
                if index:
                    self._profile.index_pending()
                for message_id in sent:
                    self._profile.mark_sent(message_id)
                for message_id, conversation in delivered.items():
                    if self._profile.remove_outbox(message_id, conversation):
                        self._profile.mark_delivered(message_id)
                for message_id, key in group:
                    self._profile.groups.add_delivery(message_id, key)
        except Exception as exc:  # a callback: nothing may escape it
            # A full disk, a busy or failing database: the messages stay in the outbox.
            logger.warning("delivery marks not recorded (sent again later): %s", exc)

    def _schedule(self) -> None:
        if len(self._sent) + len(self._delivered) + len(self._group) >= MAX_QUEUED:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self.flush)
