"""Online password tries for one invite (pure: the caller passes ``now``).

CPace leaves an attacker one guess per attempt, so the owner counts attempts:
at most one pending at a time (another offer meanwhile is told "busy"), and
``MAX_PASSWORD_FAILURES`` failures exhaust the invite (the caller revokes it).
An attempt opens when the owner answers with its share; it is confirmed when
the guest's first sealed frame authenticates, and fails on a bad frame, on the
link closing first, or after ``PAKE_CONFIRM_TIMEOUT_S`` (the caller's timer closes
the link: node/guests.py).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PASSWORD_FAILURES = 5
PAKE_CONFIRM_TIMEOUT_S = 30.0


@dataclass
class PasswordGate:
    failures: int = 0
    pending_since: float | None = None

    @property
    def exhausted(self) -> bool:
        return self.failures >= MAX_PASSWORD_FAILURES

    @property
    def pending(self) -> bool:
        return self.pending_since is not None

    @property
    def tries_left(self) -> int:
        return max(0, MAX_PASSWORD_FAILURES - self.failures)

    def begin(self, now: float) -> bool:
        """Open an attempt; ``False`` while another is pending (or none are left)."""
        if self.exhausted or self.pending_since is not None:
            return False
        self.pending_since = now
        return True

    def confirmed(self) -> None:
        """The pending attempt's keys matched: the password was right."""
        self.pending_since = None

    def failed(self) -> int:
        """The pending attempt failed (wrong password, or it never confirmed): tries left."""
        if self.pending_since is not None:
            self.pending_since = None
            self.failures += 1
        return self.tries_left

    def abandon(self) -> None:
        """The attempt ended before any share went out (revoked meanwhile): not a try."""
        self.pending_since = None
