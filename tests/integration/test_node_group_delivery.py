"""Groups on a real profile, no network (as test_node_groups.py), with members' sessions
stood in for by small recording links: a removed member's chain after a restart, who
has my group messages (receipts for their copies), a member whose p2pchat is from
before groups, and a member named as one of my contacts under another key.

The same with real nodes and real receipts: tests/lan/test_groups.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from nacl.signing import SigningKey

import p2pchat.store
from p2pchat.cli import main
from p2pchat.commands.group_cmds import _print_group
from p2pchat.commands.node_cmds import _group_changed_line
from p2pchat.crypto.identity import Identity, peer_id
from p2pchat.node import Node, NodeConfig
from p2pchat.node.core_protocol import ConversationRef
from p2pchat.node.events import GroupChanged, GroupMessageRefused, NodeEvent, ReceiptEvent
from p2pchat.node.links import PeerLink
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.events import GroupFrameReceived, ReceiptReceived
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import Member, MemberKind
from p2pchat.protocol.group_messages import copy_id_of, message_id_of
from p2pchat.store import KdfLimits, Profile, contact_conversation_id, create_profile
from p2pchat.store.records import Contact, GroupState, StoredGroup, TrustState

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "pw"


class _Session:
    def __init__(self, *, groups: bool = True) -> None:
        self.groups = groups

    def send_receipt(self, message_id: bytes, now_ms: int) -> bytes:
        return b"R" + message_id

    def send_group_list(self, data: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"L" + message_id + data

    def send_group_message(self, data: bytes, now_ms: int, *, message_id: bytes) -> bytes:
        return b"M" + message_id + data


class _Link:
    """What the node uses of a member's session: its key, send, close, state."""

    def __init__(self, key: bytes, *, groups: bool = True) -> None:
        self.peer_key = key
        self.session = _Session(groups=groups)
        self.state = "open"
        self.sent: list[bytes] = []
        self.sent_ids: set[bytes] = set()
        self.closed: str | None = None

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self, reason: str) -> None:
        self.closed, self.state = reason, "closed"


def link_of(key: bytes, *, groups: bool = True) -> PeerLink:
    return cast(PeerLink, _Link(key, groups=groups))


