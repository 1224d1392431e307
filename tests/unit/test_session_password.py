"""The sans-I/O session on a password link: CPace shares in the OFFER/ANSWER, mixed keys."""

from __future__ import annotations

import json

import pytest

from p2pchat.crypto import cpace
from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.errors import LocalProtocolError, RemoteProtocolError
from p2pchat.protocol.events import MessageReceived, PingReceived, SessionOpened
from p2pchat.protocol.handshake import EnvelopeKind, HandshakeError, decode_handshake
from p2pchat.protocol.session import Role, Session, SessionState

NOW = 1_700_000_000_000


def pair(
    guest_pw: bytes | None, owner_pw: bytes | None, secret: LinkSecret | None = None
) -> tuple[Session, Session]:
    secret = secret or LinkSecret.generate()
    room = secret.room_id_raw
    guest = Session(
        Role.INITIATOR, LinkEnvelopes(secret.envelope_key, ReplayGuard()),
        password=guest_pw, link_room=room,
    )  # fmt: skip
    owner = Session(
        Role.RESPONDER, LinkEnvelopes(secret.envelope_key, ReplayGuard()),
        password=owner_pw, link_room=room,
    )  # fmt: skip
    return guest, owner


def exchange(guest: Session, owner: Session) -> None:
    owner.receive_offer(guest.make_offer("v=0 offer", NOW), NOW)
    guest.receive_answer(owner.make_answer("v=0 answer", NOW), NOW)
    assert guest.receive_data(owner.stream_header(), NOW) == []


def test_right_password_opens_after_the_confirmation() -> None:
    guest, owner = pair(b"hunter22", b"hunter22")
    exchange(guest, owner)
    assert owner.receive_data(guest.stream_header(), NOW) == []  # header alone: not yet
    assert owner.awaiting_confirmation
    assert owner.state is SessionState.KEYED
    ping = guest.confirmation(NOW)
    assert ping is not None
    events = owner.receive_data(ping, NOW)
    assert events[0] == SessionOpened()
    assert isinstance(events[1], PingReceived)
    assert owner.state is SessionState.OPEN
    assert guest.awaiting_confirmation  # the guest too waits for an authenticated frame
    pong = encode_batch([owner.pong(events[1].ping_id, NOW)])
    assert guest.receive_data(pong, NOW)[0] == SessionOpened()
    mid, data = owner.send_text("welcome", NOW)
    # Both announced batches: every message after the header is one.
    assert guest.receive_data(encode_batch([data]), NOW) == [MessageReceived(mid, NOW, "welcome")]


def test_wrong_password_opens_nothing() -> None:
    guest, owner = pair(b"hunter22", b"hunter23")
    exchange(guest, owner)
    assert owner.receive_data(guest.stream_header(), NOW) == []
    ping = guest.confirmation(NOW)
    assert ping is not None
    with pytest.raises(RemoteProtocolError) as info:
        owner.receive_data(ping, NOW)
    assert info.value.code == "bad-stream"
    assert owner.state is not SessionState.OPEN


def test_shares_travel_only_on_password_links() -> None:
    guest, owner = pair(b"pw", b"pw")
    owner.receive_offer(guest.make_offer("v=0", NOW), NOW)
    assert not owner.password_missing
    plain_guest, plain_owner = pair(None, None)
    plain_owner.receive_offer(plain_guest.make_offer("v=0", NOW), NOW)
    answer = plain_owner.make_answer("v=0", NOW)
    plain_guest.receive_answer(answer, NOW)
    assert plain_guest.confirmation(NOW) is None
    assert not plain_owner.awaiting_confirmation


def test_no_share_on_a_password_link_is_marked_and_cannot_be_answered() -> None:
    guest, owner = pair(None, b"pw")
    owner.receive_offer(guest.make_offer("v=0", NOW), NOW)
    assert owner.password_missing
    with pytest.raises(LocalProtocolError):
        owner.make_answer("v=0", NOW)


def test_a_share_on_a_password_less_link_is_a_bad_handshake() -> None:
    guest, owner = pair(b"pw", None)
    with pytest.raises(HandshakeError) as info:
        owner.receive_offer(guest.make_offer("v=0", NOW), NOW)
    assert info.value.code == "bad-handshake"


def test_an_answer_without_a_share_is_refused_by_the_guest() -> None:
    secret = LinkSecret.generate()
    guest, _ = pair(b"pw", b"pw", secret)
    _, plain_owner = pair(None, None, secret)
    guest_offer = guest.make_offer("v=0", NOW)
    # An owner that ignores the password (a bad relay cannot: the envelope is sealed).
    with pytest.raises(HandshakeError):
        plain_owner.receive_offer(guest_offer, NOW)


@pytest.mark.parametrize("share", ["", "AAAA", 5, "A" * 43 + "!"])
def test_bad_share_encodings_are_refused(share: object) -> None:
    body = {"v": 1, "sdp": "v=0", "kx": "A" * 43, "info": {}, "pake": share}
    with pytest.raises(HandshakeError):
        decode_handshake(json.dumps(body).encode())


def test_identity_share_is_a_pake_error() -> None:
    guest, owner = pair(b"pw", b"pw")
    guest._pake = cpace.CpaceStart(bytes(32), bytes(32), bytes(32))  # forced identity share
    offer = guest._seal(EnvelopeKind.OFFER, "v=0", NOW, None)  # make_offer makes a real share
    with pytest.raises(cpace.PakeError):
        owner.receive_offer(offer, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  hunter22 ", b"hunter22"),
        ("\uff50\uff41\uff53\uff53", b"pass"),
        ("é", "é".encode()),
        ("x" * 128, b"x" * 128),
    ],
)
def test_normalize_password(text: str, expected: bytes) -> None:
    assert cpace.normalize_password(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "x" * 129, "é" * 65])
def test_normalize_password_bounds(text: str) -> None:
    with pytest.raises(ValueError, match="1 to 128 bytes"):
        cpace.normalize_password(text)


def test_password_links_end_in_pw_and_parse_back() -> None:
    secret = LinkSecret.generate()
    url = secret.url_at("https://chat.example", password=True)
    assert url.endswith(f"#{secret.fragment}.pw")
    assert LinkSecret.from_fragment(url.split("#")[1]) == secret
    assert secret.url("10.0.0.1", 8443) == secret.url_at("https://10.0.0.1:8443")
