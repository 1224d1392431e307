"""The host's side of guests in a group on a real profile, no network: the guest bound,
the admin-only invite, guests listed by a node that stopped, and kept guests (listed
while away, what was sent meanwhile waiting in the host's outbox, delivered once, in
order, when the same page comes back).

A guest's session is stood in for by a small recording link (the page's side runs in
tests/browser/test_group_guests.py with real Chromiums).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from nacl.signing import SigningKey

from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig
from p2pchat.node.core_protocol import ConversationRef
from p2pchat.node.group_guests import MAX_KEPT_WAITING
from p2pchat.node.links import PeerLink
from p2pchat.protocol.events import ReceiptReceived, SessionOpened
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import decode_member_list
from p2pchat.protocol.group_messages import decode_group_message
from p2pchat.protocol.group_wire import MAX_GUESTS
from p2pchat.store import (
    KdfLimits,
    Profile,
    contact_conversation_id,
    create_profile,
    guest_conversation_id,
)
from p2pchat.store.records import Contact, TrustState
from tests.integration.group_setups import join_anns_book_club

FAST = KdfLimits(opslimit=1, memlimit=8192)


class _Session:
    groups = True
    files = False  # a guest's session has no file frames (node/files.py asks at open)

    def send_group_list(self, data: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"L" + message_id + data

    def send_group_message(self, data: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"M" + message_id + data


class _GuestLink:
    """What the groups module and the outbox flush use of a guest's session."""

    def __init__(self, guest_id: bytes) -> None:
        self.session = _Session()
        self.peer_key = guest_id  # a guest link is keyed by its page's guest id
        self.state = "open"
        self.sent: list[bytes] = []
        self.closed: str | None = None
        self.send_lock = asyncio.Lock()
        self.sent_ids: set[bytes] = set()

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def async_drain(self) -> None:
        await asyncio.sleep(0)

    def close(self, reason: str) -> None:
        self.closed, self.state = reason, "closed"


def guest_link(guest_id: bytes | None = None) -> tuple[_GuestLink, PeerLink]:
    link = _GuestLink(guest_id or os.urandom(16))
    return link, cast(PeerLink, link)


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    return create_profile(
        tmp_path / "me", "pw", name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )


@pytest.fixture
async def node(profile: Profile, tmp_path: Path) -> AsyncIterator[Node]:
    with profile:
        yield Node(profile, NodeConfig(data_dir=tmp_path / "me"))


def add_contact(profile: Profile, name: str) -> bytes:
    key = bytes(SigningKey.generate().verify_key)
    profile.upsert_contact(Contact(key, name, TrustState.ACCEPTED, verified=False, pinned_at_ms=0))
    return key


async def test_guests_are_listed_up_to_the_bound_then_refused(node: Node) -> None:
    add_contact(node.profile, "bob")
    view = await node.async_group_create("team", ["bob"])
    gid = bytes.fromhex(view.group_id)
    keys = [bytes(SigningKey.generate().verify_key) for _ in range(MAX_GUESTS + 1)]
    for i, key in enumerate(keys[:MAX_GUESTS]):
        raw, link = guest_link()
        assert node.groups.guests.guest_joined(gid, key, f"guest {i}", link)
        assert raw.sent[0].startswith(b"L")  # the list first
        assert raw.closed is None
    (team,) = await node.async_groups()
    assert [m.kind for m in team.members].count("guest") == MAX_GUESTS
    refusal = node.groups.guests.guest_refusal(gid, keys[-1])
    assert refusal == f"team has {MAX_GUESTS} guests already, the most a group holds"
    raw, link = guest_link()
    assert not node.groups.guests.guest_joined(gid, keys[-1], "one too many", link)
    assert raw.closed == refusal
    assert raw.sent == []
    # A guest already listed (coming back) is still let in.
    assert node.groups.guests.guest_refusal(gid, keys[0]) is None


async def test_a_guest_leaving_is_taken_off_and_the_list_queued_for_members(node: Node) -> None:
    bob = add_contact(node.profile, "bob")
    view = await node.async_group_create("team", ["bob"])
    gid = bytes.fromhex(view.group_id)
    key = bytes(SigningKey.generate().verify_key)
    _, link = guest_link()
    assert node.groups.guests.guest_joined(gid, key, "Zoë", link)
    node.groups.guests.guest_left(key, link)
    (team,) = await node.async_groups()
    assert [m.name for m in team.members] == ["me", "bob"]
    lists = [
        decode_member_list(e.payload or b"")
        for e in node.profile.pending_outbox(contact_conversation_id(bob))
        if e.frame_type == FrameType.GROUP_LIST
    ]
    assert [(lst.epoch, [m.name for m in lst.members]) for lst in lists] == [
        (1, ["me", "bob"]), (2, ["me", "bob", "Zoë"]), (3, ["me", "bob"]),
    ]  # fmt: skip


