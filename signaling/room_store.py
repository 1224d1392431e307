"""Where the signaling app keeps room state: in this process, or shared (Redis).

:class:`RoomStore` is what the app asks (all async: a shared store is a network
away). :class:`MemoryRoomStore` keeps today's :class:`~signaling.rooms.RoomRegistry`
(the node's embedded server and a server without ``--redis``) plus the owners' claims;
:class:`signaling.redis_store.RedisRoomStore` shares everything between instances.

A claim binds a room to one owner connection (``conn``, 16 hex digits) and to the
owner's claim token (only its hash, ``claim_hash``): the same token re-claims the room
from a new connection, which then wins; another token is refused.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from signaling.rooms import RoomLimitError, RoomRegistry, RoomState

ClaimOutcome = Literal["ready", "claimed", "expired", "busy"]
JoinOutcome = Literal["ok", "not-valid", "owner-away", "room-full", "restoring"]
RoomStateName = Literal["live", "used-up", "revoked"]
CLAIM_TOKEN_BYTES: Final = 32


def claim_hash(token: bytes) -> str:
    """What a store keeps of a claim token: hex(BLAKE2b-128)."""
    return hashlib.blake2b(token, digest_size=16).hexdigest()


def new_connection_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    expires_at: float = 0.0
    state: RoomStateName = "live"
    previous_owner: str = ""  # instance id (hex) of the connection this one replaces


@dataclass(frozen=True, slots=True)
class Join:
    outcome: JoinOutcome
    owner_iid: str = ""  # hex; this instance's own id when the owner is here
    conn: str = ""


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """Where a room's owner is connected, for the guest sweep."""

    owner_iid: str
    conn: str
    away: bool  # the owner's lease has run out or its instance is gone


class RoomStore(Protocol):
    """Room liveness, claims and guest counts (docs/deploy.md)."""

    @property
    def instance_id(self) -> str:
        """This instance: 16 hex digits, new at every start."""
        ...

    def set_moved_callback(self, callback: Callable[[str, str], None]) -> None:
        """``callback(room_id, conn)`` when another connection took that room."""
        ...

    async def async_start(self) -> None: ...

    async def async_stop(self) -> None: ...

    async def is_live(self, room_id: str, now: float) -> bool: ...

    async def claim(
        self, room_id: str, *, conn: str, claim_hash: str, expires_at: float, now: float
    ) -> Claim:
        """Claim (or re-claim with the same token) a room for connection ``conn``."""
        ...

    async def set_state(self, room_id: str, *, conn: str, state: RoomStateName) -> None:
        """The owner says used up / revoked (only the current connection counts)."""
        ...

    async def forget(self, room_id: str, *, conn: str) -> None:
        """The owner left for good: drop the room (if ``conn`` still holds it)."""
        ...

    async def release(self, room_id: str, *, conn: str) -> bool:
        """The owner's connection ended without giving the room up (lost, or this
        server is shutting down): stop keeping its lease. True if the room stays for
        the owner to re-claim (here or elsewhere), False if it was forgotten."""
        ...

    def kick(self) -> None:
        """The shared store may have lost its state (a reconnect): check now."""
        ...

    async def join(self, room_id: str, *, cap: int, now: float) -> Join:
        """A guest socket wants in: count it (``leave`` uncounts) if the room is live,
        its owner is there and fewer than ``cap`` guest sockets are in it."""
        ...

    async def leave(self, room_id: str) -> None: ...

    async def owners(self, room_ids: Iterable[str]) -> dict[str, OwnerRecord | None]:
        """Owner records of these rooms (None: no such room), for the guest sweep."""
        ...

    async def live_instances(self, iids: Iterable[str]) -> set[str]:
        """Which of these instances are still alive."""
        ...

    def in_restore_grace(self, now_monotonic: float) -> bool:
        """The store lost its state a moment ago: owners are still re-writing rooms."""
        ...


# Without Redis, a room whose owner dropped (not a clean goodbye) is kept this long for
# its re-claim (the owner client retries within ~30 s); guests meanwhile get 1013
# "the owner is reconnecting". Bounded so dropped rooms cannot fill the registry.
AWAY_KEEP_S = 300.0


@dataclass
class _Claimed:
    claim_hash: str
    conn: str  # "": the owner dropped; kept for a re-claim until away_until
    away_until: float = 0.0  # time.monotonic()


