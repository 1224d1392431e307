"""Frames between signaling instances, and the buses that carry them.

A guest on instance B whose room's owner is connected to instance A reaches it through
the bus: B publishes GUEST_* frames to A's channel, A publishes OWNER_* frames to B's.
Each instance SUBSCRIBEs to its own channel only (``p2pchat:to:<iid>``), so nothing is
broadcast to every instance.

Frame (docs/deploy.md, contract §4)::

    version u8 (1) | kind u8 | room_id 22 ASCII | guest_id 8 | from_iid 8 | payload

:func:`encode_frame` / :func:`decode_frame` are pure; :class:`LocalBus` links instances
of one process (tests, and the null bus of a server without Redis); :class:`RedisBus`
sends every publish of an instance from one task on one connection (a pool would
reorder concurrent commands) and keeps its subscription through Redis restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from signaling.rooms import ROOM_ID_CHARS, is_valid_room_id

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

FRAME_VERSION: Final = 1
ID_BYTES: Final = 8
HEADER_BYTES: Final = 2 + ROOM_ID_CHARS + ID_BYTES + ID_BYTES  # 40
GUEST_OPENED: Final = 0x21  # payload: the guest's address, UTF-8, ≤ 64 bytes
GUEST_DATA: Final = 0x22  # payload: the whole guest message, type byte first
GUEST_CLOSED: Final = 0x23  # no payload
# payload: u64 BE, bytes of FILE messages written to the guest's socket so far (flow
# control for an owner that asked for it: docs/guest-protocol.md "Standalone")
GUEST_DRAINED: Final = 0x24
OWNER_DATA: Final = 0x31  # payload: the whole message for the guest, type byte first
OWNER_CLOSE: Final = 0x32  # payload: code u16 BE + reason ≤ 123 bytes
OWNER_LEFT: Final = 0x33  # no payload
KINDS: Final = frozenset(
    {GUEST_OPENED, GUEST_DATA, GUEST_CLOSED, GUEST_DRAINED, OWNER_DATA, OWNER_CLOSE, OWNER_LEFT}
)
DRAINED_BYTES: Final = 8
MAX_ADDRESS_BYTES: Final = 64
# OWNER_CLOSE codes: the owner's own (1000, 3000-4999) and the server's refusals.
SERVER_CLOSE_CODES: Final = frozenset({1000, 1001, 1008, 1011, 1012, 1013})
MAX_REASON_BYTES: Final = 123
CHANNEL_PREFIX: Final = "p2pchat:to:"
# The publisher's queue: over either bound the frame is refused (its socket closes 1013).
QUEUE_BYTES: Final = 16 * 1024 * 1024
QUEUE_FRAMES: Final = 8192
RESUBSCRIBE_DELAY_S: Final = 0.2


class FrameError(ValueError):
    """A frame from another instance is malformed (remote bad data)."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    room_id: str
    guest_id: bytes  # 8 bytes
    from_iid: bytes  # 8 bytes: the sending instance
    payload: bytes = b""


def encode_frame(frame: Frame, *, max_payload: int) -> bytes:
    """The frame's bytes; ``ValueError`` for a frame this module would refuse."""
    _check(frame, max_payload)
    return (
        bytes([FRAME_VERSION, frame.kind])
        + frame.room_id.encode("ascii")
        + frame.guest_id
        + frame.from_iid
        + frame.payload
    )


def decode_frame(data: bytes, *, max_payload: int) -> Frame:
    """Parse one frame; :class:`FrameError` (one line) for anything malformed."""
    if len(data) < HEADER_BYTES:
        raise FrameError(f"bus frame too short ({len(data)} bytes)")
    if data[0] != FRAME_VERSION:
        raise FrameError(f"unknown bus frame version {data[0]}")
    try:
        room_id = data[2 : 2 + ROOM_ID_CHARS].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("bus frame room id is not ASCII") from None
    rest = 2 + ROOM_ID_CHARS
    frame = Frame(
        kind=data[1],
        room_id=room_id,
        guest_id=bytes(data[rest : rest + ID_BYTES]),
        from_iid=bytes(data[rest + ID_BYTES : HEADER_BYTES]),
        payload=bytes(data[HEADER_BYTES:]),
    )
    try:
        _check(frame, max_payload)
    except ValueError as exc:
        raise FrameError(str(exc)) from None
    return frame


