"""Browser guests in a group, on their host's side (the admin's node hosts them).

A guest of ``invite --group`` joins through its host (guests.py calls ``guest_joined``
/ ``guest_left``): the host lists it (kind 2, its page's group key), sends it the list
first, forwards every group message it accepts or sends to it over its session (not
through the outbox: a guest's session is its membership), and groups.py fans its
messages out to the LAN members as it does its own. groups.py owns the group states;
this module sees them through ``GroupsForGuests`` (no import of groups.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node.core_protocol import NodeCore
from p2pchat.node.events import GroupChanged
from p2pchat.node.links import PeerLink, now_ms
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.group_members import Member, MemberKind
from p2pchat.protocol.group_messages import copy_id_of, message_id_of
from p2pchat.protocol.group_wire import MAX_GUESTS, MAX_NAME_BYTES, LocalGroupError
from p2pchat.transport.errors import TransportError

logger = logging.getLogger(__name__)


class GroupsForGuests(Protocol):
    """The LAN groups module as the guest side sees it (node/groups.py ``LanGroups``)."""

    def states(self) -> list[gs.GroupState]: ...
    def state(self, group_id: bytes) -> gs.GroupState | None: ...
    def resolve(self, query: str) -> gs.GroupState: ...
    def commit_list(
        self, old: gs.GroupState | None, sent: gs.Sent, also: Sequence[bytes] = ()
    ) -> None: ...
    def send_list_now(
        self, link: PeerLink, state: gs.GroupState, key: bytes | None = None
    ) -> None: ...
    def changed(self, state: gs.GroupState, change: str, member: Member | None) -> GroupChanged: ...


class GroupGuests:
    """The guests this node hosts in its groups: who is in which group, on which session."""

    def __init__(self, core: NodeCore, groups: GroupsForGuests) -> None:
        self._core = core
        self._groups = groups
        self._guests: dict[bytes, tuple[bytes, PeerLink]] = {}  # guest key → (group, session)

    # -- groups.py asks -------------------------------------------------------------------

    def open_keys(self, group_id: bytes) -> list[bytes]:
        """My guests of this group whose session is open."""
        return [k for k, (g, lk) in self._guests.items() if g == group_id and lk.state == "open"]

    def hosts(self, key: bytes, link: PeerLink) -> bool:
        """``link`` is the session of my guest ``key``."""
        return self._guests.get(key, (b"", None))[1] is link

    def list_changed(self, new: gs.GroupState) -> None:
        """A new list of ``new``'s group was committed: my guests in it get it now."""
        for key, (gid, link) in list(self._guests.items()):
            if gid == new.group_id and link.state == "open":
                self._groups.send_list_now(link, new, key)  # a removed guest learns it too
            if gid == new.group_id and new.members.member(key) is None:
                del self._guests[key]  # removed by the owner: nothing more for it

    def invite_group(self, query: str) -> bytes:
        """The id of the group ``invite --group`` names: only its admin may invite guests."""
        state = self._groups.resolve(query)
        if not state.is_admin:
            admin = state.members.member(state.admin_key)
            who = admin.name if admin else peer_id(state.admin_key)
            raise UserError(f"only {who} can invite guests to {state.name}: ask them")
        if state.status is not gs.Status.ACTIVE:
            raise UserError(f"you have {state.status.value} {state.name}")
        return state.group_id

    def guest_refusal(self, group_id: bytes, key: bytes | None) -> str | None:
        """Why a guest of this group's invite cannot come in now (``None``: it can)."""
        state = self._groups.state(group_id)
        if state is None or state.status is not gs.Status.ACTIVE or not state.is_admin:
            return "this group's link no longer works: ask for a new one"
        if key is None:
            return "this page cannot join a group (no group key in its offer): reload it"
        guests = [m for m in state.members.members if m.kind is MemberKind.GUEST]
        if state.members.member(key) is None and len(guests) >= MAX_GUESTS:
            return f"{state.name} has {MAX_GUESTS} guests already, the most a group holds"
        return None

    def guest_joined(self, group_id: bytes, key: bytes, name: str, link: PeerLink) -> bool:
        """A guest's session opened: list it (if new), then send it the list, first."""
        refusal = self.guest_refusal(group_id, key)
        state = self._groups.state(group_id)
        if refusal is None and state is not None and state.members.member(key) is None:
            guest = Member(MemberKind.GUEST, key, _member_name(name), state.my_key)
            try:
                sent = gs.add_member(state, self._core.identity.signing_key, guest)
                self._groups.commit_list(state, sent)
            except (LocalGroupError, UserError) as exc:
                refusal = f"cannot add the guest to {state.name}: {exc}"
            else:
                self._core.emit(self._groups.changed(sent.state, "member_added", guest))
                state = sent.state
        if refusal is not None or state is None:
            logger.warning("guest %s not let into a group: %s", name, refusal)
            link.close(refusal or "no such group")
            return False
        self._guests[key] = (group_id, link)
        self._groups.send_list_now(link, state, key)
        return True

    def drop_stale_guests(self) -> None:
        """At start: guests I listed before I stopped have no session now: off the lists."""
        me = self._core.identity.public_key
        for state in self._groups.states():
            stale = [m.key for m in state.members.members if m.host_key == me]
            if not stale or not state.is_admin or state.status is not gs.Status.ACTIVE:
                continue
            sent = None
            try:
                for key in stale:
                    sent = gs.remove_member(sent.state if sent else state,
                                            self._core.identity.signing_key, key)  # fmt: skip
                assert sent is not None
                self._groups.commit_list(state, sent)
            except (LocalGroupError, UserError) as exc:
                logger.warning("guests of %s not taken off its list: %s", state.name, exc)

    def guest_left(self, key: bytes, link: PeerLink) -> None:
        """A guest's session ended: the admin takes it off the list."""
        group_id, held = self._guests.get(key, (b"", None))
        if held is not link:
            return
        del self._guests[key]
        state = self._groups.state(group_id)
        if state is None or not state.is_admin or state.status is not gs.Status.ACTIVE:
            return
        member = state.members.member(key)
        if member is None:
            return
        try:
            sent = gs.remove_member(state, self._core.identity.signing_key, key)
            self._groups.commit_list(state, sent)
        except (LocalGroupError, UserError) as exc:
            logger.warning("guest %s not taken off %s: %s", member.name, state.name, exc)
            return
        self._core.emit(self._groups.changed(sent.state, "member_removed", member))

    def forward(self, state: gs.GroupState, encoded: bytes, *, skip: bytes | None) -> None:
        """A group message to each of my guests in ``state``'s group but ``skip``."""
        mid = message_id_of(encoded)
        for key, (gid, link) in list(self._guests.items()):
            if gid != state.group_id or key == skip or link.state != "open":
                continue
            with contextlib.suppress(TransportError, ProtocolError):
                link.send(link.session.send_group_message(encoded, now_ms(),
                                                          message_id=copy_id_of(mid, key)))  # fmt: skip

    def is_open(self, key: bytes) -> bool:
        return key in self._guests and self._guests[key][1].state == "open"


def _member_name(name: str) -> str:
    """A guest's name as the list holds it: printable, 1..MAX_NAME_BYTES of UTF-8."""
    clean = "".join(c for c in name if c.isprintable()).strip() or "guest"
    raw = clean.encode()[:MAX_NAME_BYTES]
    return raw.decode(errors="ignore") or "guest"
