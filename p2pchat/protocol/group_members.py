"""A group's member list: versioned, signed by the group's admin (sans I/O).

Layout (big-endian; docs/protocol.md, "Groups")::

    version u8 = 1 | group_id 16 | epoch u32 | admin_key 32 | name_len u8 | name |
    count u8 | count x member | signature 64
    member = kind u8 (1 LAN, 2 guest) | key 32 | name_len u8 | name | (guest) host_key 32

The signature is Ed25519 by ``admin_key`` over ``MEMBERS_DOMAIN || every byte before it``.
Decoding checks the layout, every rule and the signature; the group state machine
(group_state.py) checks the admin is the one already held and the epoch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from nacl.signing import SigningKey

from p2pchat.crypto.identity import x25519_public
from p2pchat.protocol.group_wire import (
    GROUP_ID_BYTES,
    GROUP_VERSION,
    KEY_BYTES,
    MAX_EPOCH,
    MAX_GUESTS,
    MAX_LAN_MEMBERS,
    MAX_NAME_BYTES,
    SIGNATURE_BYTES,
    GroupError,
    LocalGroupError,
    check_name,
    read_head,
    sign,
    verify,
)

MEMBERS_DOMAIN = b"p2pchat/group-members/v1\0"
MAX_MEMBERS = MAX_LAN_MEMBERS + MAX_GUESTS
_HEAD = struct.Struct(">B16sI32s")
_MEMBER_MAX = 1 + KEY_BYTES + 1 + MAX_NAME_BYTES + KEY_BYTES
MAX_LIST_BYTES = _HEAD.size + 1 + MAX_NAME_BYTES + 1 + MAX_MEMBERS * _MEMBER_MAX + SIGNATURE_BYTES


class MemberKind(IntEnum):
    LAN = 1  # a p2pchat identity
    GUEST = 2  # a browser guest, reached through its host (a LAN member)


@dataclass(frozen=True)
class Member:
    kind: MemberKind
    key: bytes
    name: str
    host_key: bytes | None = None  # guests only: the LAN member that hosts them

    def encode(self) -> bytes:
        raw = self.name.encode("utf-8")
        out = bytes([self.kind]) + self.key + bytes([len(raw)]) + raw
        return out + (self.host_key or b"") if self.kind is MemberKind.GUEST else out


@dataclass(frozen=True)
class MemberList:
    group_id: bytes
    epoch: int
    admin_key: bytes
    name: str
    members: tuple[Member, ...]
    signature: bytes
    encoded: bytes  # the signed bytes, as received or made (what the store keeps)

    def member(self, key: bytes) -> Member | None:
        for m in self.members:
            if m.key == key:
                return m
        return None

    @property
    def keys(self) -> frozenset[bytes]:
        return frozenset(m.key for m in self.members)

    @property
    def lan_members(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.kind is MemberKind.LAN)


def make_member_list(
    group_id: bytes, epoch: int, name: str, members: Sequence[Member], admin: SigningKey
) -> MemberList:
    """Sign a list; ``LocalGroupError`` (same codes as decoding) if it breaks a rule."""
    admin_key = bytes(admin.verify_key)
    try:
        if len(group_id) != GROUP_ID_BYTES:
            raise GroupError(f"group id must be {GROUP_ID_BYTES} bytes", code="group-malformed")
        if not 1 <= epoch <= MAX_EPOCH:
            raise GroupError(f"epoch must be 1 to {MAX_EPOCH}", code="group-bad-epoch")
        for text, what in [(name, "group name")] + [(m.name, "member name") for m in members]:
            try:
                check_name(text, what)
            except ValueError as exc:
                raise GroupError(str(exc), code="group-bad-name") from None
        for m in members:
            if len(m.key) != KEY_BYTES or (m.kind is MemberKind.GUEST) != (m.host_key is not None):
                raise GroupError("malformed member", code="group-malformed")
        _check_members(admin_key, members)
    except GroupError as exc:
        raise LocalGroupError(str(exc), code=exc.code) from None
    raw_name = name.encode("utf-8")
    body = (
        _HEAD.pack(GROUP_VERSION, group_id, epoch, admin_key)
        + bytes([len(raw_name)])
        + raw_name
        + bytes([len(members)])
        + b"".join(m.encode() for m in members)
    )
    signature = sign(MEMBERS_DOMAIN, body, admin)
    return MemberList(group_id, epoch, admin_key, name, tuple(members), signature, body + signature)


def decode_member_list(data: bytes) -> MemberList:
    """Parse, check and verify a signed list; ``GroupError`` (with its code) if refused."""
    r, group_id, epoch = read_head(data, "member list", MAX_LIST_BYTES)
    if epoch == 0:
        raise GroupError("member list epoch 0 (epochs start at 1)", code="group-bad-epoch")
    admin_key = r.take(KEY_BYTES, "admin key")
    name = r.name("group name")
    count = r.u8("member count")
    if count == 0:
        raise GroupError("member list with no member", code="group-bad-count")
    if count > MAX_MEMBERS:
        raise GroupError(f"member list of {count} members", code="group-too-many-members")
    members = []
    for _ in range(count):
        kind_byte = r.u8("member kind")
        if kind_byte not in (MemberKind.LAN, MemberKind.GUEST):
            raise GroupError(f"unknown member kind {kind_byte}", code="group-bad-member-kind")
        kind = MemberKind(kind_byte)
        key = r.take(KEY_BYTES, "member key")
        member_name = r.name("member name")
        host = r.take(KEY_BYTES, "host key") if kind is MemberKind.GUEST else None
        members.append(Member(kind, key, member_name, host))
    end = r.signed_part_end()
    _check_members(admin_key, members)
    signature = data[end:]
    if not verify(MEMBERS_DOMAIN, data[:end], signature, admin_key):
        raise GroupError("member list signature does not verify", code="group-bad-signature")
    return MemberList(group_id, epoch, admin_key, name, tuple(members), signature, bytes(data))


def _check_members(admin_key: bytes, members: Sequence[Member]) -> None:
    keys = [m.key for m in members]
    if len(set(keys)) != len(keys):
        raise GroupError("a key is listed twice", code="group-duplicate-key")
    lan = {m.key for m in members if m.kind is MemberKind.LAN}
    if len(lan) > MAX_LAN_MEMBERS:
        raise GroupError(
            f"{len(lan)} members; a group holds at most {MAX_LAN_MEMBERS}",
            code="group-too-many-members",
        )
    guests = len(members) - len(lan)
    if guests > MAX_GUESTS:
        raise GroupError(
            f"{guests} guests; a group holds at most {MAX_GUESTS}", code="group-too-many-guests"
        )
    if admin_key not in lan:
        raise GroupError("the admin is not a member of its list", code="group-admin-not-member")
    for m in members:
        if m.kind is MemberKind.GUEST and m.host_key not in lan:
            raise GroupError("a guest's host is not a member", code="group-bad-host")
    for key in keys:
        try:
            x25519_public(key)
        except ValueError:
            raise GroupError("a member key is not an Ed25519 key", code="group-bad-key") from None
