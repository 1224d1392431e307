"""Rooms shared by several signaling instances through Redis (one primary, not Cluster).

Keys (prefix ``p2pchat:``; docs/deploy.md)::

    room:<room_id>    hash  owner iid, conn, claim (hash of the token), exp ms, state, lease ms
    room:<room_id>:g  hash  iid → guest sockets of the room on that instance
    inst:<iid>        string (instance name), PX INSTANCE_TTL_MS, refreshed every tick
    epoch             random hex, SET NX: a new value means Redis lost its state

Every decision that must hold across instances (claim, join under the cap) is one Lua
script, with ``now`` from Redis' own clock. Every tick this instance refreshes its
heartbeat and the lease of each room whose owner is connected here, and that refresh
re-writes a room Redis has lost (after a restart, seen as a new epoch): owners need not
reconnect. A room gone while the epoch stayed was forgotten: it stays gone.

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

from signaling.interval_log import IntervalLog
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
POOL_CONNECTIONS: Final = 64  # per client; Redis itself allows 10,000
POOL_WAIT_S: Final = 5.0  # a command waits this long for a free connection, then fails
MAX_TO_FORGET: Final = 4096  # failed FORGETs kept to retry (rooms expire anyway)
ERROR_LOG_EVERY_S: Final = 10.0  # a flood of failed leaves is one line per period
INSTALL_HINT: Final = "--redis needs the redis package: pip install 'p2pchat[server]'"

_NOW = "local t=redis.call('TIME'); local now=t[1]*1000+math.floor(t[2]/1000)\n"

# room:<id>:q, iid -> the number of the latest join/leave of that instance that Redis
# applied (numbers grow per instance): what keeps a tick's re-write from undoing a
# join or leave sent after it took its count.
_SEEN = """local q=tonumber(redis.call('HGET',KEYS[3],ARGV[1]) or '0')
if tonumber(ARGV[5])>q then redis.call('HSET',KEYS[3],ARGV[1],ARGV[5]) end
"""

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
# A missing room is re-written only when Redis lost its state since this instance
# last wrote it (the epoch ARGV[7] it knew then differs): else the room was forgotten
# (its owner's goodbye through a newer connection, maybe elsewhere) and stays gone.
REFRESH: Final = (
    _NOW
    + """
if not redis.call('HGET',KEYS[1],'owner') then
  if tonumber(ARGV[4])<=now then return 'expired' end
  if redis.call('GET',KEYS[2])==ARGV[7] then return 'gone' end
  redis.call('HSET',KEYS[1],'owner',ARGV[1],'conn',ARGV[2],'claim',ARGV[3],'exp',ARGV[4],
    'state',ARGV[5],'lease',now+tonumber(ARGV[6]))
  redis.call('PEXPIREAT',KEYS[1],tonumber(ARGV[4]))
  return 'restored'
end
if redis.call('HGET',KEYS[1],'conn')~=ARGV[2] then return 'moved' end
redis.call('HSET',KEYS[1],'owner',ARGV[1],'lease',now+tonumber(ARGV[6]),'state',ARGV[5])
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
"""
    + _SEEN
    + """redis.call('PEXPIREAT',KEYS[3],tonumber(r[2]))
return {'ok',r[4],r[5]}
"""
)
LEAVE: Final = (
    """
local n=redis.call('HINCRBY',KEYS[2],ARGV[1],-1)
if n<=0 then redis.call('HDEL',KEYS[2],ARGV[1]) end
"""
    + _SEEN
    + """if redis.call('PTTL',KEYS[3])<0 then redis.call('PEXPIRE',KEYS[3],tonumber(ARGV[6])) end
return n
"""
)
# This instance's guest count of a room as it knows it after its join/leave number
# ARGV[5] (0 guests: the field goes) -- unless Redis has seen a later one, sent after
# the count was taken: then the next tick writes. The keys live as long as the room,
# or a while when the room is not (yet) back after a restart.
GUESTS: Final = """
local seen=tonumber(redis.call('HGET',KEYS[3],ARGV[1]) or '0')
if seen>tonumber(ARGV[5]) then return -1 end
local n=tonumber(ARGV[2])
if n<=0 then redis.call('HDEL',KEYS[2],ARGV[1]) else redis.call('HSET',KEYS[2],ARGV[1],n) end
redis.call('HSET',KEYS[3],ARGV[1],ARGV[5])
local exp=redis.call('HGET',KEYS[1],'exp')
for i=2,3 do
  if exp then redis.call('PEXPIREAT',KEYS[i],tonumber(exp))
  else redis.call('PEXPIRE',KEYS[i],tonumber(ARGV[6])) end
