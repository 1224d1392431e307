"""The two ends of a guest↔owner pair that live on different instances.

On the owner's instance a guest of another instance is a :class:`BusGuest` (the
:class:`~signaling.app.GuestConnection` the owner socket relays to); on the guest's
instance its owner is a :class:`BusOwner` (the :class:`~signaling.app.OwnerHooks` the
guest loop calls). Both only turn calls into bus frames (:mod:`signaling.bus`).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from typing import Final, Protocol

from signaling import bus as frames
from signaling.bus import Bus, Frame, encode_frame

logger = logging.getLogger(__name__)

REASON_OWNER_GONE: Final = "the owner's server is gone: reconnect"
REASON_BUSY: Final = "server busy: try again later"


class LocalGuest(Protocol):
    """What :class:`BusOwner` needs of the guest socket it serves."""

    raw_id: bytes
    remote: str

    def fail(self, code: int, reason: str, *, notice: str | None = None) -> None: ...


class BusGuest:
    """A guest connected to instance ``from_iid``, seen from its owner's instance."""

    __slots__ = (
        "_bus",
        "_max_msg",
        "_my_iid",
        "_on_gone",
        "closed",
        "from_iid",
        "id",
        "raw_id",
        "remote",
        "room_id",
    )

    def __init__(
        self,
        bus: Bus,
        *,
        my_iid: bytes,
        from_iid: bytes,
        room_id: str,
        raw_id: bytes,
        remote: str,
        max_msg: int,
        on_gone: Callable[[BusGuest], None],
    ) -> None:
        self._bus = bus
        self._my_iid = my_iid
        self.from_iid = from_iid
        self.room_id = room_id
        self.raw_id = raw_id
        self.id = raw_id.hex()
        self.remote = remote
        self._max_msg = max_msg
        self._on_gone = on_gone
        self.closed = False

    def send(self, data: bytes) -> None:
        if not data or len(data) > self._max_msg:
            raise ValueError(f"a guest message is 1 to {self._max_msg} bytes, not {len(data)}")
        if not self.closed:
            self._publish(frames.OWNER_DATA, bytes(data))

    async def async_wait_queue_below(self, limit: int) -> None:
        return None  # the bus queue is shared and bounded; a full one closes the guest

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            self._publish(frames.OWNER_CLOSE, frames.close_payload(code, reason))

    def fail(self, code: int, reason: str, *, notice: str | None = None) -> None:
        self.close(code, reason)

    def owner_left(self) -> None:
        if not self.closed:
            self.closed = True
            self._publish(frames.OWNER_LEFT, b"")

    def gone(self) -> None:
        """Its instance is gone: tell the owner (once)."""
        if not self.closed:
            self.closed = True
        self._on_gone(self)

    def _publish(self, kind: int, payload: bytes) -> None:
        frame = Frame(kind, self.room_id, self.raw_id, self._my_iid, payload)
        data = encode_frame(frame, max_payload=self._max_msg)
        if not self._bus.publish(self.from_iid, data, self._result):
            logger.info("bus queue full: dropping guest %s", self.id)
            self.gone()

    def _result(self, receivers: int) -> None:
        if receivers == 0:
            self.gone()

    def __repr__(self) -> str:
        return f"<bus guest {self.id} room {self.room_id[:4]}… via {self.from_iid.hex()}>"


class BusOwner:
    """The owner of ``guest``'s room, connected to instance ``owner_iid``: the guest
    loop's hooks for that one guest (the guest passed back to them is ``guest``)."""

    __slots__ = ("_bus", "_guest", "_max_msg", "_my_iid", "_opened", "conn", "owner_iid")

    def __init__(
        self,
        bus: Bus,
        guest: LocalGuest,
        *,
        my_iid: bytes,
        owner_iid: bytes,
        conn: str,
        max_msg: int,
    ) -> None:
        self._bus = bus
        self._guest = guest
        self._my_iid = my_iid
        self.owner_iid = owner_iid
        self.conn = conn
        self._max_msg = max_msg
        self._opened = False

    def on_guest_message(self, room_id: str, guest: object, data: bytes) -> None:
        if not self._opened:
            self._opened = True
            address = self._guest.remote.encode("utf-8")[: frames.MAX_ADDRESS_BYTES]
            self._send(room_id, frames.GUEST_OPENED, address.decode("utf-8", "ignore").encode())
        self._send(room_id, frames.GUEST_DATA, data)

    def on_guest_closed(self, room_id: str, guest: object) -> None:
        frame = Frame(frames.GUEST_CLOSED, room_id, self._guest.raw_id, self._my_iid)
        self._bus.publish(self.owner_iid, encode_frame(frame, max_payload=self._max_msg))

    def on_guest_drained(self, room_id: str, total: int) -> None:
        """``total`` bytes of FILE messages reached the guest's socket (flow control)."""
        self._send(room_id, frames.GUEST_DRAINED, struct.pack(">Q", total))

    def _send(self, room_id: str, kind: int, payload: bytes) -> None:
        guest = self._guest
        frame = Frame(kind, room_id, guest.raw_id, self._my_iid, payload)
        data = encode_frame(frame, max_payload=self._max_msg)

        def result(receivers: int) -> None:
            if receivers == 0:  # the owner's instance is gone: faster than the lease
                guest.fail(1012, REASON_OWNER_GONE, notice=_error_notice(REASON_OWNER_GONE))

        if not self._bus.publish(self.owner_iid, data, result):
            guest.fail(1013, REASON_BUSY, notice=_error_notice(REASON_BUSY))


def _error_notice(reason: str) -> str:
    return json.dumps({"type": "error", "message": reason})
