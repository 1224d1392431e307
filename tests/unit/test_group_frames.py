"""Group frames (types 6, 7) on a 1:1 session, and the ``groups=1`` capability."""

from __future__ import annotations

import pytest

from p2pchat.crypto.envelope import LanEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.errors import LocalProtocolError, RemoteProtocolError
from p2pchat.protocol.events import GroupFrameReceived, MessageReceived, ReceiptReceived
from p2pchat.protocol.frames import ChatFrame, FrameType, decode_frame
from p2pchat.protocol.session import Role, Session

NOW = 1_767_225_600_000
MID = bytes(range(16))


def pair(
    *, a_groups: bool = True, b_groups: bool = True, batch: bool = False
) -> tuple[Session, Session]:
    alice, bob = Identity.generate(), Identity.generate()
    a = Session(
        Role.INITIATOR,
        LanEnvelopes(alice, bob.public_key, ReplayGuard()),
        batch=batch,
        groups=a_groups,
    )
    b = Session(
        Role.RESPONDER,
        LanEnvelopes(bob, alice.public_key, ReplayGuard()),
        batch=batch,
        groups=b_groups,
    )
    b.receive_offer(a.make_offer("v=0", NOW, {"name": "a"}), NOW)
    a.receive_answer(b.make_answer("v=0", NOW, {"name": "b"}), NOW)
    a.receive_data(b.stream_header(), NOW)
    b.receive_data(a.stream_header(), NOW)
    return a, b


@pytest.mark.parametrize("batch", [False, True])
def test_group_frames_flow_when_both_announce(batch: bool) -> None:
    a, b = pair(batch=batch)
    assert a.groups
    assert b.groups
    assert a.peer_info["groups"] == b.peer_info["groups"] == "1"
    data = a.send_group_message(b"\x01message", NOW, message_id=MID)
    if batch:
        data = encode_batch([data])
    assert b.receive_data(data, NOW) == [
        GroupFrameReceived(FrameType.GROUP_MESSAGE, MID, NOW, b"\x01message")
    ]
    data = b.send_group_list(b"\x01list", NOW + 1, message_id=MID)
    if batch:
        data = encode_batch([data])
    assert a.receive_data(data, NOW) == [
        GroupFrameReceived(FrameType.GROUP_LIST, MID, NOW + 1, b"\x01list")
    ]
    receipt = b.send_receipt(MID, NOW)
    if batch:
        receipt = encode_batch([receipt])
    assert a.receive_data(receipt, NOW) == [ReceiptReceived(MID)]


def test_no_group_frames_to_a_peer_from_before_groups() -> None:
    a, b = pair(b_groups=False)
    assert "groups" not in a.peer_info
    assert a.peer_info["name"] == "b"
    assert b.peer_info["groups"] == "1"  # a announced, but b does not know it
    assert not a.groups
    assert not b.groups
    with pytest.raises(LocalProtocolError, match="groups=1"):
        a.send_group_message(b"\x01m", NOW, message_id=MID)
    with pytest.raises(LocalProtocolError):
        a.send_group_list(b"\x01l", NOW, message_id=MID)
    # What an old peer does with a type it does not know (a forced frame): bad-frame.
    forced = a._send(ChatFrame(FrameType.GROUP_MESSAGE, MID, NOW, b"\x01m"))
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(forced, NOW)
    assert info.value.code == "bad-frame"


def test_text_is_unchanged_with_groups() -> None:
    a, b = pair()
    mid, data = a.send_text("hello", NOW)
    assert b.receive_data(data, NOW) == [MessageReceived(mid, NOW, "hello")]


def test_group_frame_bounds() -> None:
    a, _ = pair()
    with pytest.raises(LocalProtocolError):
        a.send_group_message(b"", NOW, message_id=MID)
    with pytest.raises(LocalProtocolError):
        a.send_group_message(b"x" * 65_511, NOW, message_id=MID)
    empty = ChatFrame(FrameType.GROUP_LIST, MID, NOW, b"").encode()
    with pytest.raises(RemoteProtocolError) as info:
        decode_frame(empty)
    assert info.value.code == "bad-frame"


def test_sessions_do_not_announce_groups_unless_asked() -> None:
    # Only a node that handles GroupFrameReceived passes groups=True: the guest host
    # (whose browser page has no group frames) and older callers announce nothing.
    alice, bob = Identity.generate(), Identity.generate()
    a = Session(Role.INITIATOR, LanEnvelopes(alice, bob.public_key, ReplayGuard()))
    b = Session(Role.RESPONDER, LanEnvelopes(bob, alice.public_key, ReplayGuard()), groups=True)
    offer = b.receive_offer(a.make_offer("v=0", NOW, {"name": "a"}), NOW)
    assert "groups" not in offer.info
    a.receive_answer(b.make_answer("v=0", NOW), NOW)
    assert a.peer_info["groups"] == "1"
    assert not a.groups
    assert not b.groups
