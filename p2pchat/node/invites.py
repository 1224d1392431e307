"""Invite links the owner hands out to browser guests, and who came in through them.

Pure bookkeeping (no I/O): the node asks it whether a guest may come in, and
tells it when one did. A use is consumed only when an authenticated handshake
from a guest id not seen before on that invite completes (the session opens); a
link-preview GET or a reconnect from the same browser tab never consumes one.
Between our answer and the open session the use is *reserved*, so two guests
racing for the last use cannot both get in, and a relay that swallows the answer
only holds the use until the attempt times out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

from p2pchat.crypto.encoding import b32_encode, b64url_decode
from p2pchat.crypto.envelope import ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.node.password_gate import PasswordGate

DEFAULT_EXPIRES_S = 15 * 60
MAX_EXPIRES_S = 7 * 24 * 3600
MAX_USES = 100
MAX_INVITES = 64
MAX_GUESTS_PER_INVITE = 100
INVITE_ID_CHARS = 8
CLAIM_BYTES = 32


class Admission(Enum):
    ADMIT = "admit"  # new guest, a use is consumed
    READMIT = "readmit"  # a guest already in (reconnect): no use consumed
    ASK_OWNER = "ask_owner"  # --approve: the owner decides
    REFUSE_USED_UP = "used_up"
    REFUSE_EXPIRED = "expired"
    REFUSE_REVOKED = "revoked"


@dataclass
class Invite:
    secret: LinkSecret
    label: str | None
    created_at: float
    expires_at: float
    uses: int
    approve: bool
    revoked: bool = False
    group_id: bytes | None = None  # ``invite --group``: its guests join this group
    admitted: set[str] = field(default_factory=set)
    # guest id -> attempts (answers out, sessions not open yet) holding its use: a
    # guest may have two at once (a reconnect), and one failing must not free the
    # use the other still holds.
    reserved: dict[str, int] = field(default_factory=dict)
    guard: ReplayGuard = field(default_factory=ReplayGuard)
    server: str | None = None  # the remote invite server's base URL; None: the LAN
    # Re-claims the room on the remote server after a lost connection (never shown).
    claim: bytes = field(default_factory=lambda: os.urandom(CLAIM_BYTES), repr=False)
    # ``invite --password``: the normalised password (memory only, never logged or
    # stored) and its tries; None = a link alone lets a guest in.
    password: bytes | None = field(default=None, repr=False)
    gate: PasswordGate = field(default_factory=PasswordGate)

    @property
    def room_id(self) -> str:
        return self.secret.room_id

    @property
    def invite_id(self) -> str:
        """What the owner types to revoke it: the room id's first 40 bits in lower-case
        base32 (a-z, 2-7), which never starts with ``-`` (``p2pchat revoke`` would
        take it for an option); the server knows the room id anyway."""
        return b32_encode(b64url_decode(self.room_id))[:INVITE_ID_CHARS]

    @property
    def uses_left(self) -> int:
        return max(0, self.uses - len(self.admitted) - len(self.reserved.keys() - self.admitted))

    def admission(self, guest_id: str, now: float) -> Admission:
        if self.revoked:
            return Admission.REFUSE_REVOKED
        if now >= self.expires_at:
            return Admission.REFUSE_EXPIRED
        if guest_id in self.admitted or guest_id in self.reserved:
            return Admission.READMIT
        if self.uses_left <= 0:
            return Admission.REFUSE_USED_UP
        return Admission.ASK_OWNER if self.approve else Admission.ADMIT

    def reserve(self, guest_id: str) -> None:
        """We answered this guest: hold a use until its session opens or fails."""
        if guest_id in self.admitted:
            return
        if guest_id in self.reserved or len(self.reserved) < MAX_GUESTS_PER_INVITE:
            self.reserved[guest_id] = self.reserved.get(guest_id, 0) + 1

    def admit(self, guest_id: str) -> None:
        """The guest's session opened: the use is consumed."""
        self.reserved.pop(guest_id, None)
        if len(self.admitted) < MAX_GUESTS_PER_INVITE:
            self.admitted.add(guest_id)

    def release(self, guest_id: str) -> None:
        """An attempt failed before its session opened: the use is free again once no
        other attempt of the same guest holds it."""
        attempts = self.reserved.get(guest_id, 0)
        if attempts > 1:
            self.reserved[guest_id] = attempts - 1
        else:
            self.reserved.pop(guest_id, None)

    def is_open_to_new_guests(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at and self.uses_left > 0

    def accepts_connections(self, now: float) -> bool:
        """New guests, or guests already in coming back after a drop."""
        return (
            not self.revoked
            and now < self.expires_at
            and (self.uses_left > 0 or bool(self.admitted))
        )


def parse_duration(text: str) -> int:
    """``"15m"``, ``"2h"``, ``"90s"``, ``"1d"`` or plain seconds → seconds; ``ValueError``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not number.isdigit():
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)")
    seconds = int(number) * units[unit]
    if not 0 < seconds <= MAX_EXPIRES_S:
        raise ValueError(f"a link lasts from 1 second to {MAX_EXPIRES_S // 86400} days")
    return seconds
