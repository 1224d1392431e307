"""Bounds on what a peer can make aiortc's SCTP receiver hold.

aiortc's ``RTCSctpTransport`` reassembles a message of any size on any stream id before
anyone can check it: it buffers fragments for streams that have no data channel, keeps
them forever, and accepts data far past the receive window it advertises. One peer
streaming a message that never ends grows our memory without limit. This module puts
the bounds where the data arrives (SCTP DATA chunks) and aborts the association, with
an SCTP ABORT that carries the reason, when a peer passes one:

* a message still unfinished after ``max_message_size`` bytes on one stream, or split
  into more than ``MAX_FRAGMENTS`` pieces;
* data on a stream that has no data channel (the DCEP OPEN that creates a channel on a
  new stream is let through, and bounded like any message);
* unfinished messages on more than ``MAX_PENDING_STREAMS`` streams at once;
* a peer that goes on sending past our receive window: once the window is full (the
  bytes aiortc advertises, or ``MAX_OUT_OF_ORDER`` chunks held past a gap), new chunks
  are dropped unread, as RFC 9260 section 6.2 says, and a peer that makes us drop
  ``4 x MAX_OUT_OF_ORDER`` chunks in a row is cut off;
* malformed input aiortc would raise on (an empty DATA chunk, a truncated chunk, a
  second OPEN for an open stream, text that is not UTF-8).

Written against **aiortc 1.16.0** (``aiortc/rtcsctptransport.py``). It overrides
``_handle_data``, ``_receive_data_chunk``, ``_receive`` and
``_receive_forward_tsn_chunk`` and reads the receiver's state (``_inbound_streams``,
``InboundStream.reassembly``/``sequence_number``, ``_last_received_tsn``,
``_sack_misordered``, ``_advertised_rwnd``, ``_data_channels``). Importing this module
checks those names exist (``AiortcInternalsError`` otherwise), and
tests/integration/test_sctp_bounds.py pins the source of the aiortc code they come
from, so an aiortc upgrade that changes it fails loudly instead of silently unbounding.
docs/upstream-aiortc-sctp.md describes the fix as it could be offered to aiortc.

Cost on the chat path: one extra coroutine frame per packet, per DATA chunk and per
message, each with a dict lookup and a few comparisons; the walk over held chunks runs
only while a message is being reassembled (at most ``MAX_FRAGMENTS`` steps).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import struct
from collections.abc import Callable
from typing import Final, cast

import aiortc
from aiortc.rtcsctptransport import (
    SCTP_DATA_UNORDERED,
    AbortChunk,
    DataChunk,
    ForwardTsnChunk,
    InboundStream,
    RTCSctpTransport,
    tsn_plus_one,
)
from aiortc.utils import uint32_gte

from p2pchat.errors import UserError
from p2pchat.transport.errors import LocalTransportError

__all__ = [
    "AIORTC_VERSION_WRITTEN_FOR",
    "MAX_FRAGMENTS",
    "MAX_OUT_OF_ORDER",
    "MAX_PENDING_STREAMS",
    "AiortcInternalsError",
    "BoundedSctpTransport",
    "bound_sctp_transport",
]

logger = logging.getLogger(__name__)

AIORTC_VERSION_WRITTEN_FOR: Final = "1.16.0"

#: Pieces one message may arrive in. Real senders (aiortc, usrsctp, dcsctp) cut at the
#: path MTU, ~1,150 bytes, so a 65 KiB message is ~60 pieces; tiny pieces cost us per
#: chunk, and aiortc rescans a message's pieces on each new one.
MAX_FRAGMENTS: Final = 256

#: Chunks accepted past a gap in the TSN sequence; past it, new ones are dropped as if
#: the window were full. aiortc re-sorts and re-filters these TSNs on every chunk and
#: every SACK, so the count costs CPU as well as memory; a full 1 MiB window is ~900
#: MTU-sized chunks.
MAX_OUT_OF_ORDER: Final = 1024

#: Streams with an unfinished message at once (a link carries two data channels: chat and
#: files, and a DCEP OPEN may be in flight).
MAX_PENDING_STREAMS: Final = 16

#: Chunks dropped in a row for want of room before the peer is judged to ignore our
#: window. A peer that keeps to it sends one probe at a time while it is full; even
#: aiortc's sender, which ignores it, stops at its congestion window (dropped chunks
#: stay in flight) until a retransmission timeout.
_DROPS_ALLOWED: Final = 4 * MAX_OUT_OF_ORDER

_WEBRTC_DCEP: Final = 50
_DATA_CHANNEL_OPEN: Final = 3
_DCEP_OPEN_HEADER: Final = 12
#: RFC 9260 section 3.3.10: error causes an ABORT can carry.
_CAUSE_NO_USER_DATA: Final = 9
_CAUSE_PROTOCOL_VIOLATION: Final = 13
_MAX_CAUSE_TEXT: Final = 200


class AiortcInternalsError(LocalTransportError, UserError):
    """The installed aiortc lacks an internal this module relies on (an install problem)."""


class BoundedSctpTransport(RTCSctpTransport):
    """An ``RTCSctpTransport`` whose receive path enforces the bounds in the module doc.

    aiortc builds the transport inside ``RTCPeerConnection``; ``bound_sctp_transport``
    turns that instance into this class before the association starts.
    """

    _bounds_max_message: int
    _bounds_window: int
    _bounds_on_violation: Callable[[str], None]
    _bounds_violation: str | None
    _bounds_dropped: int
    _bounds_pending: set[int]

    @property
    def bounds_violation(self) -> str | None:
        """Why the association was aborted for breaking a bound; ``None`` if it was not."""
        return self._bounds_violation

    # -- aiortc receive path, bounded ---------------------------------------------------

    async def _handle_data(self, data: bytes) -> None:
        if self._bounds_violation is not None:
            return
        try:
            await super()._handle_data(data)
        except struct.error:  # a chunk too short for its fixed fields (aiortc raises)
            await self._async_abort_for("the peer sent a malformed SCTP chunk")

    async def _receive_data_chunk(self, chunk: DataChunk) -> None:
        cumulative = self._last_received_tsn
        if self._bounds_violation is not None or cumulative is None:
            return  # aborted, or DATA before the association is set up (aiortc would raise)
        if not chunk.user_data:
            await self._async_abort_for(
                "the peer sent a DATA chunk with no data",
                (_CAUSE_NO_USER_DATA, struct.pack("!L", chunk.tsn)),
            )
            return
        stream_id = chunk.stream_id
        if stream_id not in self._data_channels and not self._is_duplicate(chunk, cumulative):
            reason = self._unopened_stream_reason(chunk)
            if reason is not None:
                await self._async_abort_for(reason)
                return
        window_full = self._advertised_rwnd <= 0
        if not window_full and len(self._sack_misordered) < MAX_OUT_OF_ORDER:
            self._bounds_dropped = 0
        elif chunk.tsn != tsn_plus_one(cumulative) and not self._is_duplicate(chunk, cumulative):
            # RFC 9260 section 6.2: out of room, drop what does not fill the first gap
            # (that one frees room); duplicates only go into the next SACK.
            self._bounds_dropped += 1
            # A SACK says the window is closed; when only the chunk count is at its
            # bound it would say nothing new and cost a walk over the held TSNs.
            self._sack_needed = self._sack_needed or window_full
            if self._bounds_dropped > _DROPS_ALLOWED:
                await self._async_abort_for(
                    f"the peer kept sending past our receive window "
                    f"({self._bounds_window} bytes, {MAX_OUT_OF_ORDER} chunks behind a gap)"
                )
            return
        await super()._receive_data_chunk(chunk)
        if self._bounds_violation is not None:
            return
        stream = self._inbound_streams.get(stream_id)
        if stream is not None and stream.reassembly:
            reason = self._held_reason(stream_id, stream)
            if reason is not None:
                await self._async_abort_for(reason)

    async def _receive(self, stream_id: int, pp_id: int, data: bytes) -> None:
        # Called once per reassembled message, on its way to the data channel.
        if self._bounds_violation is not None:
            return
        if pp_id == _WEBRTC_DCEP:
            reason = self._dcep_reason(stream_id, data)
        elif stream_id not in self._data_channels:
            reason = f"the peer sent data on stream {stream_id}, which has no data channel"
        else:
            reason = None
        if reason is not None:
            await self._async_abort_for(reason)
            return
        try:
            await super()._receive(stream_id, pp_id, data)
        except UnicodeDecodeError:  # aiortc decodes text messages strictly
            await self._async_abort_for("the peer sent a text message that is not UTF-8")

    async def _receive_forward_tsn_chunk(self, chunk: ForwardTsnChunk) -> None:
        if self._bounds_violation is not None:
            return
        for stream_id, _seq in chunk.streams:
            if stream_id not in self._data_channels:
                # aiortc would create reassembly state for every stream named.
                await self._async_abort_for(
                    f"the peer skipped data on stream {stream_id}, which has no data channel"
                )
                return
        await super()._receive_forward_tsn_chunk(chunk)

    # -- checks -------------------------------------------------------------------------

    def _is_duplicate(self, chunk: DataChunk, cumulative: int) -> bool:
        tsn = chunk.tsn
        return uint32_gte(cumulative, tsn) or tsn in self._sack_misordered

    def _unopened_stream_reason(self, chunk: DataChunk) -> str | None:
        """Data on a stream with no channel yet: only what may precede or be its OPEN."""
        if chunk.protocol == _WEBRTC_DCEP:
            return None  # a DCEP OPEN creates the channel; bounded like any message
        stream = self._inbound_streams.get(chunk.stream_id)
        next_seq = 0 if stream is None else stream.sequence_number
        # Ordered data numbered after the next message may be waiting for an OPEN that
        # is still on its way (RFC 8832 section 6: data follows the OPEN, ordered, until
        # the ACK); anything else can only be data for a stream nobody opened.
        if chunk.flags & SCTP_DATA_UNORDERED or chunk.stream_seq == next_seq:
            return f"the peer sent data on stream {chunk.stream_id}, which has no data channel"
        return None

    def _held_reason(self, stream_id: int, stream: InboundStream) -> str | None:
        # Chunks at or below the cumulative TSN are held only because the message they
        # start is unfinished (or misnumbered): for a sound peer that is one message.
        cumulative = self._last_received_tsn
        assert cumulative is not None  # checked on the way in
        size = 0
        for count, held in enumerate(stream.reassembly, 1):
            if not uint32_gte(cumulative, held.tsn):
                break
            size += len(held.user_data)
            if count > MAX_FRAGMENTS:
                return f"the peer sent a message in more than {MAX_FRAGMENTS} pieces on stream {stream_id}"
        if size > self._bounds_max_message:
            return (
                f"the peer sent an oversized message on stream {stream_id} "
                f"(over {self._bounds_max_message} bytes, unfinished)"
            )
        pending = self._bounds_pending
        pending.add(stream_id)
        if len(pending) > MAX_PENDING_STREAMS:
            pending.intersection_update(
                sid for sid, s in self._inbound_streams.items() if s.reassembly
            )
            if len(pending) > MAX_PENDING_STREAMS:
                return (
                    f"the peer left unfinished messages on more than {MAX_PENDING_STREAMS} streams"
                )
        return None

    def _dcep_reason(self, stream_id: int, data: bytes) -> str | None:
        """A DCEP message aiortc would choke on (it asserts) or that opens nothing sound."""
        opens = len(data) >= _DCEP_OPEN_HEADER and data[0] == _DATA_CHANNEL_OPEN
        if stream_id in self._data_channels:
            if opens:
                return f"the peer opened stream {stream_id} a second time"
            return None
        if not opens:
            return f"the peer sent a data channel message on stream {stream_id}, which has no data channel"
        label_length, protocol_length = struct.unpack_from("!HH", data, 8)
        try:
            data[_DCEP_OPEN_HEADER : _DCEP_OPEN_HEADER + label_length + protocol_length].decode()
        except UnicodeDecodeError:
            return f"the peer sent a malformed data channel OPEN on stream {stream_id}"
        return None

    # -- abort --------------------------------------------------------------------------

    async def _async_abort_for(self, reason: str, cause: tuple[int, bytes] | None = None) -> None:
        """Tell the owner, free what the peer made us hold, send ABORT, close."""
        if self._bounds_violation is not None:
            return
        self._bounds_violation = reason
        self._inbound_streams.clear()
        self._sack_misordered.clear()
        self._sack_duplicates.clear()
        self._sack_needed = False
        try:
            self._bounds_on_violation(reason)
        except Exception:
            logger.exception("on_violation callback raised")
        abort = AbortChunk()
        abort.params.append(cause or (_CAUSE_PROTOCOL_VIOLATION, reason.encode()[:_MAX_CAUSE_TEXT]))
        with contextlib.suppress(ConnectionError):  # DTLS already gone: nobody to tell
            await self._send_chunk(abort)
        self._set_state(self.State.CLOSED)


def bound_sctp_transport(
    sctp: RTCSctpTransport,
    *,
    max_message_size: int,
    on_violation: Callable[[str], None] | None = None,
) -> BoundedSctpTransport:
    """Bound the receive path of the SCTP transport aiortc made for a peer connection.

    Call it before the association starts (right after ``createDataChannel`` or after
    ``setRemoteDescription`` of an offer). ``on_violation(reason)`` runs once, in the
    event loop, when the peer breaks a bound; the association is then aborted. Raises
    ``AiortcInternalsError`` if the instance lacks the state this module reads.
    """
    if type(sctp) is not RTCSctpTransport:
        raise TypeError(f"expected aiortc's RTCSctpTransport, not {type(sctp).__name__}")
    if sctp.state != "new":
        raise ValueError("bound the SCTP transport before its association starts")
    missing = [name for name in _INSTANCE_STATE if not hasattr(sctp, name)]
    if missing:
        raise AiortcInternalsError(_internals_message(f"RTCSctpTransport lacks {missing}"))
    sctp.__class__ = BoundedSctpTransport
    bounded = cast(BoundedSctpTransport, sctp)
    bounded._bounds_max_message = max_message_size
    bounded._bounds_window = sctp._advertised_rwnd
    bounded._bounds_on_violation = on_violation or _log_violation
    bounded._bounds_violation = None
    bounded._bounds_dropped = 0
    bounded._bounds_pending = set()
    return bounded


def _log_violation(reason: str) -> None:
    logger.warning("aborting SCTP association: %s", reason)


# -- the aiortc internals relied on, checked at import -------------------------------------

#: Instance state read or written (set in ``RTCSctpTransport.__init__``).
_INSTANCE_STATE: Final = (
    "_advertised_rwnd",
    "_data_channels",
    "_inbound_streams",
    "_last_received_tsn",
    "_sack_duplicates",
    "_sack_misordered",
    "_sack_needed",
)

#: Methods overridden or called, with the parameters they must take.
_METHODS: Final = {
    "_handle_data": ["self", "data"],
    "_receive_data_chunk": ["self", "chunk"],
    "_receive": ["self", "stream_id", "pp_id", "data"],
    "_receive_forward_tsn_chunk": ["self", "chunk"],
    "_send_chunk": ["self", "chunk"],
    "_set_state": ["self", "state"],
}


def _internals_message(detail: str) -> str:
    return (
        f"aiortc {aiortc.__version__} lacks what p2pchat/transport/sctp_bounds.py relies on "
        f"({detail}); install aiortc {AIORTC_VERSION_WRITTEN_FOR} "
        f"(pip install 'aiortc=={AIORTC_VERSION_WRITTEN_FOR}'), or re-check that module "
        "against the new aiortc/rtcsctptransport.py"
    )


def _check_aiortc_internals() -> None:
    problems = []
    for name, params in _METHODS.items():
        method = getattr(RTCSctpTransport, name, None)
        if method is None:
            problems.append(f"RTCSctpTransport.{name} is gone")
        elif name != "_set_state" and not inspect.iscoroutinefunction(method):
            problems.append(f"RTCSctpTransport.{name} is not a coroutine function")
        elif list(inspect.signature(method).parameters)[: len(params)] != params:
            problems.append(f"RTCSctpTransport.{name} does not take {params}")
    stream = InboundStream()
    if not isinstance(getattr(stream, "reassembly", None), list):
        problems.append("InboundStream.reassembly is not a list")
    if not isinstance(getattr(stream, "sequence_number", None), int):
        problems.append("InboundStream.sequence_number is not an int")
    if not hasattr(RTCSctpTransport, "State") or not hasattr(RTCSctpTransport.State, "CLOSED"):
        problems.append("RTCSctpTransport.State.CLOSED is gone")
    if SCTP_DATA_UNORDERED != 0x04:
        problems.append("SCTP_DATA_UNORDERED is not 0x04")
    if problems:
        raise AiortcInternalsError(_internals_message("; ".join(problems)))


_check_aiortc_internals()
