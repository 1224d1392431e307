"""A node-less stand-in for the main screen: a scripted NodeApi and history.

For snapshot tests of the rendering only; the real flow is tested against the
real node (test_tui_lan.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

from p2pchat.control.api import (
    ContactView,
    FileView,
    GroupMemberView,
    GroupView,
    GuestView,
    InviteView,
    PeerView,
    SafetyView,
    SentFilesView,
    SentView,
    ServerView,
    StatusView,
)
from p2pchat.errors import UserError
from p2pchat.node.events import (
    FileCancelled,
    FileProgress,
    GroupChanged,
    GuestJoined,
    MessageEvent,
    NodeEvent,
)
from p2pchat.node.invite_server import parse_server_url
from p2pchat.store import ConversationSummary, SearchHit, StoredMessage
from p2pchat.store.records import DeliveryState, Direction, MessageKind
from p2pchat.tui.history import MARK_END, MARK_START
from p2pchat.tui.main_screen import MainScreen

# A fixed moment (2026-03-14 09:26:53 UTC) so snapshots do not depend on the clock.
NOW_S = 1_773_480_413
NOW_MS = NOW_S * 1000

ME = StatusView(
    name="alice", peer_id="abcd-efgh-ijkl-mnop", port=45123, instance="alice", data_dir="/x"
)
BOB = ContactView(
    peer_id="bobb-2345-6789-qrst", name="bob", state="accepted", verified=True,
    fingerprint="1a2b " * 15 + "1a2b", online=True,
)  # fmt: skip
CAROL = ContactView(
    peer_id="caro-7777-8888-wxyz", name="carol", state="accepted", verified=False,
    fingerprint="9f8e " * 15 + "9f8e", online=False,
)  # fmt: skip
DAVE = ContactView(
    peer_id="dave-1111-2222-3333", name="dave", state="pending_incoming", verified=False,
    fingerprint="7c6d " * 15 + "7c6d", online=True,
)  # fmt: skip
# As long as a real link: a 22-character room id, a 43-character secret.
INVITE_URL = "https://192.168.1.20:43117/c/8k6yjM-9dkiCjxebhKMO_A#cDVVMvBeANn8-dZCUtvaxtmNKYEc42WhqRaKRf2rZUw"
SAFETY = "12345 67890 13579 24680 11223 34455 66778 89900 10293 84756 56473 82910"


@dataclass
class FakeNode:
    """NodeApi over canned data; ``events`` are what subscribe() yields, in order."""

    contacts: list[ContactView] = field(default_factory=lambda: [BOB, CAROL, DAVE])
    events: list[NodeEvent] = field(default_factory=list)
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    queue: asyncio.Queue[NodeEvent] = field(default_factory=asyncio.Queue)
    invites: dict[str, InviteView] = field(default_factory=dict)
    invite_url: str = INVITE_URL
    now: Callable[[], float] = time.time  # the invites' clock
    groups: dict[str, GroupView] = field(default_factory=dict)  # by conversation
    refuse_keep: str | None = None  # the node's line for a keep it refuses (a guest gone)
    files: dict[str, FileView] = field(default_factory=dict)  # by transfer id
    server: ServerView = field(default_factory=lambda: ServerView(None, False, None))
    _sent: int = 0

    async def async_status(self) -> StatusView:
        return ME

    async def async_peers(self) -> list[PeerView]:
        return []

    async def async_contacts(self) -> list[ContactView]:
        return list(self.contacts)

    async def async_add_contact(self, peer: str) -> ContactView:
        self.calls.append(("add", (peer,)))
        view = ContactView(peer, "erin", "pending_outgoing", False, "00", True)
        self.contacts.append(view)
        return view

    async def async_requests(self) -> list[ContactView]:
        return [c for c in self.contacts if c.state == "pending_incoming"]

    async def async_accept(self, peer: str) -> ContactView:
        return self._settle(peer, "accepted")

    async def async_reject(self, peer: str) -> ContactView:
        return self._settle(peer, "rejected")

    async def async_verify(self, peer: str, *, mark_verified: bool) -> SafetyView:
        self.calls.append(("verify", (peer, mark_verified)))
        view = next(c for c in self.contacts if c.peer_id == peer)
        return SafetyView(peer, view.name, SAFETY, "p2pchat:safety:1:" + SAFETY.replace(" ", ""),
                          view.verified or mark_verified)  # fmt: skip

    async def async_send(self, peer: str, text: str) -> SentView:
        self.calls.append(("send", (peer, text)))
        if not text:
            raise UserError("the message is empty")
        self._sent += 1
        message_id = f"ff{self._sent:030x}"
        group = self.groups.get(peer)
        if group is not None:  # the node's send takes a group's conversation id too
            if group.state != "active":
                raise UserError(f"you are no longer in the group {group.name}")
            await self.queue.put(
                MessageEvent(group.conversation, ME.peer_id, ME.name, "out", message_id,
                             NOW_MS, text, group.group_id, group.name, ME.peer_id)
            )  # fmt: skip
            return SentView(group.conversation, message_id, "queued")
        await self.queue.put(MessageEvent(peer, peer, ME.name, "out", message_id, NOW_MS, text))
        return SentView(peer, message_id, "sent")

    async def async_send_many(self, sends: Sequence[tuple[str, str]]) -> list[SentView | UserError]:
        results: list[SentView | UserError] = []
        for peer, text in sends:
            try:
                results.append(await self.async_send(peer, text))
            except UserError as exc:
                results.append(exc)
        return results

    # -- files: the node's answers and events, without bytes moving ---------------------

    async def async_send_files(self, peer: str, path: str) -> SentFilesView:
        group = self.groups.get(peer)
        if group is None:
            return SentFilesView([await self.async_send_file(peer, path)])
        self.calls.append(("send_files", (peer, path)))
        size = _file_size(path)
        if size is None:
            raise UserError(f"no such file: {path}")
        views = []
        for member in group.members:  # the node's rule: one transfer per other LAN member
            if member.me or member.kind != "lan":
                continue
            transfer_id = f"f1{len(self.files) + 1:030x}"
            view = FileView(transfer_id, group.conversation, member.peer_id, member.name, "out",
                            Path(path).name, size, 0, "queued", path, None,
                            group=group.name)  # fmt: skip
            self.files[transfer_id] = view
            views.append(view)
        guests = [m.name for m in group.members if m.kind == "guest"]
        return SentFilesView(views, guests)

    async def async_send_file(self, peer: str, path: str) -> FileView:
        self.calls.append(("send_file", (peer, path)))
        if peer.startswith("guest:"):  # as the node: a guest's label is its conversation
            conversation, peer_id, name = peer, peer, peer
        else:
            contact = self._contact(peer)
            conversation, peer_id = f"contact:{contact.peer_id}", contact.peer_id
            name = contact.name
        size = _file_size(path)
        if size is None:
            raise UserError(f"no such file: {path}")
        transfer_id = f"f1{len(self.files) + 1:030x}"
        view = FileView(transfer_id, conversation, peer_id, name,
                        "out", Path(path).name, size, 0, "queued", path, None)  # fmt: skip
        self.files[transfer_id] = view
        await self.queue.put(
            FileProgress(transfer_id, view.conversation, peer_id, "out", view.name,
                         "queued", 0, size, 0, None)
        )  # fmt: skip
        return view

    async def async_files(self) -> list[FileView]:
        return list(self.files.values())

    async def async_file_accept(self, transfer: str, to: str | None = None) -> FileView:
        self.calls.append(("file_accept", (transfer, to)))
        view = self.files.get(transfer)
        if view is None or view.direction != "in" or view.state != "offered":
            raise UserError(f"no offered file {transfer}")
        view = self.files[transfer] = replace(view, state="accepted")
        return view

    async def async_file_cancel(self, transfer: str) -> FileView:
        self.calls.append(("file_cancel", (transfer,)))
        view = self.files.get(transfer)
        if view is None or view.state in ("done", "failed", "cancelled", "declined"):
            raise UserError(f"no transfer {transfer} to cancel")
        state = "declined" if view.state == "offered" else "cancelled"
        view = self.files[transfer] = replace(view, state=state, error="cancelled by you")
        await self.queue.put(
            FileCancelled(transfer, view.conversation, view.peer_id, view.direction, view.name,
                          "me")
        )  # fmt: skip
        return view

    # -- groups: the node's rules (docs/protocol.md "Groups"), over plain dicts --------

    async def async_groups(self) -> list[GroupView]:
        return sorted(self.groups.values(), key=lambda g: g.name.lower())

    async def async_group_create(self, name: str, members: Sequence[str]) -> GroupView:
        self.calls.append(("group_create", (name, tuple(members))))
        size = len(name.encode("utf-8", "surrogatepass"))
        if not 1 <= size <= 64 or any(ord(c) < 0x20 for c in name):
            raise UserError("a group name is 1 to 64 bytes, without control characters")
        if any(g.name == name and g.state == "active" for g in self.groups.values()):
            raise UserError(f"you are in a group named {name} already")
        chosen = [self._contact(m) for m in members]
        group_id = f"{len(self.groups) + 1:032x}"
        me = GroupMemberView(ME.peer_id, ME.name, "lan", admin=True, me=True, online=True,
                             contact=False)  # fmt: skip
        view = GroupView(group_id, name, f"group:{group_id}", 1, ME.peer_id, True, "active",
                         [me] + [self._member(c) for c in dict.fromkeys(chosen)])  # fmt: skip
        self.groups[view.conversation] = view
        await self.queue.put(GroupChanged(group_id, name, "created", None, None, 1))
        return view

    async def async_group_add(self, group: str, member: str) -> GroupView:
        self.calls.append(("group_add", (group, member)))
        view = self._admin_group(group, "add")
        contact = self._contact(member)
        if any(m.peer_id == contact.peer_id for m in view.members):
            raise UserError(f"{contact.name} is in {view.name} already")
        new = replace(view, epoch=view.epoch + 1, members=[*view.members, self._member(contact)])
        return await self._changed(new, "member_added", contact.peer_id, contact.name)

    async def async_group_remove(self, group: str, member: str) -> GroupView:
        self.calls.append(("group_remove", (group, member)))
        view = self._admin_group(group, "remove")
        gone = next((m for m in view.members if member in (m.peer_id, m.name)), None)
        if gone is None:
            raise UserError(f"{member} is not a member of {view.name}")
        if gone.me:
            raise UserError("to take yourself out of a group, leave it")
        kept = [m for m in view.members if m is not gone]
        new = replace(view, epoch=view.epoch + 1, members=kept)
        return await self._changed(new, "member_removed", gone.peer_id, gone.name)

    async def async_group_keep(self, group: str, guest: str) -> GroupView:
        """As the node (group_guests.async_keep): the admin's, for a listed guest; no event."""
        self.calls.append(("group_keep", (group, guest)))
        view = self._group(group)
        if not view.am_admin:
            admin = next(m.name for m in view.members if m.admin)
            raise UserError(f"only {admin} can keep guests in {view.name}: they host them")
        target = next((m for m in view.members if m.kind == "guest" and m.peer_id == guest), None)
        if target is None:
            raise UserError(f"no guest {guest} in {view.name}")
        if self.refuse_keep is not None:
            raise UserError(self.refuse_keep)
        members = [replace(m, kept=True) if m is target else m for m in view.members]
        self.groups[view.conversation] = new = replace(view, members=members)
        return new

    async def async_group_leave(self, group: str) -> GroupView:
        self.calls.append(("group_leave", (group,)))
        view = self._group(group)
        if view.am_admin and len(view.members) > 1:
            raise UserError(f"you are the admin of {view.name}: remove the other members first")
        new = replace(view, state="left")
        return await self._changed(new, "you_left", None, None)

    def _group(self, group: str) -> GroupView:
        found = [g for g in self.groups.values() if group in (g.name, g.conversation)]
        if len(found) != 1:
            raise UserError(f"no group {group}")
        if found[0].state != "active":
            raise UserError(f"you are no longer in the group {found[0].name}")
        return found[0]

    def _admin_group(self, group: str, verb: str) -> GroupView:
        view = self._group(group)
        if not view.am_admin:
            admin = next(m.name for m in view.members if m.admin)
            raise UserError(f"only the admin of {view.name} ({admin}) can {verb} members")
        return view

    def _contact(self, peer: str) -> ContactView:
        for contact in self.contacts:
            if peer in (contact.peer_id, contact.name) and contact.state == "accepted":
                return contact
        raise UserError(f"{peer} is not one of your contacts")

    @staticmethod
    def _member(contact: ContactView) -> GroupMemberView:
        return GroupMemberView(contact.peer_id, contact.name, "lan", admin=False, me=False,
                               online=contact.online, contact=True)  # fmt: skip

    async def _changed(
        self, view: GroupView, change: str, member_id: str | None, member_name: str | None
    ) -> GroupView:
        self.groups[view.conversation] = view
        await self.queue.put(
            GroupChanged(view.group_id, view.name, change, member_id, member_name, view.epoch)
        )
        return view

    def join_group(self, name: str, admin: ContactView, others: Sequence[ContactView]) -> GroupView:
        """Someone else's group that I am in (as if their member list had come)."""
        group_id = f"{len(self.groups) + 1:032x}"
        me = GroupMemberView(ME.peer_id, ME.name, "lan", admin=False, me=True, online=True,
                             contact=False)  # fmt: skip
        members = [replace(self._member(admin), admin=True), me]
        members += [self._member(c) for c in others]
        view = GroupView(group_id, name, f"group:{group_id}", 3, admin.peer_id, False, "active",
                         members)  # fmt: skip
        self.groups[view.conversation] = view
        return view

    async def async_invite(
        self,
        *,
        expires_s: int,
        uses: int,
        label: str | None,
        approve: bool,
        group: str | None = None,
        server: str | None = None,
        server_token: str | None = None,
        password: bytes | None = None,
    ) -> InviteView:
        self.calls.append(("invite", (expires_s, uses, group)))
        if password is not None:
            self.calls.append(("invite password", (password,)))
        if server is None and self.server.url is not None:  # the saved default, as the node
            server = self.server.url
        if group is not None:  # the node's rule (groups.invite_group)
            view = self._group(group)
            if not view.am_admin:
                admin = next(m.name for m in view.members if m.admin)
                raise UserError(f"only {admin} can invite guests to {view.name}: ask them")
        n = len(self.invites) + 1
        url = self.invite_url if n == 1 else f"{self.invite_url[:-2]}{n:02d}"
        url += ".pw" if password is not None else ""  # as the node's links
        view = InviteView(
            invite_id=f"inv{n}", url=url, label=label, expires_at=int(self.now() + expires_s),
            seconds_left=expires_s, uses_left=uses, approve=approve, guests=0, revoked=False,
            certificate_sha256="ab:cd:ef:01:23:45:67:89:" * 4, server=server,
            server_state="connecting" if server else None, password=password is not None,
        )  # fmt: skip
        self.invites[view.invite_id] = view
        return view

    async def async_server(self) -> ServerView:
        return self.server

    async def async_server_set(self, url: str, token: str | None) -> ServerView:
        self.calls.append(("server set", (url, token)))
        self.server = ServerView(parse_server_url(url).base, token is not None, None)
        return self.server

    async def async_server_clear(self) -> ServerView:
        self.calls.append(("server clear", ()))
        self.server = ServerView(None, False, None)
        return self.server

    async def async_invites(self) -> list[InviteView]:
        """As the node: the links that still take connections (new or returning guests)."""
        now = self.now()
        return [
            v for v in self.invites.values()
            if not v.revoked and v.expires_at > now and (v.uses_left > 0 or v.guests > 0)
        ]  # fmt: skip

    async def async_revoke(self, invite_id: str) -> InviteView:
        self.calls.append(("revoke", (invite_id,)))
        view = self.invites[invite_id] = replace(self.invites[invite_id], revoked=True)
        return view

    def guest_joins(self, invite_id: str, label: str, name: str) -> GuestJoined:
        """A guest came in through ``invite_id``: one use consumed; the event to emit."""
        view = self.invites[invite_id]
        self.invites[invite_id] = replace(
            view, uses_left=view.uses_left - 1, guests=view.guests + 1
        )
        return GuestJoined(label, name, invite_id, "12345 67890 13579", "direct")

    async def async_admit(self, guest: str, *, admit: bool) -> GuestView:
        return GuestView(guest, "guest", "admitted" if admit else "refused")

    async def subscribe(self) -> AsyncIterator[NodeEvent]:
        for event in self.events:
            yield event
        while True:
            yield await self.queue.get()

    def _settle(self, peer: str, state: str) -> ContactView:
        self.calls.append((state, (peer,)))
        view = next(c for c in self.contacts if c.peer_id == peer)
        new = replace(view, state=state)
        self.contacts[self.contacts.index(view)] = new
        return new


