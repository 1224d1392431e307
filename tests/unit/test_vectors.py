"""The code against the stored known-answer vectors (the browser checks the same file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2pchat.crypto.envelope import Direction, LanEnvelopes, LinkEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity, fingerprint, peer_id
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.safety import safety_number
from p2pchat.crypto.stream import KxKeyPair, StreamReceiver
from p2pchat.protocol.batch import decode_batch, encode_batch
from p2pchat.protocol.frames import ChatFrame, FrameType, decode_frame

V: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "v1.json").read_text(encoding="utf-8")
)
h = bytes.fromhex


@pytest.mark.parametrize("case", V["identity"])
def test_identity(case: dict[str, str]) -> None:
    ident = Identity(h(case["seed"]))
    assert ident.public_key.hex() == case["public_key"]
    assert peer_id(ident.public_key) == case["peer_id"]
    assert fingerprint(ident.public_key) == case["fingerprint"]
    assert ident.x25519_secret.hex() == case["x25519_secret"]


def test_safety_number_is_symmetric_and_known() -> None:
    c = V["safety_number"]
    ab = safety_number(h(c["key_a"]), h(c["key_b"]))
    ba = safety_number(h(c["key_b"]), h(c["key_a"]))
    assert ab == ba
    assert ab.digits == c["digits"]
    assert ab.qr_payload == c["qr_payload"]
    assert len(ab.digits.replace(" ", "")) == 60


def test_link() -> None:
    c = V["link"]
    link = LinkSecret(h(c["secret"]))
    assert link.fragment == c["fragment"]
    assert link.room_id == c["room_id"]
    assert link.envelope_key.hex() == c["envelope_key"]
    assert link.url("192.168.1.20", 8443) == c["url"]
    assert LinkSecret.from_fragment("#" + c["fragment"]) == link


def test_lan_envelope() -> None:
    c = V["envelope_lan"]
    sender, recipient = Identity(h(c["sender_seed"])), Identity(h(c["recipient_seed"]))
    sealed = LanEnvelopes(sender, recipient.public_key, ReplayGuard()).seal(
        c["kind"],
        Direction(c["direction"]),
        h(c["session_id"]),
        h(c["body"]),
        c["timestamp_ms"],
        nonce=h(c["nonce"]),
    )
    assert sealed.hex() == c["envelope"]
    opened = LanEnvelopes(recipient, sender.public_key, ReplayGuard()).open(
        h(c["envelope"]), Direction.INITIATOR, c["timestamp_ms"]
    )
    assert opened.body.hex() == c["body"]
    assert opened.sender_key == sender.public_key


def test_link_envelope() -> None:
    c = V["envelope_link"]
    env = LinkEnvelopes(h(c["envelope_key"]), ReplayGuard())
    sealed = env.seal(
        c["kind"],
        Direction(c["direction"]),
        h(c["session_id"]),
        h(c["body"]),
        c["timestamp_ms"],
        nonce=h(c["nonce"]),
    )
    assert sealed.hex() == c["envelope"]
    opened = env.open(h(c["envelope"]), Direction.RESPONDER, c["timestamp_ms"])
    assert opened.session_id.hex() == c["session_id"]
    assert opened.kind == c["kind"]


def test_kx() -> None:
    c = V["kx"]
    client, server = KxKeyPair(h(c["client_seed"])), KxKeyPair(h(c["server_seed"]))
    assert client.public.hex() == c["client_public"]
    assert server.public.hex() == c["server_public"]
    keys = client.client_keys(server.public)
    assert (keys.rx.hex(), keys.tx.hex()) == (c["client_rx"], c["client_tx"])
    assert server.server_keys(client.public).rx == keys.tx


def test_stream() -> None:
    c = V["stream"]
    receiver = StreamReceiver(h(c["key"]), h(c["header"]))
    for frame in c["frames"]:
        plaintext, final = receiver.open(h(frame["ciphertext"]))
        assert plaintext.hex() == frame["plaintext"]
        assert not final


def test_batch() -> None:
    c, stream = V["batch"], V["stream"]
    assert c["items"] == [f["ciphertext"] for f in stream["frames"]]
    assert encode_batch([h(item) for item in c["items"]]).hex() == c["encoded"]
    receiver = StreamReceiver(h(stream["key"]), h(stream["header"]))
    for item, frame in zip(decode_batch(h(c["encoded"])), stream["frames"], strict=True):
        assert receiver.open(item) == (h(frame["plaintext"]), False)


@pytest.mark.parametrize("case", V["frames"])
def test_frames(case: dict[str, Any]) -> None:
    frame = ChatFrame(
        FrameType(case["type"]), h(case["message_id"]), case["timestamp_ms"], h(case["body"])
    )
    assert frame.encode().hex() == case["encoded"]
    assert decode_frame(h(case["encoded"])) == frame
