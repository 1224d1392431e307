"""One group as a member holds it, and what each input does to it (pure, sans I/O).

Every function takes a :class:`GroupState` and returns a new one (never mutates): the
node stores what it gets back (the ``groups`` and ``group_chains`` rows) and acts on
the outcome. Receiving never raises for remote data: a refusal is an outcome with a
stable ``code`` and a one-line ``reason``. Sending and list changes raise
:class:`LocalGroupError` for a request the rules forbid. docs/protocol.md, "Groups".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from nacl.signing import SigningKey

from p2pchat.protocol.group_members import (
    Member,
    MemberKind,
    MemberList,
    decode_member_list,
    make_member_list,
)
from p2pchat.protocol.group_messages import (
    ZERO_HASH,
    GroupMessage,
    MessageKind,
    chain_hash,
    decode_group_message,
    make_group_message,
    message_id_of,
)
from p2pchat.protocol.group_wire import (
    GROUP_ID_BYTES,
    MAX_SEQ,
    GroupError,
    LocalGroupError,
)

MAX_PENDING_PER_GROUP = 256  # messages from a newer epoch, held until its list arrives
UNKNOWN_GROUP = "group-unknown"  # the caller's code for an input naming no group it holds


class Status(Enum):
    ACTIVE = "active"
    LEFT = "left"  # I sent my leave message
    REMOVED = "removed"  # I hold a list without me


@dataclass(frozen=True)
class Chain:
    """A sender's chain as far as I hold it: constant size."""

    last_seq: int
    last_hash: bytes


NO_CHAIN = Chain(0, ZERO_HASH)  # my own chain before my first message


@dataclass(frozen=True)
class GroupState:
    members: MemberList  # the held list (``members.encoded`` is what the store keeps)
    joined_epoch: int
    my_key: bytes
    own: Chain = NO_CHAIN  # my own chain: my next message is own.last_seq + 1
    # Received chains, per sender. Kept when a member is removed: if it is added again,
    # its old messages (still in flight, or replayed) must not be accepted a second time.
    chains: Mapping[bytes, Chain] = field(default_factory=dict)
    status: Status = Status.ACTIVE
    pending: tuple[bytes, ...] = ()  # encoded messages of a newer epoch (memory only)

    @property
    def group_id(self) -> bytes:
        return self.members.group_id

    @property
    def name(self) -> str:
        return self.members.name

    @property
    def admin_key(self) -> bytes:
        return self.members.admin_key

    @property
    def epoch(self) -> int:
        return self.members.epoch

    @property
    def is_admin(self) -> bool:
        return self.my_key == self.admin_key


def restore(
    list_bytes: bytes,
    joined_epoch: int,
    my_key: bytes,
    own: Chain,
    chains: Mapping[bytes, Chain],
    status: Status,
) -> GroupState:
    """A state from its stored parts (the list is decoded and verified again)."""
    return GroupState(
        decode_member_list(list_bytes), joined_epoch, my_key, own, dict(chains), status
    )


# -- outcomes ------------------------------------------------------------------------


class Verdict(Enum):
    ADOPTED = "adopted"  # a newer list is now held
    DUPLICATE = "duplicate"  # nothing changed (the same list again, a message already held)
    ACCEPTED = "accepted"  # show and store the message
    HELD = "held"  # from a newer epoch: kept until its list arrives
    REFUSED = "refused"


@dataclass(frozen=True)
class MessageOutcome:
    state: GroupState
    verdict: Verdict
    message: GroupMessage | None = None  # ACCEPTED (and HELD): the decoded message
    missing: int = 0  # ACCEPTED: messages of this sender skipped before it (a gap)
    code: str = ""  # REFUSED: the stable error code
    reason: str = ""  # REFUSED: one line for the log

    @property
    def message_id(self) -> bytes | None:
        return self.message.message_id if self.message else None


@dataclass(frozen=True)
class ListOutcome:
    state: GroupState | None  # None: a first list refused (no group to keep)
    verdict: Verdict
    added: tuple[Member, ...] = ()  # ADOPTED: members new in this list (pin their keys)
    removed: tuple[Member, ...] = ()  # ADOPTED: members no longer listed
    released: tuple[MessageOutcome, ...] = ()  # held messages re-checked, in arrival order
    code: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Sent:
    """Something I send: fan ``encoded`` out to the other members; store ``state``."""

    state: GroupState
    encoded: bytes
    message_id: bytes  # for a message: message_id_of(encoded); for a list: b""


def _refuse_message(state: GroupState, code: str, reason: str) -> MessageOutcome:
    return MessageOutcome(state, Verdict.REFUSED, code=code, reason=reason)


