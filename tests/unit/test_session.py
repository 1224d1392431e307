"""In-memory pair tests of the sans-I/O session: ``b.receive(a.send(...))``."""

from __future__ import annotations

import pytest

from p2pchat.crypto.envelope import LanEnvelopes, LinkEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.crypto.link import LinkSecret
from p2pchat.protocol.errors import LocalProtocolError, RemoteProtocolError
from p2pchat.protocol.events import (
    MessageReceived,
    PingReceived,
    PongReceived,
    ReceiptReceived,
    SessionClosed,
    SessionOpened,
)
from p2pchat.protocol.frames import MAX_BODY_BYTES
from p2pchat.protocol.session import Role, Session, SessionState

NOW = 1_700_000_000_000


# One channel message per frame, as between peers from before batches (the batch
# layer on top of these frames is in test_batch.py).
def lan_pair(*, batch: bool = False) -> tuple[Session, Session]:
    alice, bob = Identity.generate(), Identity.generate()
    a = Session(Role.INITIATOR, LanEnvelopes(alice, bob.public_key, ReplayGuard()), batch=batch)
    b = Session(Role.RESPONDER, LanEnvelopes(bob, alice.public_key, ReplayGuard()), batch=batch)
    return a, b


def link_pair(*, batch: bool = False) -> tuple[Session, Session]:
    key = LinkSecret.generate().envelope_key
    guest = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()), batch=batch)
    owner = Session(Role.RESPONDER, LinkEnvelopes(key, ReplayGuard()), batch=batch)
    return guest, owner


def handshake(a: Session, b: Session) -> None:
    offer = b.receive_offer(a.make_offer("v=0 offer", NOW, {"name": "alice"}), NOW)
    assert offer.sdp == "v=0 offer"
    assert offer.info == {"name": "alice"}
    answer = a.receive_answer(b.make_answer("v=0 answer", NOW, {"name": "bob"}), NOW)
    assert answer.sdp == "v=0 answer"
    assert a.session_id == b.session_id
    assert a.receive_data(b.stream_header(), NOW) == []
    assert b.receive_data(a.stream_header(), NOW) == [SessionOpened()]
    # a sent its header after receiving b's: sending it opened the session.
    assert a.state is b.state is SessionState.OPEN


@pytest.mark.parametrize("make_pair", [lan_pair, link_pair])
def test_messages_flow_both_ways(make_pair: object) -> None:
    a, b = make_pair()  # type: ignore[operator]
    handshake(a, b)
    mid, data = a.send_text("hello bob", NOW)
    assert b.receive_data(data, NOW) == [MessageReceived(mid, NOW, "hello bob")]
    assert a.receive_data(b.send_receipt(mid, NOW), NOW) == [ReceiptReceived(mid)]
    mid2, data2 = b.send_text("hi alice ✓", NOW + 1)
    assert a.receive_data(data2, NOW) == [MessageReceived(mid2, NOW + 1, "hi alice ✓")]
    ping_id, ping = a.send_ping(NOW)
    assert b.receive_data(ping, NOW) == [PingReceived(ping_id)]
    assert a.receive_data(b.pong(ping_id, NOW + 5), NOW) == [PongReceived(ping_id, NOW + 5)]


def test_close_ends_the_stream() -> None:
    a, b = lan_pair()
    handshake(a, b)
    assert b.receive_data(a.close(NOW), NOW) == [SessionClosed()]
    assert a.state is b.state is SessionState.CLOSED
    with pytest.raises(LocalProtocolError):
        a.send_text("too late", NOW)


def test_tampered_frame_is_refused() -> None:
    a, b = lan_pair()
    handshake(a, b)
    _, data = a.send_text("hello", NOW)
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_data(bytes(flipped), NOW)
    assert info.value.code == "bad-stream"


def test_reordered_frames_are_refused() -> None:
    a, b = lan_pair()
    handshake(a, b)
    _, first = a.send_text("one", NOW)
    _, second = a.send_text("two", NOW)
    with pytest.raises(RemoteProtocolError):
        b.receive_data(second, NOW)
    del first


def test_offer_from_another_link_is_refused() -> None:
    guest, _ = link_pair()
    _, owner = link_pair()
    with pytest.raises(RemoteProtocolError) as info:
        owner.receive_offer(guest.make_offer("v=0", NOW), NOW)
    assert info.value.code == "tampered"