def ref_of(key: bytes, name: str) -> ConversationRef:
    return ConversationRef(contact_conversation_id(key), peer_id(key), name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "me"


@pytest.fixture
async def profile(data_dir: Path) -> AsyncIterator[Profile]:
    made = create_profile(
        data_dir, PASSPHRASE, name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )
    with made:
        yield made


def events_of(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[NodeEvent]:
    seen: list[NodeEvent] = []
    monkeypatch.setattr(node, "emit", seen.append)
    return seen


def befriend(profile: Profile, name: str) -> SigningKey:
    key = SigningKey.generate()
    profile.upsert_contact(
        Contact(bytes(key.verify_key), name, TrustState.ACCEPTED, verified=False, pinned_at_ms=0)
    )
    return key


def refusals(events: list[NodeEvent]) -> list[str]:
    return [e.code for e in events if isinstance(e, GroupMessageRefused)]


async def test_a_removed_member_re_added_after_a_restart_cannot_replay(
    profile: Profile, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = befriend(profile, "bob")
    bob_key = bytes(bob.verify_key)
    befriend(profile, "carol")
    node = Node(profile, NodeConfig(data_dir=data_dir))
    view = await node.async_group_create("family", ["bob", "carol"])
    gid = bytes.fromhex(view.group_id)
    # bob's side: he joins from my list and writes one message
    held = node.profile.groups.get(gid)
    assert held is not None
    joined = gs.join(held.member_list, bob_key, node.identity.public_key)
    assert joined.state is not None
    sent = gs.next_message(joined.state, bob, "from before", 1_000)
    me = node.identity.public_key
    frame = GroupFrameReceived(
        FrameType.GROUP_MESSAGE, copy_id_of(sent.message_id, me), 1_000, sent.encoded
    )
    events = events_of(node, monkeypatch)
    node.groups.on_frame(link_of(bob_key), frame, ref_of(bob_key, "bob"))
    assert [m.body for m in node.profile.messages(view.conversation)] == ["from before"]

    await node.async_group_remove("family", "bob")
    again = Node(profile, NodeConfig(data_dir=data_dir))  # a restart of the admin
    await again.async_group_add("family", "bob")
    events = events_of(again, monkeypatch)
    # bob replays his old message under a frame id of his choosing (a copy id is his to pick)
    replay = GroupFrameReceived(FrameType.GROUP_MESSAGE, os.urandom(16), 2_000, sent.encoded)
    link = link_of(bob_key)
    again.groups.on_frame(link, replay, ref_of(bob_key, "bob"))
    assert refusals(events) == ["group-replay"]
    assert cast(_Link, link).sent[-1].startswith(b"R")  # dealt with: acknowledged
    # his next message (seq 2) is still taken
    nxt = gs.next_message(sent.state, bob, "after", 3_000)
    again.groups.on_frame(
        link,
        GroupFrameReceived(FrameType.GROUP_MESSAGE, copy_id_of(nxt.message_id, me), 3_000,
                           nxt.encoded),
        ref_of(bob_key, "bob"),
    )  # fmt: skip
    assert refusals(events) == ["group-replay"]
    assert [m.body for m in again.profile.messages(view.conversation)] == ["from before", "after"]


async def test_receipts_of_copies_count_for_my_group_message(
    profile: Profile,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = {name: bytes(befriend(profile, name).verify_key) for name in ("bob", "carol", "dave")}
    node = Node(profile, NodeConfig(data_dir=data_dir))
    view = await node.async_group_create("family", ["bob", "carol", "dave"])
    await node.async_send("family", "first")
    sent = await node.async_send("family", "second")
    await node.async_send("dave", "a 1:1 text")
    mid = bytes.fromhex(sent.message_id)
    events = events_of(node, monkeypatch)
    for name in ("bob", "carol", "bob"):  # bob's receipt twice: counted once
        key = keys[name]
        receipt = ReceiptReceived(copy_id_of(mid, key))
        node.on_session_event(link_of(key), receipt, ref_of(key, name))
    (text,) = node.profile.pending_outbox(contact_conversation_id(keys["dave"]))[-1:]
    node.on_session_event(
        link_of(keys["dave"]), ReceiptReceived(text.message_id), ref_of(keys["dave"], "dave")
    )
    receipts = [e for e in events if isinstance(e, ReceiptEvent)]
    assert receipts == [
        ReceiptEvent(view.conversation, peer_id(keys["bob"]), sent.message_id),
        ReceiptEvent(view.conversation, peer_id(keys["carol"]), sent.message_id),
        # the 1:1 path as before: its own conversation and message id
        ReceiptEvent(contact_conversation_id(keys["dave"]), peer_id(keys["dave"]),
                     text.message_id.hex()),
    ]  # fmt: skip
    node.marks.flush()
    profile.close()  # what history shows comes from the profile on disk

    monkeypatch.setenv("P2PCHAT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setattr(  # the profile's KDF as made here (fast), as test_control does
        p2pchat.store, "open_profile",
        functools.partial(p2pchat.store.open_profile, kdf_limits=FAST),
    )  # fmt: skip
    assert main(["--data-dir", str(data_dir), "history", "family", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["text"], r["delivered_to"]) for r in rows] == [
        ("first", []),
        ("second", sorted([peer_id(keys["bob"]), peer_id(keys["carol"])])),
    ]
    assert main(["--data-dir", str(data_dir), "history", "dave", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert "delivered_to" not in row
    assert row["delivery"] == "delivered"


async def test_a_member_with_an_older_p2pchat_needs_a_newer_one(
    profile: Profile, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = bytes(befriend(profile, "bob").verify_key)
    carol = bytes(befriend(profile, "carol").verify_key)
    node = Node(profile, NodeConfig(data_dir=data_dir))
    await node.async_group_create("family", ["bob", "carol"])
    node.links[bob] = link_of(bob, groups=False)  # its session did not announce groups=1
    node.links[carol] = link_of(carol)
    (view,) = await node.async_groups()
    assert [(m.name, m.online, m.needs_upgrade) for m in view.members] == [
        ("me", True, False), ("bob", False, True), ("carol", True, False),
    ]  # fmt: skip
    _print_group(json.loads(json.dumps(dataclasses.asdict(view))))
    lines = capsys.readouterr().out.splitlines()
    bob_line = next(line for line in lines if line.strip().startswith("bob"))
    assert bob_line.rstrip().endswith("needs a newer p2pchat")
    carol_line = next(line for line in lines if line.strip().startswith("carol"))
    assert carol_line.rstrip().endswith("yes")


async def test_a_list_naming_someone_as_my_contact_under_another_key(
    profile: Profile,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    me_key = Identity(profile.identity.seed).public_key
    ann = befriend(profile, "ann")  # the admin, my contact
    real_bob = befriend(profile, "Bob")  # my contact Bob
    fake_bob = SigningKey.generate()  # someone else the admin lists as "bob"
    dan = SigningKey.generate()
    members = [Member(MemberKind.LAN, me_key, "me")]
    created = gs.create(ann, "ann", "club", members)
    profile.groups.save(
        StoredGroup(created.state.group_id, "club", bytes(ann.verify_key), 1,
                    created.encoded, 1, GroupState.ACTIVE, 0)
    )  # fmt: skip
    node = Node(profile, NodeConfig(data_dir=data_dir))
    events = events_of(node, monkeypatch)
    state = created.state
    lists = []
    for member in (
        Member(MemberKind.LAN, bytes(fake_bob.verify_key), "bob"),
        Member(MemberKind.LAN, bytes(real_bob.verify_key), "Bob"),
        Member(MemberKind.LAN, bytes(dan.verify_key), "dan"),
    ):
        sent = gs.add_member(state, ann, member)
        state = sent.state
        lists.append(sent.encoded)
    ann_key = bytes(ann.verify_key)
    for encoded in lists:
        frame = GroupFrameReceived(
            FrameType.GROUP_LIST, copy_id_of(message_id_of(encoded), me_key), 0, encoded
        )
        node.groups.on_frame(link_of(ann_key), frame, ref_of(ann_key, "ann"))
    clashes = [
        (e.member_id, e.member_name)
        for e in events
        if isinstance(e, GroupChanged) and e.change == "name_clash"
    ]
    assert clashes == [(peer_id(bytes(fake_bob.verify_key)), "bob")]
    (clash,) = [e for e in events if isinstance(e, GroupChanged) and e.change == "name_clash"]
    line = _group_changed_line(clash.to_json())
    assert "is not your contact bob" in line
    assert peer_id(bytes(fake_bob.verify_key)) in line
    (view,) = await node.async_groups()
    assert {m.name: m.not_contact for m in view.members} == {
        "me": None, "ann": None, "bob": "Bob", "Bob": None, "dan": None,
    }  # fmt: skip
    _print_group(json.loads(json.dumps(dataclasses.asdict(view))))
    out = capsys.readouterr().out
    assert "bob (not your contact Bob)" in out
    assert out.count("not your contact") == 1
