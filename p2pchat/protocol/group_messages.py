"""A group message: one link of its sender's signed hash chain (sans I/O).

Layout (big-endian; docs/protocol.md, "Groups")::

    version u8 = 1 | group_id 16 | epoch u32 | sender_key 32 | seq u64 | prev_hash 32 |
    timestamp_ms u64 | kind u8 (1 text, 2 leave) | body_len u16 | body | signature 64

The signature is Ed25519 by ``sender_key`` over ``MESSAGE_DOMAIN || every byte before it``.
``prev_hash`` is :func:`chain_hash` of the sender's previous encoded message (zeros for
seq 1). Ids: :func:`message_id_of` (the same on every member) and :func:`copy_id_of`
(one fan-out copy, the 1:1 frame's message id).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from nacl.signing import SigningKey

from p2pchat.crypto import purposes
from p2pchat.protocol.frames import MAX_BODY_BYTES as MAX_FRAME_BODY_BYTES
from p2pchat.protocol.frames import MESSAGE_ID_BYTES
from p2pchat.protocol.group_wire import (
    GROUP_ID_BYTES,
    GROUP_VERSION,
    KEY_BYTES,
    MAX_EPOCH,
    MAX_SEQ,
    SIGNATURE_BYTES,
    GroupError,
    LocalGroupError,
    read_head,
    sign,
    verify,
)

MESSAGE_DOMAIN = b"p2pchat/group-message/v1\0"
HASH_BYTES = 32
ZERO_HASH = bytes(HASH_BYTES)
_HEAD = struct.Struct(">B16sI32sQ32sQBH")
HEADER_BYTES = _HEAD.size  # 104
# The whole signed message travels as the body of one 1:1 frame.
MAX_MESSAGE_BYTES = MAX_FRAME_BODY_BYTES
MAX_TEXT_BYTES = MAX_MESSAGE_BYTES - HEADER_BYTES - SIGNATURE_BYTES


class MessageKind(IntEnum):
    TEXT = 1
    LEAVE = 2  # "I leave the group"; body empty


@dataclass(frozen=True)
class GroupMessage:
    group_id: bytes
    epoch: int
    sender_key: bytes
    seq: int
    prev_hash: bytes
    timestamp_ms: int
    kind: MessageKind
    body: bytes
    signature: bytes
    encoded: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def message_id(self) -> bytes:
        return message_id_of(self.encoded)


def message_id_of(encoded: bytes) -> bytes:
    """The group message's id: the same on every member (``messages.message_id``)."""
    return purposes.derive(purposes.GROUP_MESSAGE_ID, encoded, MESSAGE_ID_BYTES)


def copy_id_of(message_id: bytes, member_key: bytes) -> bytes:
    """The id of the copy fanned out to one member: its outbox entry and 1:1 frame id."""
    return purposes.derive(purposes.GROUP_COPY_ID, message_id + member_key, MESSAGE_ID_BYTES)


def chain_hash(encoded: bytes) -> bytes:
    """What the sender's next message carries as ``prev_hash``."""
    return purposes.derive(purposes.GROUP_CHAIN, encoded, HASH_BYTES)


def make_group_message(
    group_id: bytes,
    epoch: int,
    sender: SigningKey,
    seq: int,
    prev_hash: bytes,
    timestamp_ms: int,
    kind: MessageKind,
    body: bytes,
) -> GroupMessage:
    """Sign a message; ``LocalGroupError`` for a value the decoder would refuse."""
    try:
        _check_fields(epoch, seq, prev_hash, timestamp_ms, kind, body)
    except GroupError as exc:
        raise LocalGroupError(str(exc), code=exc.code) from None
    if len(group_id) != GROUP_ID_BYTES or len(prev_hash) != HASH_BYTES:
        raise LocalGroupError("malformed group id or previous hash", code="group-malformed")
    sender_key = bytes(sender.verify_key)
    head = _HEAD.pack(
        GROUP_VERSION, group_id, epoch, sender_key, seq, prev_hash, timestamp_ms, kind, len(body)
    )
    signature = sign(MESSAGE_DOMAIN, head + body, sender)
    return GroupMessage(
        group_id, epoch, sender_key, seq, prev_hash, timestamp_ms, kind, body, signature,
        head + body + signature,
    )  # fmt: skip


def decode_group_message(data: bytes) -> GroupMessage:
    """Parse, check and verify a signed message; ``GroupError`` (with its code) if refused."""
    r, group_id, epoch = read_head(data, "group message", MAX_MESSAGE_BYTES)
    sender_key = r.take(KEY_BYTES, "sender key")
    seq = r.u64("seq")
    prev_hash = r.take(HASH_BYTES, "previous hash")
    timestamp_ms = r.u64("timestamp")
    kind_byte = r.u8("kind")
    body = r.take(r.u16("body length"), "body")
    end = r.signed_part_end()
    _check_fields(epoch, seq, prev_hash, timestamp_ms, kind_byte, body)
    signature = data[end:]
    if not verify(MESSAGE_DOMAIN, data[:end], signature, sender_key):
        raise GroupError("group message signature does not verify", code="group-bad-signature")
    return GroupMessage(
        group_id, epoch, sender_key, seq, prev_hash, timestamp_ms, MessageKind(kind_byte), body,
        signature, bytes(data),
    )  # fmt: skip


def group_id_of(data: bytes) -> bytes | None:
    """The group a message or a member list claims (unverified: to look the group up)."""
    if len(data) < 1 + GROUP_ID_BYTES or data[0] != GROUP_VERSION:
        return None
    return bytes(data[1 : 1 + GROUP_ID_BYTES])


def _check_fields(
    epoch: int, seq: int, prev_hash: bytes, timestamp_ms: int, kind: int, body: bytes
) -> None:
    if not 1 <= epoch <= MAX_EPOCH:
        raise GroupError("group message epoch 0 (epochs start at 1)", code="group-bad-epoch")
    if not 1 <= seq <= MAX_SEQ:
        raise GroupError("group message seq 0 (seqs start at 1)", code="group-bad-seq")
    if seq == 1 and prev_hash != ZERO_HASH:
        raise GroupError("first message of a chain with a previous hash", code="group-bad-seq")
    if not 0 <= timestamp_ms < 2**64:
        raise GroupError("timestamp out of range", code="group-malformed")
    if kind not in (MessageKind.TEXT, MessageKind.LEAVE):
        raise GroupError(f"unknown group message kind {kind}", code="group-bad-kind")
    if len(body) > MAX_TEXT_BYTES:
        raise GroupError(
            f"group message text is {len(body)} bytes; the limit is {MAX_TEXT_BYTES} bytes",
            code="group-too-large",
        )
    if kind == MessageKind.LEAVE and body:
        raise GroupError("a leave message carries no text", code="group-bad-body")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise GroupError("group message text is not valid UTF-8", code="group-bad-body") from None
