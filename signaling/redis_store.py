"""Rooms shared by several signaling instances through Redis (one primary, not Cluster).

Keys (prefix ``p2pchat:``; docs/deploy.md)::

    room:<room_id>    hash  owner iid, conn, claim (hash of the token), exp ms, state, lease ms
    room:<room_id>:g  hash  iid → guest sockets of the room on that instance
    inst:<iid>        string (instance name), PX INSTANCE_TTL_MS, refreshed every tick
    epoch             random hex, SET NX: a new value means Redis lost its state

Every decision that must hold across instances (claim, join under the cap) is one Lua
script, with ``now`` from Redis' own clock. Every tick this instance refreshes its
heartbeat and the lease of each room whose owner is connected here, and that refresh
re-writes a room Redis has lost (after a restart): owners need not reconnect.

``redis`` is imported lazily: it is the ``server`` extra (``pip install
'p2pchat[server]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from signaling.room_store import Claim, Join, OwnerRecord, RoomStateName

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

PREFIX: Final = "p2pchat:"
INSTANCE_PREFIX: Final = PREFIX + "inst:"
EPOCH_KEY: Final = PREFIX + "epoch"
INSTANCE_TTL_MS: Final = 15000
OWNER_LEASE_MS: Final = 15000
TICK_S: Final = 5.0  # heartbeat and lease refresh
RESTORE_GRACE_S: Final = 15.0
INSTALL_HINT: Final = "--redis needs the redis package: pip install 'p2pchat[server]'"

_NOW = "local t=redis.call('TIME'); local now=t[1]*1000+math.floor(t[2]/1000)\n"

CLAIM: Final = (
    _NOW
    + """
local exp=tonumber(ARGV[4]); if exp<=now then return {'expired'} end
local cur=redis.call('HGET',KEYS[1],'claim'); if cur and cur~=ARGV[3] then return {'claimed'} end
local prev=redis.call('HGET',KEYS[1],'owner') or ''
if cur then exp=tonumber(redis.call('HGET',KEYS[1],'exp')) end
redis.call('HSET',KEYS[1],'owner',ARGV[1],'conn',ARGV[2],'claim',ARGV[3],'exp',exp,
  'lease',now+tonumber(ARGV[5]))
if not cur then redis.call('HSET',KEYS[1],'state','live') end
redis.call('PEXPIREAT',KEYS[1],exp)
return {'ready',tostring(exp),redis.call('HGET',KEYS[1],'state'),prev}
"""
)
REFRESH: Final = (
    _NOW
    + """
if not redis.call('HGET',KEYS[1],'owner') then
  if tonumber(ARGV[4])<=now then return 'expired' end
  redis.call('HSET',KEYS[1],'owner',ARGV[1],'conn',ARGV[2],'claim',ARGV[3],'exp',ARGV[4],
    'state',ARGV[5],'lease',now+tonumber(ARGV[6]))
  redis.call('PEXPIREAT',KEYS[1],tonumber(ARGV[4]))
  return 'restored'
end
if redis.call('HGET',KEYS[1],'conn')~=ARGV[2] then return 'moved' end
redis.call('HSET',KEYS[1],'owner',ARGV[1],'lease',now+tonumber(ARGV[6]))
return 'ok'
"""
)
JOIN: Final = (
    _NOW
    + """
local r=redis.call('HMGET',KEYS[1],'state','exp','lease','owner','conn')
if not r[1] or r[1]~='live' or tonumber(r[2])<=now then
  return {'not-valid',redis.call('GET',ARGV[4]) or ''}
end
if tonumber(r[3])<=now then return {'owner-away'} end
if r[4]~=ARGV[1] and redis.call('EXISTS',ARGV[3]..r[4])==0 then return {'owner-away'} end
local counts=redis.call('HGETALL',KEYS[2]); local total=0
for i=1,#counts,2 do
  if counts[i]==ARGV[1] or redis.call('EXISTS',ARGV[3]..counts[i])==1 then
    total=total+tonumber(counts[i+1])
  else
    redis.call('HDEL',KEYS[2],counts[i])
  end
end
if total>=tonumber(ARGV[2]) then return {'room-full'} end
redis.call('HINCRBY',KEYS[2],ARGV[1],1); redis.call('PEXPIREAT',KEYS[2],tonumber(r[2]))
return {'ok',r[4],r[5]}
"""
)
LEAVE: Final = """
local n=redis.call('HINCRBY',KEYS[1],ARGV[1],-1)
if n<=0 then redis.call('HDEL',KEYS[1],ARGV[1]) end
return n
"""
SET_STATE: Final = """
if redis.call('HGET',KEYS[1],'conn')==ARGV[1] then
  redis.call('HSET',KEYS[1],'state',ARGV[2]) return 1
end
return 0
"""
RELEASE: Final = """
if redis.call('HGET',KEYS[1],'conn')==ARGV[1] then redis.call('HSET',KEYS[1],'lease',0) return 1 end
return 0
"""
FORGET: Final = """
if redis.call('HGET',KEYS[1],'conn')==ARGV[1] then redis.call('DEL',KEYS[1],KEYS[2]) return 1 end
return 0
"""
OWNER: Final = (
    _NOW
    + """
