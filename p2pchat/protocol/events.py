"""What a session tells its owner. Frozen dataclasses under one base (as in wsproto)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from p2pchat.protocol.frames import FrameType


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class OfferReceived(Event):
    session_id: bytes
    sdp: str
    info: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerReceived(Event):
    sdp: str
    info: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionOpened(Event):
    """Both stream headers are exchanged: chat frames can flow both ways."""


@dataclass(frozen=True)
class MessageReceived(Event):
    message_id: bytes
    timestamp_ms: int
    text: str


@dataclass(frozen=True)
class GroupFrameReceived(Event):
    """A GROUP_MESSAGE or GROUP_LIST frame: ``payload`` is the signed group object,
    not checked here (protocol/group_state.py does); ``message_id`` is the copy id."""

    kind: FrameType
    message_id: bytes
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True)
class FileFrameReceived(Event):
    """A FILE_OFFER or FILE_CONTROL frame: ``payload`` is the encoded offer or control,
    not checked here (protocol/file_wire.py decodes it); for an offer ``message_id`` is
    the transfer id."""

    frame_type: FrameType
    message_id: bytes
    payload: bytes


@dataclass(frozen=True)
class ReceiptReceived(Event):
    message_id: bytes


@dataclass(frozen=True)
class PingReceived(Event):
    ping_id: bytes


@dataclass(frozen=True)
class PongReceived(Event):
    ping_id: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class SessionClosed(Event):
    """The peer ended its stream cleanly."""