def test_reflected_offer_is_refused() -> None:
    # The relay sends the guest's own offer back to the guest as if it were the answer.
    guest, _owner = link_pair()
    offer = guest.make_offer("v=0", NOW)
    with pytest.raises(RemoteProtocolError) as info:
        guest.receive_answer(offer, NOW)
    assert info.value.code == "reflected"


def test_replayed_offer_is_refused() -> None:
    key = LinkSecret.generate().envelope_key
    guard = ReplayGuard()
    guest = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()))
    offer = guest.make_offer("v=0", NOW)
    Session(Role.RESPONDER, LinkEnvelopes(key, guard)).receive_offer(offer, NOW)
    with pytest.raises(RemoteProtocolError) as info:
        Session(Role.RESPONDER, LinkEnvelopes(key, guard)).receive_offer(offer, NOW + 10)
    assert info.value.code == "replayed"


def test_stale_offer_is_refused() -> None:
    guest, owner = link_pair()
    offer = guest.make_offer("v=0", NOW)
    with pytest.raises(RemoteProtocolError) as info:
        owner.receive_offer(offer, NOW + 60 * 60 * 1000)
    assert info.value.code == "stale"


def test_answer_for_another_session_is_refused() -> None:
    key = LinkSecret.generate().envelope_key
    g1 = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()))
    g2 = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()))
    owner = Session(Role.RESPONDER, LinkEnvelopes(key, ReplayGuard()))
    g2.make_offer("v=0", NOW)
    owner.receive_offer(g1.make_offer("v=0", NOW), NOW)
    with pytest.raises(RemoteProtocolError) as info:
        g2.receive_answer(owner.make_answer("v=0", NOW), NOW)
    assert info.value.code == "wrong-session"


def test_answer_as_offer_is_refused() -> None:
    a, b = lan_pair()
    b2 = Session(Role.RESPONDER, b._envelopes)
    b.receive_offer(a.make_offer("v=0", NOW), NOW)
    answer = b.make_answer("v=0", NOW)
    with pytest.raises(RemoteProtocolError):
        b2.receive_offer(answer, NOW)


def test_misuse_is_a_local_error() -> None:
    a, b = lan_pair()
    with pytest.raises(LocalProtocolError):
        a.send_text("before handshake", NOW)
    with pytest.raises(LocalProtocolError):
        b.make_answer("v=0", NOW)
    with pytest.raises(LocalProtocolError):
        a.receive_offer(b"", NOW)


def test_oversized_message_is_refused_locally() -> None:
    a, b = lan_pair()
    handshake(a, b)
    a.send_text("x" * MAX_BODY_BYTES, NOW)
    with pytest.raises(LocalProtocolError, match="limit"):
        a.send_text("x" * (MAX_BODY_BYTES + 1), NOW)


def test_first_channel_message_must_be_a_header() -> None:
    a, b = lan_pair()
    b.receive_offer(a.make_offer("v=0", NOW), NOW)
    a.receive_answer(b.make_answer("v=0", NOW), NOW)
    with pytest.raises(RemoteProtocolError):
        b.receive_data(b"not a header", NOW)


def test_unusable_key_share_is_a_remote_error() -> None:
    """An all-zero (low-order) kx share fails on receipt of the offer, cleanly."""
    from p2pchat.crypto.stream import KxKeyPair

    class ZeroShare(KxKeyPair):
        public = bytes(32)

    a, b = lan_pair()
    a._kx = ZeroShare.__new__(ZeroShare)
    with pytest.raises(RemoteProtocolError) as info:
        b.receive_offer(a.make_offer("v=0", NOW), NOW)
    assert info.value.code == "bad-handshake"
    assert b.state is SessionState.NEW


def test_only_a_close_frame_may_end_the_stream() -> None:
    from p2pchat.protocol.frames import ChatFrame, FrameType

    a, b = lan_pair()
    handshake(a, b)
    assert a._sender is not None
    final_text = a._sender.seal(
        ChatFrame(FrameType.TEXT, bytes(16), NOW, b"x").encode(), final=True
    )
    with pytest.raises(RemoteProtocolError):
        b.receive_data(final_text, NOW)