def close_payload(code: int, reason: str) -> bytes:
    """OWNER_CLOSE's payload; the reason is cut to 123 bytes (whole characters)."""
    raw = reason.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return struct.pack(">H", code) + raw


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a checked OWNER_CLOSE payload."""
    return struct.unpack(">H", payload[:2])[0], payload[2:].decode("utf-8")


def _check(frame: Frame, max_payload: int) -> None:
    if frame.kind not in KINDS:
        raise ValueError(f"unknown bus frame kind {frame.kind:#04x}")
    if not is_valid_room_id(frame.room_id):
        raise ValueError("bus frame room id not valid")
    if len(frame.guest_id) != ID_BYTES or len(frame.from_iid) != ID_BYTES:
        raise ValueError("bus frame ids are 8 bytes each")
    payload, kind = frame.payload, frame.kind
    if kind in (GUEST_CLOSED, OWNER_LEFT):
        if payload:
            raise ValueError("this bus frame has no payload")
    elif kind == GUEST_DRAINED:
        if len(payload) != DRAINED_BYTES:
            raise ValueError("drained payload is a u64")
    elif kind == GUEST_OPENED:
        if len(payload) > MAX_ADDRESS_BYTES:
            raise ValueError("guest address over 64 bytes")
        _utf8(payload, "guest address")
    elif kind == OWNER_CLOSE:
        if not 2 <= len(payload) <= 2 + MAX_REASON_BYTES:
            raise ValueError("close payload is a code and at most 123 bytes of reason")
        (code,) = struct.unpack(">H", payload[:2])
        if not (code in SERVER_CLOSE_CODES or 3000 <= code <= 4999):
            raise ValueError(f"close code {code} not allowed")
        _utf8(payload[2:], "close reason")
    elif not 1 <= len(payload) <= max_payload:  # GUEST_DATA, OWNER_DATA
        raise ValueError(f"bus frame payload is 1 to {max_payload} bytes, not {len(payload)}")


def _utf8(data: bytes, what: str) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8") from None


# --- buses --------------------------------------------------------------------------

OnFrame = Callable[[bytes], None]  # raw frame bytes, decoded by the receiver
OnResult = Callable[[int], None]  # how many instances received a publish (0: gone)


class Bus(Protocol):
    """Carries frames to other instances; never blocks the caller."""

    def publish(self, to_iid: bytes, data: bytes, on_result: OnResult | None = None) -> bool:
        """Queue ``data`` for instance ``to_iid``; False (nothing queued) when the
        queue is full. ``on_result`` later gets the number of receivers."""
        ...

    async def async_start(self, on_frame: OnFrame, on_reconnect: Callable[[], None]) -> None:
        """Subscribe to this instance's channel; ``on_reconnect`` after every
        re-subscription (the broker may have lost its state meanwhile)."""
        ...

    async def async_stop(self) -> None: ...


class LocalBus:
    """Instances in one process: a shared dict of receivers (``hub``)."""

    def __init__(self, iid: bytes, hub: dict[bytes, OnFrame] | None = None) -> None:
        self._iid = iid
        self._hub: dict[bytes, OnFrame] = {} if hub is None else hub

    def publish(self, to_iid: bytes, data: bytes, on_result: OnResult | None = None) -> bool:
        receiver = self._hub.get(to_iid)
        loop = asyncio.get_running_loop()
        if receiver is not None:
            loop.call_soon(receiver, data)  # as a broker would: never re-entrant
        if on_result is not None:
            loop.call_soon(on_result, 0 if receiver is None else 1)
        return True

    async def async_start(self, on_frame: OnFrame, on_reconnect: Callable[[], None]) -> None:
        self._hub[self._iid] = on_frame

    async def async_stop(self) -> None:
        self._hub.pop(self._iid, None)


class RedisBus:
    """Pub/sub over Redis: one publisher task on ``publisher`` (a single-connection
    client), one subscriber loop on ``subscriber``."""

    def __init__(self, iid: bytes, publisher: Redis, subscriber: Redis) -> None:
        self._iid = iid
        self._pub = publisher
        self._sub = subscriber
        self._queue: deque[tuple[bytes, bytes, OnResult | None]] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_error_log = 0.0

    def publish(self, to_iid: bytes, data: bytes, on_result: OnResult | None = None) -> bool:
        if len(self._queue) >= QUEUE_FRAMES or self._queued_bytes + len(data) > QUEUE_BYTES:
            return False
        self._queue.append((to_iid, data, on_result))
        self._queued_bytes += len(data)
        self._wake.set()
        return True

    async def async_start(self, on_frame: OnFrame, on_reconnect: Callable[[], None]) -> None:
        pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL_PREFIX + self._iid.hex())
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._publish_forever()),
            loop.create_task(self._receive_forever(pubsub, on_frame, on_reconnect)),
        ]

    async def async_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _publish_forever(self) -> None:
        from redis.exceptions import RedisError

        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            pipe = self._pub.pipeline(transaction=False)
            for to_iid, data, _ in batch:
                pipe.publish(CHANNEL_PREFIX + to_iid.hex(), data)
            try:
                counts = await pipe.execute()
            except (RedisError, OSError) as exc:
                self._log_error("publish", exc)
                counts = [0] * len(batch)  # lost: the receivers' sweeps notice
            for (_, _, on_result), count in zip(batch, counts, strict=True):
                if on_result is not None:
                    try:
                        on_result(int(count))
                    except Exception:
                        logger.exception("bus publish callback failed")

    async def _receive_forever(
        self, pubsub: object, on_frame: OnFrame, on_reconnect: Callable[[], None]
    ) -> None:
        from redis.asyncio.client import PubSub
        from redis.exceptions import RedisError

        assert isinstance(pubsub, PubSub)
        try:
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except (RedisError, OSError) as exc:
                    # redis-py reconnects and re-subscribes on the next call.
                    self._log_error("subscribe", exc)
                    await asyncio.sleep(RESUBSCRIBE_DELAY_S)
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.ping()
                        on_reconnect()
                    continue
                if message is None or message.get("type") != "message":
                    continue
                data = message.get("data")
                if isinstance(data, bytes):
                    on_frame(data)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _log_error(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 60.0:
            self._last_error_log = now
            logger.warning("redis %s failed: %s", what, exc)
