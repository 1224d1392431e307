"""Key-change warnings: at most one open warning per pinned contact.

Anyone on the LAN can claim a contact's name or id with another key, as often as
they like (an mDNS advert per key, a contact request per key). Each attempt must be
refused, and the user must hear of it, but not once per attempt: a stream of
attempts folds into the contact's one warning, which carries the count and the
latest offending key and address. Updates to a warning are rate-limited; the
tracker is pure (time comes in as an argument) and holds one entry per contact, at
most ``max_contacts`` of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

#: A warning's count changes are reported at most this often (the first at once).
UPDATE_INTERVAL_MS = 5_000
MAX_WARNED_CONTACTS = 1024


@dataclass(frozen=True)
class KeyWarningState:
    """One contact's warning as it stands: what to show the user."""

    contact_key: bytes
    offending_key: bytes  # the latest key seen under the contact's name or id
    address: str  # where the latest attempt came from ("" if unknown)
    source: str  # "advert" (mDNS) or "contact_request"
    count: int  # attempts seen since the warning opened
    reported_count: int = 0  # count at the last report
    reported_ms: int = 0


class KeyWarnings:
    def __init__(
        self,
        *,
        update_interval_ms: int = UPDATE_INTERVAL_MS,
        max_contacts: int = MAX_WARNED_CONTACTS,
    ) -> None:
        self._interval = update_interval_ms
        self._max = max_contacts
        self._open: OrderedDict[bytes, KeyWarningState] = OrderedDict()

    def note(
        self, contact_key: bytes, offending_key: bytes, address: str, source: str, now_ms: int
    ) -> KeyWarningState | None:
        """Record one attempt; returns the warning to report now, or ``None`` (folded in:
        :meth:`due` reports it once the interval has passed)."""
        old = self._open.pop(contact_key, None)
        state = KeyWarningState(
            contact_key, offending_key, address, source, count=1 if old is None else old.count + 1
        )
        if old is not None:
            state = replace(state, reported_count=old.reported_count, reported_ms=old.reported_ms)
        self._open[contact_key] = state  # most recently active last
        if len(self._open) > self._max:
            self._open.popitem(last=False)
        if old is None or now_ms - state.reported_ms >= self._interval:
            return self._reported(state, now_ms)
        return None

    def due(self, now_ms: int) -> list[KeyWarningState]:
        """Warnings with attempts not yet reported whose interval has passed."""
        ready = [
            s
            for s in self._open.values()
            if s.count > s.reported_count and now_ms - s.reported_ms >= self._interval
        ]
        return [self._reported(s, now_ms) for s in ready]

    def next_due_ms(self) -> int | None:
        """When :meth:`due` will next have something, if anything is pending."""
        pending = [
            s.reported_ms + self._interval
            for s in self._open.values()
            if s.count > s.reported_count
        ]
        return min(pending, default=None)

    def open_warnings(self) -> list[KeyWarningState]:
        """Every open warning as it stands (to show again to a front end that missed it)."""
        return list(self._open.values())

    def _reported(self, state: KeyWarningState, now_ms: int) -> KeyWarningState:
        state = replace(state, reported_count=state.count, reported_ms=now_ms)
        self._open[state.contact_key] = state
        return state