async def test_only_the_admin_may_invite_guests(profile: Profile, tmp_path: Path) -> None:
    with profile:
        join_anns_book_club(profile)
        node = Node(profile, NodeConfig(data_dir=tmp_path / "me"))
        with pytest.raises(UserError) as info:
            await node.async_invite(expires_s=60, uses=1, label=None, approve=False,
                                    group="book club")  # fmt: skip
        assert str(info.value) == "only ann can invite guests to book club: ask them"


async def test_guests_listed_before_a_restart_are_taken_off(
    profile: Profile, tmp_path: Path
) -> None:
    with profile:
        add_contact(profile, "bob")
        first = Node(profile, NodeConfig(data_dir=tmp_path / "me"))
        view = await first.async_group_create("team", ["bob"])
        gid = bytes.fromhex(view.group_id)
        for name in ("Zoë", "Yann"):
            _, link = guest_link()
            assert first.groups.guests.guest_joined(gid, bytes(SigningKey.generate().verify_key),
                                             name, link)  # fmt: skip
        again = Node(profile, NodeConfig(data_dir=tmp_path / "me"))  # its guests' sessions gone
        again.groups.guests.drop_stale_guests()
        (team,) = await again.async_groups()
        assert [m.name for m in team.members] == ["me", "bob"]
        assert team.epoch == 5  # two added, then both taken off


# -- kept guests ------------------------------------------------------------------------

ZOE_ID = bytes(range(16))  # the page's guest id: one tab keeps it (sessionStorage)
ZOE_CONVERSATION = guest_conversation_id("AAECAwQFBgcICQoLDA0ODw")
ZOE_REF = ConversationRef(ZOE_CONVERSATION, "guest:AAECAwQFBgcICQoLDA0ODw", "Zoë")


def texts(raw: _GuestLink) -> list[str]:
    """The group messages a guest's session carried, in order (lists left out)."""
    return [decode_group_message(d[17:]).text for d in raw.sent if d.startswith(b"M")]


async def settle(node: Node) -> None:
    """Let the flush tasks the node spawned run to their end (no clock involved)."""
    for _ in range(200):
        await asyncio.sleep(0)
    node.marks.flush()


async def kept_zoe(node: Node) -> tuple[bytes, bytes, _GuestLink, bytes]:
    """bob and a guest Zoë in "team"; Zoë kept. (group id, Zoë's key, her link, bob)."""
    bob = add_contact(node.profile, "bob")
    view = await node.async_group_create("team", ["bob"])
    gid = bytes.fromhex(view.group_id)
    key = bytes(SigningKey.generate().verify_key)
    raw, link = guest_link(ZOE_ID)
    assert node.groups.guests.guest_joined(gid, key, "Zoë", link)
    kept = await node.async_group_keep("team", "Zoë")
    (zoe,) = [m for m in kept.members if m.kind == "guest"]
    assert (zoe.name, zoe.kept, zoe.online) == ("Zoë", True, True)
    return gid, key, raw, bob


async def test_a_kept_guest_stays_listed_and_gets_what_was_sent_meanwhile_once_in_order(
    node: Node,
) -> None:
    gid, key, _, _ = await kept_zoe(node)
    first_raw, first = guest_link(ZOE_ID)
    assert node.groups.guests.guest_joined(gid, key, "Zoë", first)  # a reconnect
    first.close("the guest left")
    node.groups.guests.guest_left(key, first)
    (team,) = await node.async_groups()
    assert team.epoch == 2  # still listed: no list change
    (zoe,) = [m for m in team.members if m.kind == "guest"]
    assert (zoe.kept, zoe.online) == (True, False)
    sent = [await node.async_send("team", f"while away {i}") for i in range(3)]
    assert [s.status for s in sent] == ["queued"] * 3  # bob is offline, Zoë away
    await settle(node)
    assert len(node.profile.pending_outbox(ZOE_CONVERSATION)) == 3

    back_raw, back = guest_link(ZOE_ID)  # the same tab: same guest id, same group key
    assert node.groups.guests.guest_joined(gid, key, "Zoë", back)
    node.on_session_event(back, SessionOpened(), ZOE_REF)  # as guests.py does next
    await settle(node)
    assert back_raw.sent[0].startswith(b"L")  # the list first
    assert texts(back_raw) == ["while away 0", "while away 1", "while away 2"]
    (team,) = await node.async_groups()
    assert team.epoch == 2  # let in as the listed member: no new entry
    assert [m.name for m in team.members] == ["me", "bob", "Zoë"]
    for data in back_raw.sent:
        if data.startswith(b"M"):
            node.on_session_event(back, ReceiptReceived(data[1:17]), ZOE_REF)
    await node.async_send("team", "now")  # while it is here: in order after the rest
    await settle(node)
    assert texts(back_raw) == ["while away 0", "while away 1", "while away 2", "now"]
    node.on_session_event(back, ReceiptReceived(back_raw.sent[-1][1:17]), ZOE_REF)
    await settle(node)
    assert node.profile.pending_outbox(ZOE_CONVERSATION) == []

    again_raw, again = guest_link(ZOE_ID)  # once: nothing is sent again
    back.close("the guest reconnected")
    assert node.groups.guests.guest_joined(gid, key, "Zoë", again)
    node.on_session_event(again, SessionOpened(), ZOE_REF)
    await settle(node)
    assert texts(again_raw) == []
    assert first_raw.closed == "the guest left"


