"""Write tests/vectors/password-handshake-v1.json: a password link's handshake, fixed inputs.

Run by hand when the format changes on purpose (``python tests/vectors/generate_password.py``).
Fixed: link secret, password, session id, both ``crypto_kx`` seeds and both CPace scalars.
Out: each side's CPace share, the OFFER and ANSWER bodies (the envelope around them is the
link envelope of v1.json), the ISK, and each side's mixed rx/tx keys. Checked by
tests/unit/test_password_vectors.py and browser/test/cpace.test.js.
"""

from __future__ import annotations

import json
from pathlib import Path

from p2pchat.crypto.cpace import cpace_isk, cpace_start, mix_session_keys, normalize_password
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.stream import KxKeyPair
from p2pchat.protocol.handshake import HandshakeBody

HERE = Path(__file__).parent


def seed(n: int) -> bytes:
    return bytes((n + i) % 256 for i in range(32))


def scalar(n: int) -> bytes:
    return bytes([n] * 31) + b"\x00"  # below the group order: a canonical scalar


def build() -> dict[str, object]:
    link = LinkSecret(seed(201))
    password_text = " \uff23orrect horse \u2713 "  # fullwidth C: NFKC folds it
    password = normalize_password(password_text)
    sid = bytes(range(16))
    guest_kx, owner_kx = KxKeyPair(seed(60)), KxKeyPair(seed(70))
    guest = cpace_start(password, link.room_id_raw, sid, scalar=scalar(3))
    owner = cpace_start(password, link.room_id_raw, sid, scalar=scalar(5))
    isk = cpace_isk(guest, owner.share, sid=sid, initiator=True)
    assert isk == cpace_isk(owner, guest.share, sid=sid, initiator=False)
    guest_keys = mix_session_keys(guest_kx.client_keys(owner_kx.public), isk)
    owner_keys = mix_session_keys(owner_kx.server_keys(guest_kx.public), isk)
    offer = HandshakeBody("v=0\r\n", guest_kx.public, {"name": "Guest"}, pake=guest.share)
    answer = HandshakeBody("v=0\r\n", owner_kx.public, {"name": "Owner"}, pake=owner.share)
    return {
        "link_secret": link.secret.hex(),
        "room_id_raw": link.room_id_raw.hex(),
        "fragment": link.fragment + ".pw",
        "password_text": password_text,
        "password": password.hex(),
        "sid": sid.hex(),
        "guest_kx_seed": seed(60).hex(),
        "owner_kx_seed": seed(70).hex(),
        "guest_scalar": scalar(3).hex(),
        "owner_scalar": scalar(5).hex(),
        "guest_share": guest.share.hex(),
        "owner_share": owner.share.hex(),
        "offer_body": offer.encode().decode("utf-8"),
        "answer_body": answer.encode().decode("utf-8"),
        "isk": isk.hex(),
        "guest_rx": guest_keys.rx.hex(),
        "guest_tx": guest_keys.tx.hex(),
        "owner_rx": owner_keys.rx.hex(),
        "owner_tx": owner_keys.tx.hex(),
    }


if __name__ == "__main__":
    path = HERE / "password-handshake-v1.json"
    path.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")