end
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
if redis.call('HGET',KEYS[1],'conn')==ARGV[1] then redis.call('DEL',KEYS[1],KEYS[2],KEYS[3]) return 1 end
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
    in about a second instead of redis-py's ~4.5 s (the relay path waits on it).

    Its pool is bounded and *blocking*: redis-py's default pool refuses the 101st
    concurrent command outright, which is what thousands of guests closing at once
    (an instance shutting down) ask for; here they queue for a connection instead."""
    try:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
    except ImportError:
        raise RedisUnavailableError(INSTALL_HINT) from None
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_connect_timeout=1,
            socket_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        )
    except ValueError as exc:
        raise RedisUnavailableError(f"bad --redis URL: {exc}") from None
    client = Redis(connection_pool=pool, single_connection_client=single_connection)
    client.auto_close_connection_pool = True  # aclose() closes the pool too
    return client


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
    epoch: str  # Redis' epoch when this instance last wrote the room


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
        # Guest sockets of each room on this instance: the truth that every tick
        # re-writes into room:<id>:g, so a failed leave (or join whose answer was
        # lost, or a Redis restart) cannot leave a count behind.
        self._guests: dict[str, int] = {}
        self._unsure: set[str] = set()  # rooms whose count in Redis may be wrong
        self._busy: dict[str, int] = {}  # rooms with a join or leave under way
        self._seq = 0  # joins and leaves sent so far (room:<id>:q)
        self._to_forget: dict[str, str] = {}  # room → conn whose FORGET failed
        self._error_log = IntervalLog(ERROR_LOG_EVERY_S, logger)
        self._claim = client.register_script(CLAIM)
        self._refresh = client.register_script(REFRESH)
        self._join = client.register_script(JOIN)
        self._leave = client.register_script(LEAVE)
        self._set_state = client.register_script(SET_STATE)
        self._forget = client.register_script(FORGET)
        self._release = client.register_script(RELEASE)
        self._owner = client.register_script(OWNER)
        self._write_guests = client.register_script(GUESTS)

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
        self._owned[room_id] = _Owned(conn, claim_hash, granted_ms, state, self._epoch or "")
        return Claim("ready", granted_ms / 1000, state, _text(reply[3]))

    async def set_state(self, room_id: str, *, conn: str, state: RoomStateName) -> None:
        owned = self._owned.get(room_id)
        if owned is not None and owned.conn == conn:
            owned.state = state  # what a restore re-writes
        # If this fails, the tick's lease refresh writes the state (it always does).
        await self._set_state(keys=[_room(room_id)], args=[conn, state])

    async def forget(self, room_id: str, *, conn: str) -> None:
        self._drop(room_id, conn)
        try:
            await self._forget(keys=_keys(room_id), args=[conn])
        except BaseException:
            # Else the room would stay until it expires ("owner away", not "not
            # valid"): the tick tries again (FORGET is a no-op once re-claimed).
            if len(self._to_forget) < MAX_TO_FORGET:
                self._to_forget[room_id] = conn
            raise

    async def release(self, room_id: str, *, conn: str) -> bool:
        # The room stays for its owner to re-claim, anywhere; until then guests hear
        # "owner away" (1013), not "not valid".
        self._drop(room_id, conn)
        await self._release(keys=[_room(room_id)], args=[conn])
        return True

    async def join(self, room_id: str, *, cap: int, now: float) -> Join:
        seq = self._begin(room_id)
        try:
            reply = await self._join(
                keys=_keys(room_id),
                args=[self._iid, cap, INSTANCE_PREFIX, EPOCH_KEY, seq],
            )
        except BaseException:
            self._unsure.add(room_id)  # Redis may have counted the guest: the tick knows
            raise
        finally:
            self._end(room_id)
        outcome = _text(reply[0])
        if outcome == "ok":
            self._guests[room_id] = self._guests.get(room_id, 0) + 1
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
        """Never raises: it runs as a guest's socket closes, maybe thousands at once."""
        count = self._guests.get(room_id, 0) - 1
        if count > 0:
            self._guests[room_id] = count
        else:
            self._guests.pop(room_id, None)
        seq = self._begin(room_id)
        try:
            args: list[str | int] = [self._iid, "", "", "", seq, self.timings.instance_ttl_ms]
            await self._leave(keys=_keys(room_id), args=args)
        except Exception as exc:  # the tick writes the right count once Redis answers
            self._unsure.add(room_id)
            self.errors += 1
            self._error_log.warning("redis: a guest's leave failed (repaired later): %s", exc)
        finally:
            self._end(room_id)

    def guest_counts(self) -> dict[str, int]:
        """This instance's guest sockets per room (what the tick writes to Redis)."""
        return dict(self._guests)

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
                await self._forget_again()
                await self._write_guest_counts()
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
                owned.epoch,
            ]
            await self._refresh(keys=[_room(room_id), EPOCH_KEY], args=args, client=pipe)
        replies = await pipe.execute()
        for (room_id, owned), reply in zip(rooms, replies, strict=True):
            outcome = _text(reply)
            if outcome in ("moved", "gone"):  # a newer connection of this owner took it
                self._drop(room_id, owned.conn)
                self._moved(room_id, owned.conn)
            elif outcome == "expired":
                self._drop(room_id, owned.conn)
            elif outcome == "restored":
                owned.epoch = self._epoch or ""

    async def _forget_again(self) -> None:
        rooms = list(self._to_forget.items())
        if not rooms:
            return
        pipe = self._redis.pipeline(transaction=False)
        for room_id, conn in rooms:
            await self._forget(keys=_keys(room_id), args=[conn], client=pipe)
        await pipe.execute()
        for room_id, conn in rooms:
            if self._to_forget.get(room_id) == conn:
                del self._to_forget[room_id]

    async def _write_guest_counts(self) -> None:
        """Re-write this instance's count of every room it has guests in or is unsure
        of. Rooms with a join or leave under way wait for the next tick, and one that
        starts while the writes are on their way is checked again next tick: a write
        never undoes a newer count for longer than one tick."""
        rooms = [r for r in self._guests.keys() | self._unsure if not self._busy.get(r)]
        if not rooms:
            return
        seq = self._seq  # every join or leave of these rooms up to it is over
        pipe = self._redis.pipeline(transaction=False)
        for room_id in rooms:
            count = self._guests.get(room_id, 0)
            args: list[str | int] = [self._iid, count, "", "", seq, self.timings.instance_ttl_ms]
            await self._write_guests(keys=_keys(room_id), args=args, client=pipe)
        replies = await pipe.execute()
        for room_id, reply in zip(rooms, replies, strict=True):
            if int(reply) < 0:  # a newer join or leave got there first: next tick
                self._unsure.add(room_id)
            else:
                self._unsure.discard(room_id)

    def _begin(self, room_id: str) -> int:
        """The number of a join or leave about to be sent."""
        self._busy[room_id] = self._busy.get(room_id, 0) + 1
        self._seq += 1
        return self._seq

    def _end(self, room_id: str) -> None:
        left = self._busy[room_id] - 1
        if left:
            self._busy[room_id] = left
        else:
            del self._busy[room_id]

    def _drop(self, room_id: str, conn: str) -> None:
        owned = self._owned.get(room_id)
        if owned is not None and owned.conn == conn:
            del self._owned[room_id]


def _room(room_id: str) -> str:
    return f"{PREFIX}room:{room_id}"


def _guests(room_id: str) -> str:
    return f"{PREFIX}room:{room_id}:g"


def _keys(room_id: str) -> list[str]:
    """The room, its guest counts and the join/leave numbers they reflect."""
    return [_room(room_id), _guests(room_id), f"{PREFIX}room:{room_id}:q"]


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
