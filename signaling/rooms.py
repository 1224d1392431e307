"""The room registry: which invite rooms are live. Pure: no I/O, no clock of its own.

A room is named by the room id of an invite link (``LinkSecret.room_id``: 16 bytes
of BLAKE2b, base64url without padding, 22 characters). The node opens a room when it
makes an invite, closes it when the invite is used up and revokes it on request; the
registry only answers "live or not". It knows nothing of uses, guests or approval.

Times are wall-clock seconds (``time.time()``) passed in by the caller, so expiry
survives a suspended laptop and tests need no sleeping.

The registry is bounded (``max_rooms``). Expired rooms are purged whenever room is
needed and on :meth:`RoomRegistry.purge`; rooms that are no longer live (used up,
revoked) stay as tombstones until they expire, and are dropped first when the
registry is full.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, replace

ROOM_ID_CHARS = 22
# 16 bytes in unpadded base64url: 21 free characters, and a last one that carries
# only 2 bits (its low 4 bits are zero), so exactly one spelling per room id.
ROOM_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")
DEFAULT_MAX_ROOMS = 256


class RoomState(enum.Enum):
    LIVE = "live"
    USED_UP = "used-up"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Room:
    room_id: str
    expires_at: float  # wall-clock seconds
    state: RoomState

    def is_live(self, now: float) -> bool:
        return self.state is RoomState.LIVE and now < self.expires_at


class RoomLimitError(Exception):
    """The registry holds ``max_rooms`` live rooms already: close or revoke one first."""


def is_valid_room_id(room_id: str) -> bool:
    return ROOM_ID_PATTERN.fullmatch(room_id) is not None


class RoomRegistry:
    """Live invite rooms, at most ``max_rooms`` of them (tombstones included)."""

    def __init__(self, *, max_rooms: int = DEFAULT_MAX_ROOMS) -> None:
        if max_rooms < 1:
            raise ValueError("max_rooms must be at least 1")
        self.max_rooms = max_rooms
        self._rooms: dict[str, Room] = {}

    def open_room(self, room_id: str, *, expires_at: float, now: float) -> Room:
        """Open (or re-open, with a new expiry) a room; live until ``expires_at``.

        ``ValueError`` for a malformed room id or a non-finite time;
        :class:`RoomLimitError` when ``max_rooms`` rooms are live already.
        """
        if not is_valid_room_id(room_id):
            raise ValueError("room id must be 22 characters of canonical base64url")
        if not (math.isfinite(expires_at) and math.isfinite(now)):
            raise ValueError("times must be finite numbers of seconds")
        if room_id not in self._rooms and len(self._rooms) >= self.max_rooms:
            self._make_room(now)
        room = Room(room_id, float(expires_at), RoomState.LIVE)
        self._rooms[room_id] = room
        return room

    def close(self, room_id: str) -> bool:
        """The invite is used up: no new guest may join. False if the room is unknown."""
        return self._set_state(room_id, RoomState.USED_UP)

    def revoke(self, room_id: str) -> bool:
        """The owner revoked the invite. False if the room is unknown."""
        return self._set_state(room_id, RoomState.REVOKED)

    def discard(self, room_id: str) -> bool:
        """Forget a room entirely (its id may be opened again). False if unknown."""
        return self._rooms.pop(room_id, None) is not None

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def is_live(self, room_id: str, now: float) -> bool:
        room = self._rooms.get(room_id)
        return room is not None and room.is_live(now)

    def live_rooms(self, now: float) -> list[Room]:
        return [room for room in self._rooms.values() if room.is_live(now)]

    def purge(self, now: float) -> int:
        """Drop expired rooms (live or not); how many were dropped."""
        expired = [rid for rid, room in self._rooms.items() if now >= room.expires_at]
        for room_id in expired:
            del self._rooms[room_id]
        return len(expired)

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def _set_state(self, room_id: str, state: RoomState) -> bool:
        room = self._rooms.get(room_id)
        if room is None:
            return False
        self._rooms[room_id] = replace(room, state=state)
        return True

    def _make_room(self, now: float) -> None:
        self.purge(now)
        if len(self._rooms) < self.max_rooms:
            return
        # Tombstones (used up, revoked) go first, soonest to expire first.
        tombstones = sorted(
            (room for room in self._rooms.values() if room.state is not RoomState.LIVE),
            key=lambda room: room.expires_at,
        )
        for room in tombstones[: len(self._rooms) - self.max_rooms + 1]:
            del self._rooms[room.room_id]
        if len(self._rooms) >= self.max_rooms:
            raise RoomLimitError(
                f"too many open invites ({self.max_rooms}): revoke one or wait for one to expire"
            )