async def test_removing_a_kept_guest_takes_it_off_and_drops_its_queue(node: Node) -> None:
    _, key, raw, _ = await kept_zoe(node)
    node.groups.guests.guest_left(key, cast(PeerLink, raw))
    await node.async_send("team", "waits for Zoë")
    assert len(node.profile.pending_outbox(ZOE_CONVERSATION)) == 1
    team = await node.async_group_remove("team", "Zoë")
    assert [m.name for m in team.members] == ["me", "bob"]
    assert node.profile.pending_outbox(ZOE_CONVERSATION) == []
    assert not node.groups.guests.is_kept(key)
    await node.async_send("team", "after the removal")
    assert node.profile.pending_outbox(ZOE_CONVERSATION) == []


async def test_past_the_bound_a_kept_guest_is_taken_off_never_a_message_dropped(
    node: Node,
) -> None:
    _, key, raw, _ = await kept_zoe(node)
    node.groups.guests.guest_left(key, cast(PeerLink, raw))
    for i in range(MAX_KEPT_WAITING):
        await node.async_send("team", f"m{i}")
    assert len(node.profile.pending_outbox(ZOE_CONVERSATION)) == MAX_KEPT_WAITING
    (team,) = await node.async_groups()
    assert [m.name for m in team.members] == ["me", "bob", "Zoë"]
    await node.async_send("team", "one too many")
    (team,) = await node.async_groups()
    assert [m.name for m in team.members] == ["me", "bob"]  # a list change all members see
    assert node.profile.pending_outbox(ZOE_CONVERSATION) == []


async def test_kept_guests_are_taken_off_at_a_restart_with_their_queue(
    profile: Profile, tmp_path: Path
) -> None:
    with profile:
        first = Node(profile, NodeConfig(data_dir=tmp_path / "me"))
        _, key, raw, bob = await kept_zoe(first)
        first.groups.guests.guest_left(key, cast(PeerLink, raw))
        await first.async_send("team", "waits for Zoë")
        profile.enqueue_outbox(b"t" * 16, ZOE_CONVERSATION, "a 1:1 text", created_ms=1)
        again = Node(profile, NodeConfig(data_dir=tmp_path / "me"))  # its invite links gone
        again.groups.guests.drop_stale_guests()
        (team,) = await again.async_groups()
        assert [m.name for m in team.members] == ["me", "bob"]
        assert [e.body for e in profile.pending_outbox(ZOE_CONVERSATION)] == ["a 1:1 text"]
        assert len(profile.pending_outbox(contact_conversation_id(bob))) > 0


async def test_keep_names_a_listed_guest_and_is_the_admins(
    node: Node, profile: Profile, tmp_path: Path
) -> None:
    await kept_zoe(node)
    with pytest.raises(UserError) as info:
        await node.async_group_keep("team", "bob")
    line = str(info.value)
    assert line.startswith('no guest matches "bob"'), line
    assert "; guests: Zoë (" in line, line
    join_anns_book_club(profile)
    other = Node(profile, NodeConfig(data_dir=tmp_path / "me"))
    with pytest.raises(UserError) as info:
        await other.async_group_keep("book club", "Zoë")
    assert str(info.value) == "only ann can keep guests in book club: they host them"


async def test_a_full_groups_link_tells_a_new_page_before_it_joins(node: Node) -> None:
    add_contact(node.profile, "bob")
    gid = bytes.fromhex((await node.async_group_create("team", ["bob"])).group_id)
    assert node.groups.guests.newcomer_refusal(gid) is None
    for i in range(MAX_GUESTS):
        _, link = guest_link()
        assert node.groups.guests.guest_joined(
            gid, bytes(SigningKey.generate().verify_key), f"g{i}", link
        )
    assert node.groups.guests.newcomer_refusal(gid) == (
        f"team has {MAX_GUESTS} guests already, the most a group holds"
    )
