"""Browser guests in a group, on their host's side (the admin's node hosts them).

A guest of ``invite --group`` joins through its host (guests.py calls ``guest_joined``
/ ``guest_left``): the host lists it (kind 2, its page's group key), sends it the list
first, forwards every group message it accepts or sends to it over its session (not
through the outbox: a guest's session is its membership), and groups.py fans its
messages out to the LAN members as it does its own. groups.py owns the group states;
this module sees them through ``GroupsForGuests`` (no import of groups.py).

A guest leaves the group when its session ends, unless the owner *keeps* it
(``group keep``): a kept guest stays listed (offline), and from then on its copies go
through its 1:1 guest conversation's outbox in the host's profile, as a LAN member's
do: one copy per message, sent in order when its page (same tab: same guest id, same
group key) comes back, dropped on the page's receipt. At most ``MAX_KEPT_WAITING``
wait; the next one takes the guest off the list (a list change every member sees)
rather than drop a message it would never know it missed. Kept guests are in memory
only: invite links do not outlive the node, so at start they are taken off with the
other guests and their queued copies are dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from p2pchat.control.api import GroupView
from p2pchat.crypto.encoding import b64url_encode
from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node.core_protocol import NodeCore
from p2pchat.node.events import GroupChanged
from p2pchat.node.links import PeerLink, now_ms
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.errors import ProtocolError
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import Member, MemberKind
from p2pchat.protocol.group_messages import copy_id_of, message_id_of
from p2pchat.protocol.group_wire import MAX_GUESTS, MAX_NAME_BYTES, LocalGroupError
from p2pchat.store import StoreError, guest_conversation_id
from p2pchat.transport.errors import TransportError

logger = logging.getLogger(__name__)

# Copies waiting for one kept guest (its outbox, group frames and 1:1 texts alike).
MAX_KEPT_WAITING = 256


@dataclass(frozen=True)
class _Kept:
    group_id: bytes
    conversation: str  # its 1:1 guest conversation: where its copies wait


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
    def view(self, state: gs.GroupState) -> GroupView: ...


class GroupGuests:
    """The guests this node hosts in its groups: who is in which group, on which session."""

    def __init__(self, core: NodeCore, groups: GroupsForGuests) -> None:
        self._core = core
        self._groups = groups
        self._guests: dict[bytes, tuple[bytes, PeerLink]] = {}  # guest key → (group, session)
        self._kept: dict[bytes, _Kept] = {}  # guest key → where its copies wait

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
        for key, kept in list(self._kept.items()):
            if kept.group_id == new.group_id and new.members.member(key) is None:
                self._unkeep(key)

    # -- the owner's commands --------------------------------------------------------------

    async def async_keep(self, group: str, guest: str) -> GroupView:
        """``group keep``: ``guest`` stays listed when its session ends (see the module)."""
        from p2pchat.node.peer_match import resolve_peer

        state = self._hosted(group, "only {who} can keep guests in {group}: they host them")
        mine = [m for m in state.members.members if m.kind is MemberKind.GUEST]
        target = resolve_peer(
            guest, mine, name_of=lambda m: m.name, key_of=lambda m: m.key, kind="guest",
            none_yet=f"{state.name} has no guests", pick_one="use its id (`p2pchat groups --json`)",
        )  # fmt: skip
        if target.key not in self._kept:
            session = self._guests.get(target.key)
            if session is None:  # listed but no session this run: it is being taken off
                raise UserError(f"{target.name} has left {state.name}: it cannot be kept")
            conversation = guest_conversation_id(b64url_encode(session[1].peer_key))
            self._kept[target.key] = _Kept(state.group_id, conversation)
        return self._groups.view(state)

    def is_kept(self, key: bytes) -> bool:
        return key in self._kept

    # -- guests.py tells ---------------------------------------------------------------------

    def invite_group(self, query: str) -> bytes:
        """The id of the group ``invite --group`` names: only its admin may invite guests."""
        return self._hosted(query, "only {who} can invite guests to {group}: ask them").group_id

    def guest_refusal(self, group_id: bytes, key: bytes | None) -> str | None:
        """Why a guest of this group's invite cannot come in now (``None``: it can)."""
        state = self._groups.state(group_id)
        if state is None or state.status is not gs.Status.ACTIVE or not state.is_admin:
            return "this group's link no longer works: ask for a new one"
        if key is None:
            return "this page cannot join a group (no group key in its offer): reload it"
        if state.members.member(key) is None:  # a new guest (a listed one comes back)
            return _full(state)
        return None

    def group_name(self, group_id: bytes) -> str | None:
        """The name of the group an invite joins (for the invite's view)."""
        state = self._groups.state(group_id)
        return state.name if state is not None else None

    def newcomer_refusal(self, group_id: bytes) -> str | None:
        """Why a new guest (a page's probe: no group key yet) cannot come in now."""
        state = self._groups.state(group_id)
        if state is None or state.status is not gs.Status.ACTIVE or not state.is_admin:
            return "this group's link no longer works: ask for a new one"
        return _full(state)

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
        """At start: guests I listed before I stopped have no session now: off the lists
        (kept ones too: their link died with the node), and their queued copies dropped."""
        me = self._core.identity.public_key
        with contextlib.suppress(StoreError):
            self._core.profile.drop_guest_group_frames()
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
        """A guest's session ended: the admin takes it off the list, unless it is kept."""
        group_id, held = self._guests.get(key, (b"", None))
        if held is not link:
            return
        del self._guests[key]
        if key not in self._kept:
            self._take_off(group_id, key)

    def forward(self, state: gs.GroupState, encoded: bytes, *, skip: bytes | None) -> None:
        """A group message to each of my guests in ``state``'s group but ``skip``."""
        mid = message_id_of(encoded)
        for key, kept in list(self._kept.items()):
            if kept.group_id == state.group_id and key != skip:
                self._queue(key, kept, mid, encoded)
        for key, (gid, link) in list(self._guests.items()):
            if gid != state.group_id or key == skip or link.state != "open" or key in self._kept:
                continue
            with contextlib.suppress(TransportError, ProtocolError):
                link.send(link.session.send_group_message(encoded, now_ms(),
                                                          message_id=copy_id_of(mid, key)))  # fmt: skip

    def is_open(self, key: bytes) -> bool:
        return key in self._guests and self._guests[key][1].state == "open"

    # -- private -------------------------------------------------------------------------

    def _hosted(self, query: str, not_admin: str) -> gs.GroupState:
        """The active group ``query`` names, if I am its admin (guests' host); else a
        UserError: ``not_admin`` with {who} (the admin) and {group} filled in."""
        state = self._groups.resolve(query)
        if not state.is_admin:
            admin = state.members.member(state.admin_key)
            who = admin.name if admin else peer_id(state.admin_key)
            raise UserError(not_admin.format(who=who, group=state.name))
        if state.status is not gs.Status.ACTIVE:
            raise UserError(f"you have {state.status.value} {state.name}")
        return state

    def _queue(self, key: bytes, kept: _Kept, mid: bytes, encoded: bytes) -> None:
        """A copy for a kept guest: into its outbox (in order), sent now if it is here."""
        profile = self._core.profile
        try:
            if len(profile.pending_outbox(kept.conversation)) >= MAX_KEPT_WAITING:
                why = f"{MAX_KEPT_WAITING} messages wait for it already"
                self._take_off(kept.group_id, key, why)
                return
            profile.enqueue_outbox(
                copy_id_of(mid, key), kept.conversation, "", created_ms=now_ms(),
                frame_type=FrameType.GROUP_MESSAGE, payload=encoded,
            )  # fmt: skip
        except StoreError as exc:  # a full disk: never a silent gap, the guest goes
            self._take_off(kept.group_id, key, f"its copy could not be stored: {exc}")
            return
        session = self._guests.get(key)
        if session is not None and session[1].state == "open":
            self._core.flush_outbox_soon(session[1], kept.conversation)

    def _take_off(self, group_id: bytes, key: bytes, why: str | None = None) -> None:
        """The admin takes guest ``key`` off the list (its session ended, or it waited too long)."""
        self._unkeep(key)
        state = self._groups.state(group_id)
        if state is None or not state.is_admin or state.status is not gs.Status.ACTIVE:
            return
        member = state.members.member(key)
        if member is None:
            return
        if why is not None:
            logger.warning("kept guest %s taken off %s: %s", member.name, state.name, why)
        try:
            sent = gs.remove_member(state, self._core.identity.signing_key, key)
            self._groups.commit_list(state, sent)
        except (LocalGroupError, UserError) as exc:
            logger.warning("guest %s not taken off %s: %s", member.name, state.name, exc)
            return
        self._core.emit(self._groups.changed(sent.state, "member_removed", member))

    def _unkeep(self, key: bytes) -> None:
        """Not kept any more: the group copies waiting for it go (it is off the list)."""
        kept = self._kept.pop(key, None)
        if kept is None:
            return
        profile = self._core.profile
        with contextlib.suppress(StoreError), profile.batch():
            for entry in profile.pending_outbox(kept.conversation):
                if entry.frame_type == FrameType.GROUP_MESSAGE:
                    profile.remove_outbox(entry.message_id, kept.conversation)


def _full(state: gs.GroupState) -> str | None:
    guests = [m for m in state.members.members if m.kind is MemberKind.GUEST]
    if len(guests) >= MAX_GUESTS:
        return f"{state.name} has {MAX_GUESTS} guests already, the most a group holds"
    return None


def _member_name(name: str) -> str:
    """A guest's name as the list holds it: printable, 1..MAX_NAME_BYTES of UTF-8."""
    clean = "".join(c for c in name if c.isprintable()).strip() or "guest"
    raw = clean.encode()[:MAX_NAME_BYTES]
    return raw.decode(errors="ignore") or "guest"