def _refuse_list(state: GroupState | None, code: str, reason: str) -> ListOutcome:
    return ListOutcome(state, Verdict.REFUSED, code=code, reason=reason)


# -- receiving -----------------------------------------------------------------------


def receive_message(state: GroupState, data: bytes) -> MessageOutcome:
    """A group message received (from any member's 1:1 session), for the group I hold.

    The caller finds ``state`` with ``group_id_of(data)``; if it holds no such group
    the message is refused with :data:`UNKNOWN_GROUP` and never creates one.
    """
    try:
        msg = decode_group_message(data)
    except GroupError as exc:
        return _refuse_message(state, exc.code, str(exc))
    return _check_message(state, msg, hold=True)


def _check_message(state: GroupState, msg: GroupMessage, *, hold: bool) -> MessageOutcome:
    if msg.group_id != state.group_id:
        return _refuse_message(state, UNKNOWN_GROUP, "message for another group")
    if state.status is not Status.ACTIVE:
        return _refuse_message(state, "group-inactive", f"I have {state.status.value} this group")
    if msg.sender_key == state.my_key:
        return _refuse_message(state, "group-from-self", "a message signed by my own key")
    if msg.epoch > state.epoch:
        if not hold:
            raise AssertionError("released messages are never from a newer epoch")
        if msg.encoded in state.pending:
            return MessageOutcome(state, Verdict.DUPLICATE, msg)
        if len(state.pending) >= MAX_PENDING_PER_GROUP:
            return _refuse_message(
                state, "group-pending-full",
                f"{MAX_PENDING_PER_GROUP} messages already wait for a newer member list",
            )  # fmt: skip
        return MessageOutcome(
            replace(state, pending=(*state.pending, msg.encoded)), Verdict.HELD, msg
        )
    if msg.epoch < state.joined_epoch:
        return _refuse_message(
            state,
            "group-before-join",
            f"epoch {msg.epoch} is before I joined ({state.joined_epoch})",
        )
    if state.members.member(msg.sender_key) is None:
        return _refuse_message(
            state, "group-not-member", "the sender is not in the member list I hold"
        )
    chain = state.chains.get(msg.sender_key)
    missing = 0
    if chain is not None:
        if msg.seq <= chain.last_seq:
            return _refuse_message(
                state,
                "group-replay",
                f"seq {msg.seq} after seq {chain.last_seq} (replayed or reordered)",
            )
        if msg.seq == chain.last_seq + 1 and msg.prev_hash != chain.last_hash:
            return _refuse_message(
                state, "group-broken-chain", "the previous hash is not the last message's"
            )
        missing = msg.seq - chain.last_seq - 1
    chains = {**state.chains, msg.sender_key: Chain(msg.seq, chain_hash(msg.encoded))}
    return MessageOutcome(replace(state, chains=chains), Verdict.ACCEPTED, msg, missing=missing)


def receive_list(state: GroupState, data: bytes) -> ListOutcome:
    """A member list for a group I hold (from any member: only the admin's key signs)."""
    try:
        new = decode_member_list(data)
    except GroupError as exc:
        return _refuse_list(state, exc.code, str(exc))
    if new.group_id != state.group_id:
        return _refuse_list(state, UNKNOWN_GROUP, "list for another group")
    if new.admin_key != state.admin_key:
        return _refuse_list(state, "group-wrong-admin", "list not signed by the group's admin")
    if new.epoch < state.epoch:
        return _refuse_list(
            state, "group-stale-list", f"epoch {new.epoch} is older than the held {state.epoch}"
        )
    if new.epoch == state.epoch:
        if new.encoded == state.members.encoded:
            return ListOutcome(state, Verdict.DUPLICATE)
        # Only the admin can make this: it signed two lists for one epoch.
        return _refuse_list(state, "group-fork", f"a different list for the held epoch {new.epoch}")
    old_keys = state.members.keys
    added = tuple(m for m in new.members if m.key not in old_keys)
    removed = tuple(m for m in state.members.members if m.key not in new.keys)
    status, joined_epoch = state.status, state.joined_epoch
    if status is Status.ACTIVE and state.my_key not in new.keys:
        status = Status.REMOVED
    elif status is not Status.ACTIVE and state.my_key in new.keys - old_keys:
        status, joined_epoch = Status.ACTIVE, new.epoch  # added again after I left
    adopted = replace(state, members=new, status=status, joined_epoch=joined_epoch, pending=())
    released: list[MessageOutcome] = []
    for encoded in state.pending:
        msg = decode_group_message(encoded)  # held ones were decoded and verified already
        if msg.epoch > new.epoch:
            adopted = replace(adopted, pending=(*adopted.pending, encoded))
            continue
        outcome = _check_message(adopted, msg, hold=False)
        adopted = outcome.state
        released.append(outcome)
    return ListOutcome(adopted, Verdict.ADOPTED, added, removed, tuple(released))


