"""One chat session between two endpoints, sans I/O.

Handshake: the initiator seals an OFFER (its SDP and an ephemeral ``crypto_kx``
key share) in an authenticated envelope; the responder answers with an ANSWER
carrying its own SDP and key share. Each side then derives rx/tx keys and, once
the data channel is up, sends its secret-stream header as the first message.
After both headers are in, chat frames flow.

A password link (``password=``) adds CPace: the OFFER and ANSWER also carry a
share, and both sides mix the resulting ISK into their rx/tx keys, so a wrong
password gives keys that open nothing. Each side then reports ``SessionOpened``
only once the peer's first sealed frame authenticated: the initiator sends a
ping right after its header (:meth:`Session.confirmation`); the responder's
pong confirms back.

The adapter owns the I/O: it feeds envelopes and channel data in with the
current time and sends what comes back. See docs/protocol.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import Enum, auto
from typing import Protocol

from p2pchat.crypto.cpace import CpaceStart, PakeError, cpace_isk, cpace_start, mix_session_keys
from p2pchat.crypto.envelope import SESSION_ID_BYTES, Direction, EnvelopeError, OpenedEnvelope
from p2pchat.crypto.stream import (
    HEADER_BYTES,
    KxKeyPair,
    SessionKeys,
    StreamError,
    StreamReceiver,
    StreamSender,
)
from p2pchat.protocol.batch import CAPABILITY, BatchError, decode_batch, encode_batch
from p2pchat.protocol.errors import LocalProtocolError, RemoteProtocolError
from p2pchat.protocol.events import (
    AnswerReceived,
    Event,
    FileFrameReceived,
    GroupFrameReceived,
    MessageReceived,
    OfferReceived,
    PingReceived,
    PongReceived,
    ReceiptReceived,
    SessionClosed,
    SessionOpened,
)
from p2pchat.protocol.frames import (
    FILE_FRAME_TYPES,
    GROUP_FRAME_TYPES,
    MAX_BODY_BYTES,
    ChatFrame,
    FrameError,
    FrameType,
    decode_frame,
    new_message_id,
)
from p2pchat.protocol.handshake import (
    EnvelopeKind,
    HandshakeBody,
    HandshakeError,
    decode_handshake,
)

GROUPS_CAPABILITY = ("groups", "1")  # the handshake info entry: frames 6 and 7 understood
FILES_CAPABILITY = ("files", "1")  # frames 8 and 9 understood (and the files channel)


class Envelopes(Protocol):
    """An envelope scheme: :class:`~p2pchat.crypto.envelope.LanEnvelopes` or ``LinkEnvelopes``."""

    def seal(
        self, kind: int, direction: Direction, session_id: bytes, body: bytes, now_ms: int
    ) -> bytes: ...

    def open(self, data: bytes, expected: Direction, now_ms: int) -> OpenedEnvelope: ...


class Role(Enum):
    INITIATOR = auto()
    RESPONDER = auto()

    @property
    def direction(self) -> Direction:
        return Direction.INITIATOR if self is Role.INITIATOR else Direction.RESPONDER


class SessionState(Enum):
    NEW = auto()
    OFFER_SENT = auto()  # initiator, waiting for the answer
    OFFER_RECEIVED = auto()  # responder, waiting for its own SDP to answer with
    KEYED = auto()  # keys derived; stream headers not both exchanged yet
    OPEN = auto()
    CLOSED = auto()


class _Input(Enum):
    SEND_OFFER = auto()
    RECEIVE_OFFER = auto()
    SEND_ANSWER = auto()
    RECEIVE_ANSWER = auto()
    STREAMS_READY = auto()


# Every legal transition, in one place (as in h11's _state.py).
_TRANSITIONS: dict[tuple[Role, SessionState, _Input], SessionState] = {
    (Role.INITIATOR, SessionState.NEW, _Input.SEND_OFFER): SessionState.OFFER_SENT,
    (Role.INITIATOR, SessionState.OFFER_SENT, _Input.RECEIVE_ANSWER): SessionState.KEYED,
    (Role.RESPONDER, SessionState.NEW, _Input.RECEIVE_OFFER): SessionState.OFFER_RECEIVED,
    (Role.RESPONDER, SessionState.OFFER_RECEIVED, _Input.SEND_ANSWER): SessionState.KEYED,
    (Role.INITIATOR, SessionState.KEYED, _Input.STREAMS_READY): SessionState.OPEN,
    (Role.RESPONDER, SessionState.KEYED, _Input.STREAMS_READY): SessionState.OPEN,
}


class Session:
    def __init__(
        self,
        role: Role,
        envelopes: Envelopes,
        *,
        session_id: bytes | None = None,
        kx: KxKeyPair | None = None,
        batch: bool = True,
        groups: bool = False,
        files: bool = False,
        password: bytes | None = None,
        link_room: bytes = b"",
        pake_scalar: bytes | None = None,
    ) -> None:
        self.role = role
        self.state = SessionState.NEW
        self.session_id = session_id or os.urandom(SESSION_ID_BYTES)
        self.peer_info: Mapping[str, str] = {}
        self.peer_kx_public: bytes | None = None  # the peer's ephemeral key share
        self._envelopes = envelopes
        self._kx = kx or KxKeyPair()
        self._keys: SessionKeys | None = None
        self._pending_keys: SessionKeys | None = None  # responder: keys before the answer
        self._sender: StreamSender | None = None
        self._receiver: StreamReceiver | None = None
        self._batch = batch  # we announce batches (False: act as a peer from before them)
        # We announce group frames (types 6, 7). Off by default: only a node that
        # handles GroupFrameReceived may announce it (never the guest host: the page
        # has no group frames); without it we refuse them as a peer from before groups.
        self._groups = groups
        # We announce file frames (types 8, 9): as groups, only a node that handles
        # FileFrameReceived may; without it we refuse them as a peer from before files.
        self._files = files
        # Password links: the normalised password and the raw room id (CPace's CI);
        # ``pake_scalar`` only for test vectors.
        self._password = password
        self._link_room = link_room
        self._pake_scalar = pake_scalar
        self._pake: CpaceStart | None = None
        self.password_missing = False  # responder: a password link's offer came without a share
        self._confirmed = password is None

    @property
    def awaiting_confirmation(self) -> bool:
        """A password link whose peer's first sealed frame has not authenticated yet."""
        return not self._confirmed

    @property
    def batching(self) -> bool:
        """Both ends announced batches: every channel message after the header is one."""
        key, value = CAPABILITY
        return self._batch and self.peer_info.get(key) == value

    @property
    def groups(self) -> bool:
        """Both ends announced group frames: only then may GROUP_* frames be sent."""
        key, value = GROUPS_CAPABILITY
        return self._groups and self.peer_info.get(key) == value

    @property
    def files(self) -> bool:
        """Both ends announced file frames: only then may FILE_* frames (and chunks) flow."""
        key, value = FILES_CAPABILITY
        return self._files and self.peer_info.get(key) == value

    # -- handshake -----------------------------------------------------------

    def make_offer(self, sdp: str, now_ms: int, info: Mapping[str, str] | None = None) -> bytes:
        self._advance(_Input.SEND_OFFER)
        if self._password is not None:
            self._pake = self._start_pake()
        return self._seal(EnvelopeKind.OFFER, sdp, now_ms, info)

    def receive_offer(self, data: bytes, now_ms: int) -> OfferReceived:
        if self.role is not Role.RESPONDER or self.state is not SessionState.NEW:
            raise LocalProtocolError(f"cannot receive an offer as {self._describe()}")
        return self.receive_opened_offer(self._open_envelope(data, now_ms))

    def receive_opened_offer(self, opened: OpenedEnvelope) -> OfferReceived:
        """Take an offer whose envelope the caller already opened (to learn its kind)."""
        if self.role is not Role.RESPONDER or self.state is not SessionState.NEW:
            raise LocalProtocolError(f"cannot receive an offer as {self._describe()}")
        body = self._handshake_body(opened, EnvelopeKind.OFFER)
        try:  # derive now, so an unusable key share fails here, not in make_answer
            keys = self._kx.server_keys(body.kx_public)
        except StreamError as exc:
            raise RemoteProtocolError(str(exc), code="bad-handshake") from exc
        if body.pake is not None and self._password is None:
            raise HandshakeError("a password share on a link without a password")
        self.session_id = opened.session_id
        if self._password is not None and body.pake is None:
            self.password_missing = True  # a probe may do this; an answer may not
        elif body.pake is not None:
            self._pake = self._start_pake()
            isk = cpace_isk(self._pake, body.pake, sid=self.session_id, initiator=False)
            keys = mix_session_keys(keys, isk)
        self._advance(_Input.RECEIVE_OFFER)
        self._pending_keys = keys
        self.peer_kx_public = body.kx_public
        self.peer_info = body.info
        return OfferReceived(opened.session_id, body.sdp, body.info)

    def make_answer(self, sdp: str, now_ms: int, info: Mapping[str, str] | None = None) -> bytes:
        if self.password_missing:
            raise LocalProtocolError("this link needs a password: the offer had no share")
        self._advance(_Input.SEND_ANSWER)
        self._keys = self._pending_keys
        return self._seal(EnvelopeKind.ANSWER, sdp, now_ms, info)

    def receive_answer(self, data: bytes, now_ms: int) -> AnswerReceived:
        if self.role is not Role.INITIATOR or self.state is not SessionState.OFFER_SENT:
            raise LocalProtocolError(f"cannot receive an answer as {self._describe()}")
        opened = self._open_envelope(data, now_ms)
        body = self._handshake_body(opened, EnvelopeKind.ANSWER)
        if opened.session_id != self.session_id:
            raise RemoteProtocolError("answer belongs to another session", code="wrong-session")
        try:
            keys = self._kx.client_keys(body.kx_public)
        except StreamError as exc:
            raise RemoteProtocolError(str(exc), code="bad-handshake") from exc
        if self._pake is None:
            if body.pake is not None:
                raise HandshakeError("a password share on a link without a password")
        elif body.pake is None:
            raise PakeError("the answer has no password share")
        else:
            isk = cpace_isk(self._pake, body.pake, sid=self.session_id, initiator=True)
            keys = mix_session_keys(keys, isk)
        self._keys = keys
        self.peer_kx_public = body.kx_public
        self._advance(_Input.RECEIVE_ANSWER)
        self.peer_info = body.info
        return AnswerReceived(body.sdp, body.info)

    # -- the channel ---------------------------------------------------------

    def stream_header(self) -> bytes:
        """The first message to send on the channel once it is open (idempotent)."""
        if self._sender is not None:
            return self._sender.header
        if self.state is not SessionState.KEYED or self._keys is None:
            raise LocalProtocolError(f"no stream to start as {self._describe()}")
        if self._sender is None:
            self._sender = StreamSender(self._keys.tx)
            # If the peer's header came first, this completes the session
            # (check ``state``); otherwise ``receive_data`` reports SessionOpened.
            self._maybe_open()
        return self._sender.header

    def receive_data(self, data: bytes, now_ms: int) -> list[Event]:
        """Feed one channel message; returns what it means."""
        if self.state is SessionState.CLOSED:
            raise RemoteProtocolError("data after the session closed", code="closed")
        if self._keys is None:
            raise LocalProtocolError(f"channel data before the handshake as {self._describe()}")
        if self._receiver is None:
            return self._receive_header(data)
        if not self.batching:
            return self._receive_sealed(data, now_ms, last=True)
        items = decode_batch(data)
        events: list[Event] = []
        for index, item in enumerate(items):
            events += self._receive_sealed(item, now_ms, last=index == len(items) - 1)
        return events

    def send_text(
        self, text: str, now_ms: int, *, message_id: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Encrypt a text message; returns (message_id, data for the channel)."""
        body = text.encode("utf-8")
        if len(body) > MAX_BODY_BYTES:
            raise LocalProtocolError(
                f"message is {len(body)} bytes; the limit is {MAX_BODY_BYTES} bytes"
            )
        message_id = message_id or new_message_id()
        return message_id, self._send(ChatFrame(FrameType.TEXT, message_id, now_ms, body))

    def send_group_message(self, payload: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        """One fan-out copy of an encoded GroupMessage (``message_id``: its copy id)."""
        return self._send_group(FrameType.GROUP_MESSAGE, payload, now_ms, message_id)

    def send_group_list(self, payload: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        """An encoded MemberList for the peer (``message_id``: its copy id)."""
        return self._send_group(FrameType.GROUP_LIST, payload, now_ms, message_id)

    def send_file_offer(self, payload: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        """An encoded FileOffer (``message_id``: the transfer id, also the outbox id)."""
        return self._send_file(FrameType.FILE_OFFER, payload, now_ms, message_id)

    def send_file_control(self, payload: bytes, now_ms: int) -> bytes:
        """An encoded FileControl, under a fresh id: never queued, never receipted."""
        return self._send_file(FrameType.FILE_CONTROL, payload, now_ms, new_message_id())

    def send_receipt(self, message_id: bytes, now_ms: int) -> bytes:
        return self._send(ChatFrame(FrameType.RECEIPT, message_id, now_ms))

    def confirmation(self, now_ms: int) -> bytes | None:
        """Initiator on a password link: a ping to send right after the stream header,
        so the responder learns at once whether our keys (our password) match. One
        channel message (a batch of one when both announced batches)."""
        if self.role is not Role.INITIATOR or self._pake is None:
            return None
        ping = self.send_ping(now_ms)[1]
        return encode_batch([ping]) if self.batching else ping

    def send_ping(self, now_ms: int) -> tuple[bytes, bytes]:
        ping_id = new_message_id()
        return ping_id, self._send(ChatFrame(FrameType.PING, ping_id, now_ms))

    def pong(self, ping_id: bytes, now_ms: int) -> bytes:
        return self._send(ChatFrame(FrameType.PONG, ping_id, now_ms))

    def close(self, now_ms: int) -> bytes:
        """The last frame of our stream; the session is closed after it."""
        data = self._send(ChatFrame(FrameType.CLOSE, bytes(16), now_ms), final=True)
        self.state = SessionState.CLOSED
        return data

    # -- private -------------------------------------------------------------

    def _receive_header(self, data: bytes) -> list[Event]:
        assert self._keys is not None
        if len(data) != HEADER_BYTES:
            raise RemoteProtocolError(
                "first channel message is not a stream header", code="bad-stream"
            )
        self._receiver = StreamReceiver(self._keys.rx, data)
        return self._maybe_open()

    def _receive_sealed(self, data: bytes, now_ms: int, *, last: bool) -> list[Event]:
        assert self._receiver is not None
        try:
            plaintext, final = self._receiver.open(data)
        except StreamError as exc:
            raise RemoteProtocolError(str(exc), code="bad-stream") from exc
        frame = decode_frame(plaintext)
        if frame.type in GROUP_FRAME_TYPES and not self._groups:
            raise FrameError(f"unknown frame type {int(frame.type)}")  # as a peer before groups
        if frame.type in FILE_FRAME_TYPES and not self._files:
            raise FrameError(f"unknown frame type {int(frame.type)}")  # as a peer before files
        if final != (frame.type is FrameType.CLOSE):
            raise FrameError("only a close frame may end the stream, and it must end it")
        opened = self._confirm()
        if final:
            if not last:
                raise BatchError("messages after the close frame in a batch")
            self.state = SessionState.CLOSED
            return [*opened, SessionClosed()]
        return [*opened, self._frame_event(frame, now_ms)]

    def _confirm(self) -> list[Event]:
        """A sealed frame authenticated: on a password link, the password matched."""
        if self._confirmed:
            return []
        self._confirmed = True
        return self._maybe_open()

    def _send_group(self, kind: FrameType, payload: bytes, now_ms: int, message_id: bytes) -> bytes:
        if not self.groups:
            raise LocalProtocolError("the peer did not announce group frames (groups=1)")
        if not 0 < len(payload) <= MAX_BODY_BYTES:
            raise LocalProtocolError(f"group payload must be 1 to {MAX_BODY_BYTES} bytes")
        return self._send(ChatFrame(kind, message_id, now_ms, payload))

    def _send_file(self, kind: FrameType, payload: bytes, now_ms: int, message_id: bytes) -> bytes:
        if not self.files:
            raise LocalProtocolError("the peer did not announce file frames (files=1)")
        if not 0 < len(payload) <= MAX_BODY_BYTES:
            raise LocalProtocolError(f"file payload must be 1 to {MAX_BODY_BYTES} bytes")
        return self._send(ChatFrame(kind, message_id, now_ms, payload))

    def _maybe_open(self) -> list[Event]:
        if self._sender is not None and self._receiver is not None and self._confirmed:
            self._advance(_Input.STREAMS_READY)
            return [SessionOpened()]
        return []

    def _send(self, frame: ChatFrame, *, final: bool = False) -> bytes:
        # Sending may start as soon as our own header is out: the channel is
        # ordered, so the peer reads our header before our first frame.
        if self._sender is None or self.state not in (SessionState.KEYED, SessionState.OPEN):
            raise LocalProtocolError(f"cannot send as {self._describe()}")
        return self._sender.seal(frame.encode(), final=final)

    def _frame_event(self, frame: ChatFrame, now_ms: int) -> Event:
        if frame.type is FrameType.TEXT:
            return MessageReceived(frame.message_id, frame.timestamp_ms, frame.text)
        if frame.type in GROUP_FRAME_TYPES:
            return GroupFrameReceived(frame.type, frame.message_id, frame.timestamp_ms, frame.body)
        if frame.type in FILE_FRAME_TYPES:
            return FileFrameReceived(frame.type, frame.message_id, frame.body)
        if frame.type is FrameType.RECEIPT:
            return ReceiptReceived(frame.message_id)
        if frame.type is FrameType.PING:
            return PingReceived(frame.message_id)
        if frame.type is FrameType.PONG:
            return PongReceived(frame.message_id, frame.timestamp_ms)
        raise AssertionError(f"unhandled frame type {frame.type}")  # CLOSE is handled above

    def _seal(
        self, kind: EnvelopeKind, sdp: str, now_ms: int, info: Mapping[str, str] | None
    ) -> bytes:
        info = dict(info or {})
        if self._batch:
            info[CAPABILITY[0]] = CAPABILITY[1]
        if self._groups:
            info[GROUPS_CAPABILITY[0]] = GROUPS_CAPABILITY[1]
        if self._files:
            info[FILES_CAPABILITY[0]] = FILES_CAPABILITY[1]
        pake = self._pake.share if self._pake is not None else None
        body = HandshakeBody(sdp=sdp, kx_public=self._kx.public, info=info, pake=pake)
        return self._envelopes.seal(
            kind, self.role.direction, self.session_id, body.encode(), now_ms
        )

    def _start_pake(self) -> CpaceStart:
        assert self._password is not None
        return cpace_start(
            self._password, self._link_room, self.session_id, scalar=self._pake_scalar
        )

    def _open_envelope(self, data: bytes, now_ms: int) -> OpenedEnvelope:
        try:
            return self._envelopes.open(data, self.role.direction.opposite, now_ms)
        except EnvelopeError as exc:
            raise RemoteProtocolError(str(exc), code=exc.code) from exc

    def _handshake_body(self, opened: OpenedEnvelope, kind: EnvelopeKind) -> HandshakeBody:
        if opened.kind != kind:
            raise RemoteProtocolError(
                f"expected a {kind.name.lower()} envelope, got kind {opened.kind}",
                code="wrong-kind",
            )
        if opened.direction is self.role.direction:
            raise RemoteProtocolError("envelope goes the wrong way (reflected)", code="reflected")
        return decode_handshake(opened.body)

    def _advance(self, event: _Input) -> None:
        try:
            self.state = _TRANSITIONS[(self.role, self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {event.name.lower().replace('_', ' ')} as {self._describe()}"
            ) from None

    def _describe(self) -> str:
        return f"{self.role.name.lower()} in state {self.state.name}"