local r=redis.call('HMGET',KEYS[1],'owner','conn','lease')
if not r[1] then return {} end
local away=0
if tonumber(r[3])<=now or redis.call('EXISTS',ARGV[1]..r[1])==0 then away=1 end
return {r[1],r[2],away}
"""
)


class RedisUnavailableError(Exception):
    """``--redis`` names a server that cannot be used (one line, for the operator)."""


@dataclass(frozen=True)
class RedisTimings:
    """The cluster's clocks (tests shorten them)."""

    instance_ttl_ms: int = INSTANCE_TTL_MS
    lease_ms: int = OWNER_LEASE_MS
    tick_s: float = TICK_S
    restore_grace_s: float = RESTORE_GRACE_S


def connect(url: str, *, single_connection: bool = False) -> Redis:
    """A client with short timeouts and retries: a command while Redis is down fails
    in about a second instead of redis-py's ~4.5 s (the relay path waits on it)."""
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
    except ImportError:
        raise RedisUnavailableError(INSTALL_HINT) from None
    try:
        return Redis.from_url(
            url,
            socket_connect_timeout=1,
            socket_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            single_connection_client=single_connection,
        )
    except ValueError as exc:
        raise RedisUnavailableError(f"bad --redis URL: {exc}") from None


async def async_check(client: Redis) -> None:
    """PING once; :class:`RedisUnavailableError` (one line) when it fails."""
    from redis.exceptions import RedisError

    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise RedisUnavailableError(f"cannot reach Redis: {exc}") from None


@dataclass
class _Owned:
    conn: str
    claim_hash: str
    exp_ms: int
    state: RoomStateName