def join(data: bytes, my_key: bytes, from_key: bytes) -> ListOutcome:
    """A first list for a group I do not hold, received on the 1:1 session with ``from_key``.

    Accepted only from the admin itself (the caller checks it is a contact) and only
    if it lists me as a LAN member.
    """
    try:
        new = decode_member_list(data)
    except GroupError as exc:
        return _refuse_list(None, exc.code, str(exc))
    if from_key != new.admin_key:
        return _refuse_list(None, "group-join-not-admin", "a first list must come from its admin")
    me = new.member(my_key)
    if me is None or me.kind is not MemberKind.LAN:
        return _refuse_list(None, "group-join-not-listed", "a first list that does not list me")
    state = GroupState(new, joined_epoch=new.epoch, my_key=my_key)
    added = tuple(m for m in new.members if m.key != my_key)
    return ListOutcome(state, Verdict.ADOPTED, added=added)


# -- sending ---------------------------------------------------------------------------


def next_message(state: GroupState, me: SigningKey, text: str, now_ms: int) -> Sent:
    """Sign my next text message; ``LocalGroupError`` if I cannot send to this group."""
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (argv decoded with surrogateescape)
        raise LocalGroupError("the message is not valid UTF-8", code="group-bad-body") from None
    return _send(state, me, MessageKind.TEXT, body, now_ms)


def leave(state: GroupState, me: SigningKey, now_ms: int) -> Sent:
    """Sign my leave message (kind 2); the state is LEFT after it. The admin cannot leave."""
    if state.is_admin and len(state.members.members) > 1:
        raise LocalGroupError(
            "the admin cannot leave a group while others remain: remove them first, or delete the group",
            code="group-admin-leave",
        )
    sent = _send(state, me, MessageKind.LEAVE, b"", now_ms)
    return replace(sent, state=replace(sent.state, status=Status.LEFT))


def _send(state: GroupState, me: SigningKey, kind: MessageKind, body: bytes, now_ms: int) -> Sent:
    if bytes(me.verify_key) != state.my_key:
        raise LocalGroupError("not this group's key for me", code="group-local")
    if state.status is not Status.ACTIVE:
        raise LocalGroupError(f"you have {state.status.value} this group", code="group-inactive")
    if state.own.last_seq >= MAX_SEQ:
        raise LocalGroupError("this group's message counter is exhausted", code="group-bad-seq")
    seq = state.own.last_seq + 1
    msg = make_group_message(
        state.group_id, state.epoch, me, seq, state.own.last_hash, now_ms, kind, body
    )
    own = Chain(seq, chain_hash(msg.encoded))
    return Sent(replace(state, own=own), msg.encoded, message_id_of(msg.encoded))


# -- the admin's list changes ----------------------------------------------------------------


def create(
    admin: SigningKey,
    admin_name: str,
    name: str,
    members: Sequence[Member] = (),
    *,
    group_id: bytes | None = None,
) -> Sent:
    """A new group with me as its admin (epoch 1); fan the list out to every LAN member."""
    group_id = group_id or os.urandom(GROUP_ID_BYTES)
    me = Member(MemberKind.LAN, bytes(admin.verify_key), admin_name)
    new = make_member_list(group_id, 1, name, (me, *members), admin)
    return Sent(GroupState(new, joined_epoch=1, my_key=me.key), new.encoded, b"")


def add_member(state: GroupState, admin: SigningKey, member: Member) -> Sent:
    """The list with ``member`` added (epoch + 1)."""
    return _change(state, admin, (*state.members.members, member))


def remove_member(state: GroupState, admin: SigningKey, key: bytes) -> Sent:
    """The list without ``key`` (and without the guests it hosts), epoch + 1."""
    if key == state.admin_key:
        raise LocalGroupError("the admin cannot remove itself", code="group-admin-leave")
    if state.members.member(key) is None:
        raise LocalGroupError("not a member of this group", code="group-not-member")
    kept = tuple(m for m in state.members.members if m.key != key and m.host_key != key)
    return _change(state, admin, kept)


def _change(state: GroupState, admin: SigningKey, members: Sequence[Member]) -> Sent:
    if not state.is_admin or bytes(admin.verify_key) != state.admin_key:
        raise LocalGroupError(
            "only the group's admin can change its members", code="group-not-admin"
        )
    if state.status is not Status.ACTIVE:
        raise LocalGroupError(f"you have {state.status.value} this group", code="group-inactive")
    new = make_member_list(state.group_id, state.epoch + 1, state.name, members, admin)
    return Sent(replace(state, members=new), new.encoded, b"")
