"""Files to a group: the 1:1 file machinery (files.py), fanned out to each LAN member.

``send-file GROUP PATH`` stores one history row in the group's conversation and one
outgoing transfer per other LAN member, each with its own id and file key (a member
cannot read or forge another's chunks), each offered through that member's 1:1 outbox
with a version-2 offer that names the group. Browser guests on the list get nothing
(not yet): the answer names them.

A receiver files such an offer under the group only if it holds the group, is itself
on its list and the sender is a LAN member of it; otherwise it declines it with a code
(docs/protocol.md "Files"), never filing it under a group it is not in.
"""

from __future__ import annotations

from p2pchat.control.api import SentFilesView
from p2pchat.errors import UserError
from p2pchat.node.files import GroupOfferRefused, LanFiles
from p2pchat.node.groups import LanGroups
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.group_members import MemberKind
from p2pchat.store.conversation_id import group_id_of


class GroupFiles:
    def __init__(self, groups: LanGroups, files: LanFiles) -> None:
        self._groups = groups
        self._files = files
        files.check_group_offer = self.check_offer
        files.group_name = self.group_name

    async def async_send(self, conversation: str, path: str) -> SentFilesView:
        group_id = group_id_of(conversation)
        state = self._groups.state(group_id) if group_id is not None else None
        if state is None:
            raise UserError("no such group")
        if state.status is not gs.Status.ACTIVE:
            raise UserError(f"you are no longer in {state.name}: nothing sent")
        others = [m for m in state.members.members if m.key != state.my_key]
        lan = [m.key for m in others if m.kind is MemberKind.LAN]
        guests = [m.name for m in others if m.kind is MemberKind.GUEST]
        if not lan:
            why = " (files to browser guests: not yet)" if guests else ""
            raise UserError(f"{state.name} has no other LAN members to send a file to{why}")
        views = await self._files.async_send_group_file(state.group_id, lan, path)
        return SentFilesView(views, guests)

    def check_offer(self, sender_key: bytes, group_id: bytes) -> str:
        """The sender's name on my list, if a group's offer from it is one to take."""
        state = self._groups.state(group_id)
        if state is None:
            raise GroupOfferRefused("group-unknown", "this node holds no such group")
        if state.status is not gs.Status.ACTIVE or state.members.member(state.my_key) is None:
            raise GroupOfferRefused("group-not-in", f"this node is not in {state.name}")
        member = state.members.member(sender_key)
        if member is None or member.kind is not MemberKind.LAN:
            raise GroupOfferRefused(
                "group-not-member", f"the sender is not a member of {state.name}"
            )
        return member.name

    def group_name(self, group_id: bytes) -> str | None:
        state = self._groups.state(group_id)
        return None if state is None else state.name