class RedisRoomStore:
    """The :class:`~signaling.room_store.RoomStore` of one instance of a cluster."""

    def __init__(
        self,
        client: Redis,
        *,
        instance_id: str | None = None,
        name: str = "",
        timings: RedisTimings | None = None,
    ) -> None:
        self._redis = client
        self._iid = instance_id or secrets.token_hex(8)
        self._name = name or self._iid
        self.timings = timings or RedisTimings()
        self._owned: dict[str, _Owned] = {}
        self._moved: Callable[[str, str], None] = lambda room_id, conn: None
        self._epoch: str | None = None
        self._grace_started = -math.inf
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.restores = 0  # times this instance saw Redis lose its state
        self.errors = 0
        self._claim = client.register_script(CLAIM)
        self._refresh = client.register_script(REFRESH)
        self._join = client.register_script(JOIN)
        self._leave = client.register_script(LEAVE)
        self._set_state = client.register_script(SET_STATE)
        self._forget = client.register_script(FORGET)
        self._release = client.register_script(RELEASE)
        self._owner = client.register_script(OWNER)

    @property
    def instance_id(self) -> str:
        return self._iid

    def set_moved_callback(self, callback: Callable[[str, str], None]) -> None:
        self._moved = callback

    async def async_start(self) -> None:
        await self._check_epoch(first=True)
        await self._heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._tick_forever())

    async def async_stop(self) -> None:
        """Stop, and say so: other instances stop routing here at once."""
        await self.async_kill()
        with contextlib.suppress(Exception):
            await self._redis.delete(INSTANCE_PREFIX + self._iid)

    async def async_kill(self) -> None:
        """Stop without a word (tests: an instance that died)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def kick(self) -> None:
        self._kick.set()

    def in_restore_grace(self, now_monotonic: float) -> bool:
        return now_monotonic - self._grace_started < self.timings.restore_grace_s

    async def is_live(self, room_id: str, now: float) -> bool:
        state, exp = await self._redis.hmget(_room(room_id), ["state", "exp"])
        return state == b"live" and exp is not None and int(exp) > now * 1000

    async def claim(
        self, room_id: str, *, conn: str, claim_hash: str, expires_at: float, now: float
    ) -> Claim:
        exp_ms = int(expires_at * 1000)
        reply = await self._claim(
            keys=[_room(room_id)],
            args=[self._iid, conn, claim_hash, exp_ms, self.timings.lease_ms],
        )
        outcome = _text(reply[0])
        if outcome != "ready":
            return Claim("claimed" if outcome == "claimed" else "expired")
        granted_ms, state = int(_text(reply[1])), _state(_text(reply[2]))
        self._owned[room_id] = _Owned(conn, claim_hash, granted_ms, state)
        return Claim("ready", granted_ms / 1000, state, _text(reply[3]))

    async def set_state(self, room_id: str, *, conn: str, state: RoomStateName) -> None:
        owned = self._owned.get(room_id)
        if owned is not None and owned.conn == conn:
            owned.state = state  # what a restore re-writes
        await self._set_state(keys=[_room(room_id)], args=[conn, state])

    async def forget(self, room_id: str, *, conn: str) -> None:
        self._drop(room_id, conn)
        await self._forget(keys=[_room(room_id), _guests(room_id)], args=[conn])

    async def release(self, room_id: str, *, conn: str) -> bool:
        # The room stays for its owner to re-claim, anywhere; until then guests hear
        # "owner away" (1013), not "not valid".
        self._drop(room_id, conn)
        await self._release(keys=[_room(room_id)], args=[conn])
        return True

    async def join(self, room_id: str, *, cap: int, now: float) -> Join:
        reply = await self._join(
            keys=[_room(room_id), _guests(room_id)],
            args=[self._iid, cap, INSTANCE_PREFIX, EPOCH_KEY],
        )
        outcome = _text(reply[0])
        if outcome == "ok":
            return Join("ok", _text(reply[1]), _text(reply[2]))
        if outcome == "not-valid" and _text(reply[1]) != self._epoch:
            # Redis lost its state and this instance has not noticed yet: the owners'
            # instances are re-writing their rooms, so "try again", not "not valid".
            self._grace_started = time.monotonic()
            self.kick()
            return Join("restoring")
        if outcome == "not-valid" and self.in_restore_grace(time.monotonic()):
            return Join("restoring")
        if outcome in ("owner-away", "room-full"):
            return Join("owner-away" if outcome == "owner-away" else "room-full")
        return Join("not-valid")

    async def leave(self, room_id: str) -> None:
        await self._leave(keys=[_guests(room_id)], args=[self._iid])

    async def owners(self, room_ids: Iterable[str]) -> dict[str, OwnerRecord | None]:
        rooms = list(room_ids)
        pipe = self._redis.pipeline(transaction=False)
        for room_id in rooms:
            await self._owner(keys=[_room(room_id)], args=[INSTANCE_PREFIX], client=pipe)
        replies = await pipe.execute()
        result: dict[str, OwnerRecord | None] = {}
        for room_id, reply in zip(rooms, replies, strict=True):
            if reply:
                result[room_id] = OwnerRecord(_text(reply[0]), _text(reply[1]), int(reply[2]) == 1)
            else:
                result[room_id] = None
        return result

    async def live_instances(self, iids: Iterable[str]) -> set[str]:
        wanted = list(iids)
        pipe = self._redis.pipeline(transaction=False)
        for iid in wanted:
            pipe.exists(INSTANCE_PREFIX + iid)
        replies = await pipe.execute()
        return {iid for iid, found in zip(wanted, replies, strict=True) if found}

    # --- the tick: heartbeat, epoch, leases (and restores) ---

    async def _tick_forever(self) -> None:
        from redis.exceptions import RedisError

        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timings.tick_s):
                    await self._kick.wait()
            self._kick.clear()
            try:
                await self._heartbeat()
                await self._check_epoch(first=False)
                await self._refresh_leases()
            except (RedisError, OSError) as exc:
                self.errors += 1
                logger.warning("redis: %s", exc)
            except Exception:  # never let the heartbeat die
                self.errors += 1
                logger.exception("redis tick failed")

    async def _heartbeat(self) -> None:
        await self._redis.set(
            INSTANCE_PREFIX + self._iid, self._name, px=self.timings.instance_ttl_ms
        )

    async def _check_epoch(self, *, first: bool) -> None:
        seen = await self._redis.get(EPOCH_KEY)
        if seen is not None and _text(seen) == self._epoch:
            return
        await self._redis.set(EPOCH_KEY, secrets.token_hex(8), nx=True)
        self._epoch = _text(await self._redis.get(EPOCH_KEY) or b"")
        if not first:  # Redis lost its state (or another instance saw it first)
            self.restores += 1
            self._grace_started = time.monotonic()
            logger.warning("redis lost its state: restoring %d rooms", len(self._owned))

    async def _refresh_leases(self) -> None:
        rooms = list(self._owned.items())
        if not rooms:
            return
        pipe = self._redis.pipeline(transaction=False)
        for room_id, owned in rooms:
            args: list[str | int] = [
                self._iid,
                owned.conn,
                owned.claim_hash,
                owned.exp_ms,
                owned.state,
                self.timings.lease_ms,
            ]
            await self._refresh(keys=[_room(room_id)], args=args, client=pipe)
        replies = await pipe.execute()
        for (room_id, owned), reply in zip(rooms, replies, strict=True):
            outcome = _text(reply)
            if outcome == "moved":  # a newer connection of this owner, elsewhere
                self._drop(room_id, owned.conn)
                self._moved(room_id, owned.conn)
            elif outcome == "expired":
                self._drop(room_id, owned.conn)

    def _drop(self, room_id: str, conn: str) -> None:
        owned = self._owned.get(room_id)
        if owned is not None and owned.conn == conn:
            del self._owned[room_id]


def _room(room_id: str) -> str:
    return f"{PREFIX}room:{room_id}"


def _guests(room_id: str) -> str:
    return f"{PREFIX}room:{room_id}:g"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _state(value: str) -> RoomStateName:
    if value == "used-up":
        return "used-up"
    if value == "revoked":
        return "revoked"
    return "live"
