"""tests/vectors/password-handshake-v1.json: the code (and Session) against stored vectors."""

from __future__ import annotations

import json
from pathlib import Path

from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.stream import KxKeyPair, SessionKeys
from p2pchat.protocol.handshake import decode_handshake
from p2pchat.protocol.session import Role, Session

V = json.loads(
    (Path(__file__).parent.parent / "vectors" / "password-handshake-v1.json").read_text("utf-8")
)
NOW = 1_767_225_600_000


def _b(name: str) -> bytes:
    return bytes.fromhex(V[name])


def test_vectors_regenerate_identically() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate_password", Path(__file__).parent.parent / "vectors" / "generate_password.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == V


def test_sessions_reach_the_stored_keys_and_bodies() -> None:
    secret = LinkSecret(_b("link_secret"))
    assert secret.room_id_raw == _b("room_id_raw")
    assert LinkSecret.from_fragment(V["fragment"]) == secret

    def session(role: Role, kx_seed: str, scalar: str) -> Session:
        return Session(
            role, LinkEnvelopes(secret.envelope_key, ReplayGuard()), session_id=_b("sid"),
            kx=KxKeyPair(_b(kx_seed)), password=_b("password"), link_room=secret.room_id_raw,
            pake_scalar=_b(scalar),
        )  # fmt: skip

    guest = session(Role.INITIATOR, "guest_kx_seed", "guest_scalar")
    owner = session(Role.RESPONDER, "owner_kx_seed", "owner_scalar")
    owner.receive_offer(guest.make_offer("v=0\r\n", NOW, {"name": "Guest"}), NOW)
    guest.receive_answer(owner.make_answer("v=0\r\n", NOW, {"name": "Owner"}), NOW)
    assert guest._keys == SessionKeys(rx=_b("guest_rx"), tx=_b("guest_tx"))
    assert owner._keys == SessionKeys(rx=_b("owner_rx"), tx=_b("owner_tx"))
    offer = decode_handshake(V["offer_body"].encode())
    answer = decode_handshake(V["answer_body"].encode())
    assert offer.pake == _b("guest_share")
    assert answer.pake == _b("owner_share")
