"""File frames (types 8, 9) on a 1:1 session, and the ``files=1`` capability."""

from __future__ import annotations

import pytest

from p2pchat.crypto.envelope import LanEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.errors import LocalProtocolError, RemoteProtocolError
from p2pchat.protocol.events import FileFrameReceived, ReceiptReceived
from p2pchat.protocol.frames import ChatFrame, FrameType, decode_frame
from p2pchat.protocol.session import Role, Session

NOW = 1_767_225_600_000
TID = bytes(range(16))


def pair(
    *, a_files: bool = True, b_files: bool = True, batch: bool = False
) -> tuple[Session, Session]:
    alice, bob = Identity.generate(), Identity.generate()
    a = Session(
        Role.INITIATOR,
        LanEnvelopes(alice, bob.public_key, ReplayGuard()),
        batch=batch,
        files=a_files,
    )
    b = Session(
        Role.RESPONDER,
        LanEnvelopes(bob, alice.public_key, ReplayGuard()),
        batch=batch,
        files=b_files,
    )
    b.receive_offer(a.make_offer("v=0", NOW, {"name": "a"}), NOW)
    a.receive_answer(b.make_answer("v=0", NOW, {"name": "b"}), NOW)
    a.receive_data(b.stream_header(), NOW)
    b.receive_data(a.stream_header(), NOW)
    return a, b


@pytest.mark.parametrize("batch", [False, True])
def test_file_frames_flow_when_both_announce(batch: bool) -> None:
    a, b = pair(batch=batch)
    assert a.files
    assert b.files
    assert a.peer_info["files"] == b.peer_info["files"] == "1"
    assert not a.groups  # one capability does not bring the other
    data = a.send_file_offer(b"\x01offer", NOW, message_id=TID)
    if batch:
        data = encode_batch([data])
    assert b.receive_data(data, NOW) == [FileFrameReceived(FrameType.FILE_OFFER, TID, b"\x01offer")]
    receipt = b.send_receipt(TID, NOW)
    if batch:
        receipt = encode_batch([receipt])
    assert a.receive_data(receipt, NOW) == [ReceiptReceived(TID)]
    first = b.send_file_control(b"\x01control", NOW)
    second = b.send_file_control(b"\x01control", NOW)
    if batch:
        first, second = encode_batch([first]), encode_batch([second])
    (one,) = a.receive_data(first, NOW)
    (two,) = a.receive_data(second, NOW)
    assert isinstance(one, FileFrameReceived)
    assert isinstance(two, FileFrameReceived)
    assert (one.frame_type, one.payload) == (FrameType.FILE_CONTROL, b"\x01control")
    assert one.message_id != two.message_id  # controls get fresh ids


@pytest.mark.parametrize(("a_files", "b_files"), [(True, False), (False, True), (False, False)])
def test_no_file_frames_unless_both_announce(a_files: bool, b_files: bool) -> None:
    a, b = pair(a_files=a_files, b_files=b_files)
    assert not a.files
    assert not b.files
    assert ("files" in a.peer_info) == b_files
    with pytest.raises(LocalProtocolError, match="files=1"):
        a.send_file_offer(b"\x01o", NOW, message_id=TID)
    with pytest.raises(LocalProtocolError, match="files=1"):
        a.send_file_control(b"\x01c", NOW)
    # A side that did not announce refuses the types as a peer from before files does.
    forced = a._send(ChatFrame(FrameType.FILE_CONTROL, TID, NOW, b"\x01c"))
    if not b_files:
        with pytest.raises(RemoteProtocolError) as info:
            b.receive_data(forced, NOW)
        assert info.value.code == "bad-frame"
        assert "unknown frame type 9" in str(info.value)


def test_file_payload_bounds() -> None:
    a, _ = pair()
    with pytest.raises(LocalProtocolError):
        a.send_file_offer(b"", NOW, message_id=TID)
    with pytest.raises(LocalProtocolError):
        a.send_file_control(b"x" * 70_000, NOW)


@pytest.mark.parametrize("frame_type", [8, 9])
def test_an_empty_file_frame_is_malformed(frame_type: int) -> None:
    frame = ChatFrame(FrameType(frame_type), TID, NOW).encode()
    with pytest.raises(RemoteProtocolError, match="without a body"):
        decode_frame(frame)
    assert decode_frame(frame + b"\x01").body == b"\x01"
