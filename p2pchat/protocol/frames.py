"""Chat frames: what travels, encrypted, inside a session's secret stream.

Layout (version 1), big-endian::

    version u8 | type u8 | message_id 16 bytes | timestamp_ms u64 | body

The whole plaintext frame is at most 64 KiB.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from enum import IntEnum

from p2pchat.protocol.errors import RemoteProtocolError

FRAME_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
MESSAGE_ID_BYTES = 16
_HEADER = struct.Struct(">BB16sQ")
HEADER_BYTES = _HEADER.size
MAX_BODY_BYTES = MAX_FRAME_BYTES - HEADER_BYTES


class FrameType(IntEnum):
    TEXT = 1  # body: UTF-8 text
    RECEIPT = 2  # message_id: the message delivered; body empty
    PING = 3
    PONG = 4  # message_id: the ping answered
    CLOSE = 5  # last frame of a stream
    # Groups (both ends announce ``groups=1``): body = a signed group object
    # (protocol/group_messages.py, group_members.py), message_id = the copy's id.
    GROUP_MESSAGE = 6
    GROUP_LIST = 7
    # Files (both ends announce ``files=1``): body = an encoded offer or control
    # (protocol/file_wire.py); FILE_OFFER's message_id = the transfer id.
    FILE_OFFER = 8
    FILE_CONTROL = 9


GROUP_FRAME_TYPES = frozenset({FrameType.GROUP_MESSAGE, FrameType.GROUP_LIST})
FILE_FRAME_TYPES = frozenset({FrameType.FILE_OFFER, FrameType.FILE_CONTROL})
# Frames whose body is an object read by a later layer (never empty).
_OBJECT_FRAME_TYPES = GROUP_FRAME_TYPES | FILE_FRAME_TYPES


class FrameError(RemoteProtocolError):
    code = "bad-frame"


@dataclass(frozen=True)
class ChatFrame:
    type: FrameType
    message_id: bytes
    timestamp_ms: int
    body: bytes = b""

    def encode(self) -> bytes:
        if len(self.message_id) != MESSAGE_ID_BYTES:
            raise ValueError(f"message id must be {MESSAGE_ID_BYTES} bytes")
        if len(self.body) > MAX_BODY_BYTES:
            raise ValueError(f"frame body over {MAX_BODY_BYTES} bytes")
        return (
            _HEADER.pack(FRAME_VERSION, self.type, self.message_id, self.timestamp_ms) + self.body
        )

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def new_message_id() -> bytes:
    return os.urandom(MESSAGE_ID_BYTES)


def decode_frame(data: bytes) -> ChatFrame:
    """Parse one plaintext frame; ``FrameError`` for anything malformed."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame over {MAX_FRAME_BYTES} bytes")
    if len(data) < HEADER_BYTES:
        raise FrameError("frame too short")
    version, type_, message_id, timestamp_ms = _HEADER.unpack_from(data)
    if version != FRAME_VERSION:
        raise FrameError(f"frame version {version} is not supported (want {FRAME_VERSION})")
    try:
        frame_type = FrameType(type_)
    except ValueError:
        raise FrameError(f"unknown frame type {type_}") from None
    body = data[HEADER_BYTES:]
    if frame_type is FrameType.TEXT:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("text frame is not valid UTF-8") from None
    elif frame_type in _OBJECT_FRAME_TYPES:
        if not body:
            raise FrameError(f"{frame_type.name.lower()} frame without a body")
    elif body:
        raise FrameError(f"{frame_type.name.lower()} frame must have an empty body")
    return ChatFrame(frame_type, message_id, timestamp_ms, body)
