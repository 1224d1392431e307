"""The node's groups module on a real profile, no network: what each command stores.

The node is not started (no sockets, no mDNS): every member is offline, so what a
command does shows in the store (the group row, my chain, one outbox copy per
member) and in its answer. Delivery between real nodes is in tests/lan/test_groups.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pchat.cli import main
from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import decode_member_list
from p2pchat.protocol.group_messages import copy_id_of, decode_group_message
from p2pchat.store import KdfLimits, Profile, contact_conversation_id, create_profile
from p2pchat.store.records import Contact, GroupState, TrustState
from tests.integration.group_setups import join_anns_book_club

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "pw"


def contact(profile: Profile, name: str, trust: TrustState = TrustState.ACCEPTED) -> bytes:
    key = bytes(SigningKey.generate().verify_key)
    profile.upsert_contact(Contact(key, name, trust, verified=False, pinned_at_ms=0))
    return key


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    profile = create_profile(
        tmp_path / "me", PASSPHRASE, name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )
    with profile:
        yield Node(profile, NodeConfig(data_dir=tmp_path / "me"))


def copies(node: Node, key: bytes) -> list[tuple[int, bytes]]:
    return [
        (e.frame_type, e.payload or b"")
        for e in node.profile.pending_outbox(contact_conversation_id(key))
    ]


async def test_create_stores_the_list_and_queues_it_for_each_member(node: Node) -> None:
    bob, carol = contact(node.profile, "bob"), contact(node.profile, "carol")
    view = await node.async_group_create("family", ["bob", peer_id(carol)])
    assert view.name == "family"
    assert view.am_admin
    assert view.epoch == 1
    assert view.conversation == f"group:{view.group_id}"
    assert [(m.name, m.admin, m.me, m.online) for m in view.members] == [
        ("me", True, True, True), ("bob", False, False, False), ("carol", False, False, False),
    ]  # fmt: skip
    stored = node.profile.groups.get(bytes.fromhex(view.group_id))
    assert stored is not None
    assert stored.state is GroupState.ACTIVE
    for key in (bob, carol):
        ((frame_type, payload),) = copies(node, key)
        assert frame_type == FrameType.GROUP_LIST
        assert payload == stored.member_list
    assert [g.name for g in await node.async_groups()] == ["family"]


async def test_members_come_from_accepted_contacts_only(node: Node) -> None:
    contact(node.profile, "mallory", TrustState.PENDING_INCOMING)
    with pytest.raises(UserError, match="no contact matches") as info:
        await node.async_group_create("family", ["mallory"])
    assert "\n" not in str(info.value)
    assert await node.async_groups() == []


async def test_send_stores_once_and_queues_one_copy_per_member(node: Node) -> None:
    bob, carol = contact(node.profile, "bob"), contact(node.profile, "carol")
    group = await node.async_group_create("family", ["bob", "carol"])
    sent = await node.async_send("family", "hello all")
    assert sent.status == "queued"
    assert sent.conversation == group.conversation
    (stored,) = node.profile.messages(group.conversation)
    assert stored.body == "hello all"
    assert stored.sender_key == node.identity.public_key
    for key in (bob, carol):
        frame_type, payload = copies(node, key)[-1]
        assert frame_type == FrameType.GROUP_MESSAGE
        message = decode_group_message(payload)
        assert (message.seq, message.text, message.sender_key) == (
            1, "hello all", node.identity.public_key,
        )  # fmt: skip
        queued = node.profile.pending_outbox(contact_conversation_id(key))[-1]
        assert queued.message_id == copy_id_of(message.message_id, key)
    # by group:ID too
    await node.async_send(group.conversation[:12], "second")
    assert decode_group_message(copies(node, bob)[-1][1]).seq == 2


async def test_my_chain_survives_a_restart(node: Node, tmp_path: Path) -> None:
    bob = contact(node.profile, "bob")
    await node.async_group_create("family", ["bob"])
    await node.async_send("family", "one")
    again = Node(node.profile, NodeConfig(data_dir=tmp_path / "me"))
    await again.async_send("family", "two")
    first, second = (decode_group_message(p) for _, p in copies(again, bob)[1:])
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash != bytes(32)


async def test_a_name_that_is_a_contact_and_a_group_is_ambiguous(node: Node) -> None:
    contact(node.profile, "family")
    contact(node.profile, "bob")
    await node.async_group_create("Family", ["bob"])
    with pytest.raises(UserError, match="matches 2") as info:
        await node.async_send("family", "hi")
    assert "group:" in str(info.value)


async def test_remove_and_leave(node: Node) -> None:
    bob, carol = contact(node.profile, "bob"), contact(node.profile, "carol")
    await node.async_group_create("family", ["bob", "carol"])
    with pytest.raises(UserError, match="admin cannot leave"):
        await node.async_group_leave("family")
    view = await node.async_group_remove("family", "carol")
    assert view.epoch == 2
    assert [m.name for m in view.members] == ["me", "bob"]
    # the removed member is told too (its node then refuses the group's messages)
    latest = decode_member_list(copies(node, carol)[-1][1])
    assert latest.epoch == 2
    assert carol not in latest.keys
    await node.async_send("family", "after")
    assert copies(node, carol)[-1][0] == FrameType.GROUP_LIST
    assert copies(node, bob)[-1][0] == FrameType.GROUP_MESSAGE
    with pytest.raises(UserError, match="no member matches"):
        await node.async_group_remove("family", "carol")


async def test_only_the_admin_changes_members(tmp_path: Path) -> None:
    profile = create_profile(
        tmp_path / "me", PASSPHRASE, name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )
    with profile:
        contact(profile, "carol")
        ann = join_anns_book_club(profile)
        node = Node(profile, NodeConfig(data_dir=tmp_path / "me"))
        (view,) = await node.async_groups()
        assert not view.am_admin
        with pytest.raises(UserError, match="only the group's admin"):
            await node.async_group_add("book club", "carol")
        left = await node.async_group_leave("book club")
        assert left.state == "left"
        # the leave is a signed message to the admin's outbox
        queued = node.profile.pending_outbox(contact_conversation_id(ann))
        assert decode_group_message(queued[-1].payload or b"").kind == 2
        with pytest.raises(UserError):
            await node.async_send("book club", "hi")


def test_history_lists_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import functools

    import p2pchat.store

    monkeypatch.setattr(  # the profile's KDF as made here (fast), as test_control does
        p2pchat.store, "open_profile",
        functools.partial(p2pchat.store.open_profile, kdf_limits=FAST),
    )  # fmt: skip
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", PASSPHRASE)
    data_dir = tmp_path / "me"
    profile = create_profile(
        data_dir, PASSPHRASE, name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )
    with profile:
        contact(profile, "bob")

        async def make() -> None:
            node = Node(profile, NodeConfig(data_dir=data_dir))
            await node.async_group_create("family", ["bob"])
            await node.async_send("family", "dinner at 7")
            node.marks.flush()

        asyncio.run(make())
    env = ["--data-dir", str(data_dir)]
    assert main([*env, "history", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {c["name"]: c["kind"] for c in listing}["family"] == "group"
    assert main([*env, "history", "family", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["text"] == "dinner at 7"
    assert main([*env, "history", "--search", "dinner", "--json"]) == 0
    assert "dinner" in capsys.readouterr().out
    export = tmp_path / "family.json"
    assert main([*env, "history", "family", "--export", str(export)]) == 0
    capsys.readouterr()
    assert "dinner at 7" in export.read_text()