def group_message(
    group: GroupView,
    sender: ContactView | GroupMemberView,
    n: int,
    text: str,
    *,
    missing_before: int = 0,
    name: str | None = None,
) -> MessageEvent:
    """A member's message in ``group`` (``name``: what their member list entry says)."""
    return MessageEvent(
        group.conversation, sender.peer_id, name or sender.name, "in", f"cc{n:030x}",
        NOW_MS - (10 - n) * 60_000, text, group.group_id, group.name, sender.peer_id,
        missing_before,
    )  # fmt: skip


def stored(
    label: str, n: int, text: str, direction: str, delivery: str, sender: str
) -> StoredMessage:
    return StoredMessage(
        message_id=n.to_bytes(16, "big"), conversation_id=label, direction=Direction(direction),
        sender=sender, timestamp_ms=NOW_MS - (10 - n) * 60_000, body=text,
        delivery=DeliveryState(delivery),
    )  # fmt: skip


def _file_size(path: str) -> int | None:
    file = Path(path)
    return file.stat().st_size if file.is_file() else None


def file_row(label: str, n: int, name: str, direction: str, sender: str) -> StoredMessage:
    """A transfer's history row (its message id is the transfer id)."""
    return replace(stored(label, n, name, direction, "delivered", sender), kind=MessageKind.FILE)


