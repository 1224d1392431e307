"""The host's side of guests in a group on a real profile, no network: the guest bound,
the admin-only invite, and guests listed by a node that stopped.

A guest's session is stood in for by a small recording link (the page's side runs in
tests/browser/test_group_guests.py with real Chromiums).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from nacl.signing import SigningKey

from p2pchat.crypto.identity import Identity
from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig
from p2pchat.node.links import PeerLink
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import Member, MemberKind, decode_member_list
from p2pchat.protocol.group_wire import MAX_GUESTS
from p2pchat.store import KdfLimits, Profile, contact_conversation_id, create_profile
from p2pchat.store.records import Contact, GroupState, StoredGroup, TrustState

FAST = KdfLimits(opslimit=1, memlimit=8192)


class _Session:
    groups = True

    def send_group_list(self, data: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"L" + message_id + data

    def send_group_message(self, data: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"M" + message_id + data


class _GuestLink:
    """What the groups module uses of a guest's session: send, close, state."""

    def __init__(self) -> None:
        self.session = _Session()
        self.state = "open"
        self.sent: list[bytes] = []
        self.closed: str | None = None

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self, reason: str) -> None:
        self.closed, self.state = reason, "closed"


def guest_link() -> tuple[_GuestLink, PeerLink]:
    link = _GuestLink()
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
        me = Identity(profile.identity.seed)
        admin = SigningKey.generate()
        sent = gs.create(admin, "ann", "book club", [Member(MemberKind.LAN, me.public_key, "me")])
        profile.groups.save(
            StoredGroup(sent.state.group_id, "book club", bytes(admin.verify_key), 1,
                        sent.encoded, 1, GroupState.ACTIVE, 0)
        )  # fmt: skip
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
