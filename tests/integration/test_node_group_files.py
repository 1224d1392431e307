"""Files to a group (node/group_files.py over node/files.py) on a real profile and disk,
links faked as in test_node_files.py: the sender's fan-out (one history row, one
transfer per member, one read of the file) and the receiver's checks of a group's offer.
Real daemons: tests/lan/test_lan_group_files.py."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from nacl.signing import SigningKey

from p2pchat.crypto.identity import Identity, peer_id
from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig, file_io
from p2pchat.node.core_protocol import ConversationRef
from p2pchat.node.events import FileOffered
from p2pchat.node.files import takes_file_offer
from p2pchat.node.links import PeerLink
from p2pchat.protocol import group_state as gs
from p2pchat.protocol.events import FileFrameReceived
from p2pchat.protocol.file_wire import BLOCK_BYTES, ControlKind, FileOffer, decode_offer
from p2pchat.protocol.frames import FrameType
from p2pchat.protocol.group_members import Member, MemberKind
from p2pchat.store import contact_conversation_id, create_profile
from p2pchat.store.conversation_id import group_conversation_id
from p2pchat.store.records import (
    Contact,
    Direction,
    GroupState,
    MessageKind,
    StoredGroup,
    StoredTransfer,
    TransferState,
    TrustState,
)
from tests.integration.test_node_files import FAST, _Link, until

pytestmark = pytest.mark.usefixtures("seed")


@pytest.fixture
def seed() -> int:
    value = random.randrange(2**32)
    print(f"random seed: {value}")
    random.seed(value)
    return value


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    profile = create_profile(
        tmp_path / "me", "pw", name="me", identity_seed=os.urandom(32), kdf_limits=FAST
    )
    with profile:
        node = Node(profile, NodeConfig(data_dir=tmp_path / "me", downloads=tmp_path / "dl"))
        yield node
        node.files.stop()


def contact(node: Node, name: str, trust: TrustState = TrustState.ACCEPTED) -> bytes:
    key = bytes(SigningKey.generate().verify_key)
    node.profile.upsert_contact(Contact(key, name, trust, verified=False, pinned_at_ms=0))
    return key


def offers_queued(node: Node, key: bytes) -> list[tuple[bytes, FileOffer]]:
    return [
        (e.message_id, decode_offer(e.payload or b""))
        for e in node.profile.pending_outbox(contact_conversation_id(key))
        if e.frame_type == FrameType.FILE_OFFER
    ]


def source_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(random.randbytes(size))
    return path


# -- the sender ------------------------------------------------------------------------


async def test_a_group_file_is_one_history_row_and_one_transfer_per_member(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob, carol = contact(node, "bob"), contact(node, "carol")
    group = await node.async_group_create("team", ["bob", "carol"])
    source = source_file(tmp_path, 3 * BLOCK_BYTES + 5)
    reads: list[Path] = []
    real_hash = file_io.hash_file

    def counted(path: Path, **kwargs: object) -> bytes:
        reads.append(path)
        return real_hash(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(file_io, "hash_file", counted)
    sent = await node.async_send_files("team", str(source))
    assert sent.not_sent_to == []
    views = sent.files
    assert sorted(v.peer_name for v in views) == ["bob", "carol"]
    assert {v.group for v in views} == {"team"}
    assert {v.conversation for v in views} == {group.conversation}
    assert len({v.transfer_id for v in views}) == 2
    await until(lambda: not node.files._hashing)
    assert reads == [source]  # hashed once for both
    whole = hashlib.blake2b(source.read_bytes(), digest_size=32).digest()
    gid = bytes.fromhex(group.group_id)
    queued = {key: offers_queued(node, key) for key in (bob, carol)}
    keys = set()
    for key, offers in queued.items():
        ((tid, offer),) = offers
        assert offer.group_id == gid
        assert offer.file_hash == whole
        assert offer.name == "photo.jpg"
        held = node.profile.files.get(tid)
        assert held is not None
        assert (held.peer_key, held.conversation) == (key, group.conversation)
        keys.add(offer.file_key)
    assert len(keys) == 2  # a member cannot read (or forge) another member's chunks
    rows = node.profile.messages(group.conversation)
    files = [m for m in rows if m.kind is MessageKind.FILE]
    assert [(m.body, m.sender, m.direction) for m in files] == [("photo.jpg", "me", Direction.OUT)]
    for key in (bob, carol):  # nothing in the members' 1:1 histories
        assert node.profile.messages(contact_conversation_id(key)) == []
    listed = await node.async_files()
    assert sorted((f.peer_name, f.group, f.state) for f in listed) == [
        ("bob", "team", "queued"), ("carol", "team", "queued")
    ]  # fmt: skip


async def test_one_member_over_the_unfinished_bound_refuses_the_whole_send(
    node: Node, tmp_path: Path
) -> None:
    from p2pchat.store.files import MAX_UNFINISHED_PER_PEER

    bob, carol = contact(node, "bob"), contact(node, "carol")
    group = await node.async_group_create("team", ["bob", "carol"])
    for _ in range(MAX_UNFINISHED_PER_PEER):
        node.profile.files.add(_stored_out(carol), sender="me")
    source = source_file(tmp_path, 1000)
    with pytest.raises(UserError, match="carol"):
        await node.async_send_files("team", str(source))
    assert node.profile.files.count_unfinished_for(bob) == 0  # nothing half-sent
    assert [
        m for m in node.profile.messages(group.conversation) if m.kind is MessageKind.FILE
    ] == []


async def test_a_group_with_no_other_lan_member_sends_nothing(node: Node, tmp_path: Path) -> None:
    await node.async_group_create("alone", [])
    with pytest.raises(UserError, match="no other LAN members"):
        await node.async_send_files("alone", str(source_file(tmp_path, 10)))


async def test_a_contact_name_still_sends_one_file(node: Node, tmp_path: Path) -> None:
    contact(node, "bob")
    sent = await node.async_send_files("bob", str(source_file(tmp_path, 10)))
    ((view,),) = (sent.files,)
    assert (view.peer_name, view.group) == ("bob", None)


async def test_a_name_that_is_a_contact_and_a_group_is_ambiguous(
    node: Node, tmp_path: Path
) -> None:
    contact(node, "bob")
    contact(node, "team")
    await node.async_group_create("team", ["bob"])
    with pytest.raises(UserError, match="matches 2"):
        await node.async_send_files("team", str(source_file(tmp_path, 10)))
    assert await node.async_files() == []


async def test_a_group_offer_reoffered_at_session_open_names_the_group(
    node: Node, tmp_path: Path
) -> None:
    bob = contact(node, "bob")
    group = await node.async_group_create("team", ["bob"])
    (view,) = (await node.async_send_files("team", str(source_file(tmp_path, 10)))).files
    tid = bytes.fromhex(view.transfer_id)
    await until(lambda: not node.files._hashing)
    node.profile.remove_outbox(tid, contact_conversation_id(bob))  # delivered before
    link = _Link(bob)
    node.files.on_session_open(cast(PeerLink, link), _ref(bob, "bob"))
    (offer,) = [decode_offer(d[17:]) for d in link.sent if d[:1] == b"O"]
    assert offer.group_id == bytes.fromhex(group.group_id)


def test_a_group_offer_waits_for_a_peer_that_takes_them() -> None:
    v1 = FileOffer(1, BLOCK_BYTES, bytes(32), bytes(32), "", "a").encode()
    v2 = FileOffer(1, BLOCK_BYTES, bytes(32), bytes(32), "", "a", bytes(16)).encode()
    assert takes_file_offer({}, v1)
    assert not takes_file_offer({}, v2)
    assert takes_file_offer({"gfiles": "1"}, v2)


# -- the receiver ------------------------------------------------------------------------


class Group:
    """A group run by ann (not me), me and bob on it, held as a node that joined holds it."""

    def __init__(self, node: Node, *, me_on_it: bool = True) -> None:
        self.admin = SigningKey.generate()
        self.ann = bytes(self.admin.verify_key)
        self.bob = bytes(SigningKey.generate().verify_key)
        me = Identity(node.profile.identity.seed).public_key
        members = [Member(MemberKind.LAN, self.bob, "bob")]
        if me_on_it:
            members.append(Member(MemberKind.LAN, me, "me"))
        sent = gs.create(self.admin, "ann", "book club", members)
        self.gid = sent.state.group_id
        node.profile.groups.save(
            StoredGroup(self.gid, "book club", self.ann, 1, sent.encoded, 1,
                        GroupState.ACTIVE, 0)
        )  # fmt: skip
        node.groups._restore()
        # as adopting the list pins bob: a member, not a contact
        node.profile.upsert_contact(
            Contact(self.bob, "bob", TrustState.MEMBER, verified=False, pinned_at_ms=0)
        )
        self.conversation = group_conversation_id(self.gid)


def _ref(key: bytes, name: str) -> ConversationRef:
    return ConversationRef(contact_conversation_id(key), peer_id(key), name)


def _stored_out(key: bytes) -> StoredTransfer:
    return StoredTransfer(
        transfer_id=os.urandom(16), conversation=contact_conversation_id(key), peer_key=key,
        direction=Direction.OUT, name="x", size=1, block_bytes=BLOCK_BYTES,
        file_hash=bytes(32), file_key=os.urandom(32), mime="", state=TransferState.QUEUED,
        verified_blocks=0, source_path=None, partial_path=None, final_path=None, error=None,
        created_ms=0, updated_ms=0,
    )  # fmt: skip


def offer_from(
    node: Node, key: bytes, name: str, group_id: bytes, size: int = 10
) -> tuple[bytes, _Link]:
    link = _Link(key)
    node.links[key] = cast(PeerLink, link)
    tid = os.urandom(16)
    offer = FileOffer(size, BLOCK_BYTES, bytes(32), os.urandom(32), "", "notes.txt", group_id)
    event = FileFrameReceived(FrameType.FILE_OFFER, tid, offer.encode())
    node.files.on_frame(cast(PeerLink, link), event, _ref(key, name))
    return tid, link


async def test_a_group_offer_from_a_member_is_filed_under_the_group(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = Group(node)
    events: list[object] = []
    monkeypatch.setattr(node, "emit", events.append)
    tid, link = offer_from(node, group.bob, "bob", group.gid)  # bob: a member, not a contact
    held = node.profile.files.get(tid)
    assert held is not None
    assert held.conversation == group.conversation
    assert link.sent[0][:1] == b"R"  # receipted: its outbox entry goes
    (row,) = node.profile.messages(group.conversation)
    assert (row.kind, row.body, row.sender, row.sender_key) == (
        MessageKind.FILE, "notes.txt", "bob", group.bob
    )  # fmt: skip
    assert node.profile.messages(contact_conversation_id(group.bob)) == []
    # a member-only pin: it waits for `files accept`, never accepted by itself
    await until(lambda: any(isinstance(e, FileOffered) for e in events))
    (offered,) = [e for e in events if isinstance(e, FileOffered)]
    assert offered.conversation == group.conversation
    assert node.profile.files.get(tid).state is TransferState.OFFERED  # type: ignore[union-attr]
    assert ControlKind.ACCEPT not in link.kinds()
    (view,) = await node.async_files()
    assert (view.group, view.peer_name) == ("book club", "bob")


async def test_a_group_offer_from_an_accepted_contact_is_accepted_by_itself(
    node: Node,
) -> None:
    group = Group(node)
    node.profile.upsert_contact(
        Contact(group.bob, "bob", TrustState.ACCEPTED, verified=False, pinned_at_ms=0)
    )
    tid, link = offer_from(node, group.bob, "bob", group.gid)
    await until(lambda: ControlKind.ACCEPT in link.kinds())
    held = node.profile.files.get(tid)
    assert held is not None
    assert (held.conversation, held.state) == (group.conversation, TransferState.ACCEPTED)


@pytest.mark.parametrize("case", ["unknown group", "sender not on the list", "not in it"])
async def test_a_group_offer_that_does_not_fit_is_declined_with_a_code(
    node: Node, case: str
) -> None:
    code = {"unknown group": "group-unknown", "sender not on the list": "group-not-member",
            "not in it": "group-not-in"}[case]  # fmt: skip
    group = Group(node, me_on_it=case != "not in it")
    carol = contact(node, "carol")  # a contact, but not on the list
    sender, gid = group.bob, group.gid
    if case == "unknown group":
        gid = os.urandom(16)
    elif case == "sender not on the list":
        sender = carol
    tid, link = offer_from(node, sender, "x", gid)
    (decline,) = [c for c in link.controls() if c.kind is ControlKind.DECLINE]
    assert decline.transfer_id == tid
    assert decline.reason.startswith(code + ":")
    assert link.sent[0][:1] == b"R"  # receipted: the sender's outbox lets it go
    assert node.profile.files.get(tid) is None  # never filed, under any conversation
    assert node.profile.messages(group.conversation) == []
    assert node.profile.messages(contact_conversation_id(sender)) == []