@dataclass
class FakeHistory:
    keep_history: bool = True
    stored: dict[str, list[StoredMessage]] = field(default_factory=dict)
    # Of my group messages: label → message id → the members that have it.
    delivered: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def messages(self, label: str, *, limit: int) -> list[StoredMessage]:
        return self.stored.get(label, [])[-limit:]

    def reached(self, label: str) -> dict[str, list[str]]:
        return self.delivered.get(label, {})

    def search(self, query: str, *, limit: int) -> list[SearchHit]:
        hits = []
        for messages in self.stored.values():
            for message in reversed(messages):
                if query.lower() in message.body.lower():
                    start = message.body.lower().index(query.lower())
                    end = start + len(query)
                    body = message.body
                    snippet = body[:start] + MARK_START + body[start:end] + MARK_END + body[end:]
                    hits.append(SearchHit(message, snippet))
        return hits[:limit]

    def conversations(self) -> list[ConversationSummary]:
        return []

    def label_of(self, conversation_id: str) -> str:
        return conversation_id


def bob_history() -> FakeHistory:
    label = BOB.peer_id
    return FakeHistory(
        stored={
            label: [
                stored(
                    label, 1, "Are you coming to the board game night?", "in", "delivered", "bob"
                ),
                stored(label, 2, "Yes! I'll bring the snacks.", "out", "delivered", "alice"),
                stored(label, 3, "Great, see you at 8.", "in", "delivered", "bob"),
                stored(label, 4, "Can you print the rules sheet?", "out", "sent", "alice"),
                stored(label, 5, "On my way", "out", "pending", "alice"),
            ]
        }
    )


class MainScreenApp(App[None]):
    """Just the main screen, over fakes."""

    TITLE = "p2pchat"

    def __init__(self, node: FakeNode, history: FakeHistory, data_dir: Path | None = None) -> None:
        super().__init__()
        self.node = node
        self.history = history
        self.data_dir = data_dir

    def on_mount(self) -> None:
        self.push_screen(
            MainScreen(self.node, self.history, ME, data_dir=self.data_dir, clock=self.node.now)
        )

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[1]
        assert isinstance(screen, MainScreen)
        return screen


async def until(pilot: Pilot[None], predicate: Callable[[], object], what: str) -> None:
    """Let the app run until ``predicate()`` holds: workers and redraws take a few
    frames, more on a busy machine. The bound (10 s) is only there to end a failure."""
    for _ in range(200):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")