@dataclass
class MemoryRoomStore:
    """This process only: rooms in ``registry`` (shared with the embedded node)."""

    registry: RoomRegistry
    guests_per_room: dict[str, int] = field(default_factory=dict)
    _iid: str = field(default_factory=new_connection_id)
    _claims: dict[str, _Claimed] = field(default_factory=dict)

    @property
    def instance_id(self) -> str:
        return self._iid

    def set_moved_callback(self, callback: Callable[[str, str], None]) -> None:
        pass  # one process: the app sees every reclaim itself

    async def async_start(self) -> None:
        pass

    async def async_stop(self) -> None:
        pass

    async def is_live(self, room_id: str, now: float) -> bool:
        return self.registry.is_live(room_id, now)

    async def claim(
        self, room_id: str, *, conn: str, claim_hash: str, expires_at: float, now: float
    ) -> Claim:
        if expires_at <= now:
            return Claim("expired")
        self._drop_away_rooms()
        held = self._claims.get(room_id)
        if held is None and room_id in self.registry:  # the node's own room
            return Claim("claimed")
        if held is not None and held.claim_hash != claim_hash:
            return Claim("claimed")
        room = self.registry.get(room_id)
        if held is not None and room is not None:
            held.conn = conn
            state: RoomStateName = room.state.value
            return Claim("ready", room.expires_at, state, self._iid)
        try:
            room = self.registry.open_room(room_id, expires_at=expires_at, now=now)
        except RoomLimitError:
            return Claim("busy")
        self._claims[room_id] = _Claimed(claim_hash, conn)
        return Claim("ready", room.expires_at, "live", "")

    async def set_state(self, room_id: str, *, conn: str, state: RoomStateName) -> None:
        if self._holds(room_id, conn):
            if state == RoomState.USED_UP.value:
                self.registry.close(room_id)
            elif state == RoomState.REVOKED.value:
                self.registry.revoke(room_id)

    async def forget(self, room_id: str, *, conn: str) -> None:
        if self._holds(room_id, conn):
            del self._claims[room_id]
            self.registry.discard(room_id)

    async def release(self, room_id: str, *, conn: str) -> bool:
        """The owner dropped: its room waits AWAY_KEEP_S for a re-claim with the same
        token (guests: 1013; another token: 4409)."""
        if not self._holds(room_id, conn):
            return False
        held = self._claims[room_id]
        held.conn, held.away_until = "", time.monotonic() + AWAY_KEEP_S
        return True

    def _drop_away_rooms(self) -> None:
        now = time.monotonic()
        gone = [r for r, held in self._claims.items() if not held.conn and held.away_until <= now]
        for room_id in gone:
            del self._claims[room_id]
            self.registry.discard(room_id)

    def kick(self) -> None:
        pass

    async def join(self, room_id: str, *, cap: int, now: float) -> Join:
        self._drop_away_rooms()
        if not self.registry.is_live(room_id, now):
            return Join("not-valid")
        away = self._claims.get(room_id)
        if away is not None and not away.conn:
            return Join("owner-away")
        count = self.guests_per_room.get(room_id, 0)
        if count >= cap:
            return Join("room-full")
        self.guests_per_room[room_id] = count + 1
        held = self._claims.get(room_id)
        return Join("ok", self._iid, held.conn if held else "")

    async def leave(self, room_id: str) -> None:
        count = self.guests_per_room.get(room_id, 0) - 1
        if count > 0:
            self.guests_per_room[room_id] = count
        else:
            self.guests_per_room.pop(room_id, None)

    async def owners(self, room_ids: Iterable[str]) -> dict[str, OwnerRecord | None]:
        result: dict[str, OwnerRecord | None] = {}
        for room_id in room_ids:
            held = self._claims.get(room_id)
            result[room_id] = None if held is None else OwnerRecord(self._iid, held.conn, False)
        return result

    async def live_instances(self, iids: Iterable[str]) -> set[str]:
        return {iid for iid in iids if iid == self._iid}

    def in_restore_grace(self, now_monotonic: float) -> bool:
        return False

    def _holds(self, room_id: str, conn: str) -> bool:
        held = self._claims.get(room_id)
        return held is not None and held.conn == conn
