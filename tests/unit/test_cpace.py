"""CPace ristretto255/SHA-512: the draft's vectors, bad shares, both sides, wrong passwords."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from p2pchat.crypto import cpace, ristretto
from p2pchat.crypto.stream import SessionKeys

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "cpace-ristretto255.json").read_text()
)


def _h(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name])


def test_draft_generator() -> None:
    assert (
        cpace.generator_string(_h("PRS"), _h("CI"), _h("sid")).hex() == VECTORS["generator_string"]
    )
    assert cpace.calculate_generator(_h("PRS"), _h("CI"), _h("sid")).hex() == VECTORS["g"]


def test_draft_shares_secret_and_isk() -> None:
    g = _h("g")
    ya, yb = ristretto.scalarmult(_h("ya"), g), ristretto.scalarmult(_h("yb"), g)
    assert (ya.hex(), yb.hex()) == (VECTORS["Ya"], VECTORS["Yb"])
    k = ristretto.scalarmult(_h("ya"), yb)
    assert k == ristretto.scalarmult(_h("yb"), ya)
    assert k.hex() == VECTORS["K"]
    isk = cpace.isk_ir(_h("sid"), k, ya, _h("ADa"), yb, _h("ADb"))
    assert isk.hex() == VECTORS["ISK_IR"]


def test_draft_scalar_mult_cases() -> None:
    case = VECTORS["scalar_mult_valid"]
    product = ristretto.scalarmult(bytes.fromhex(case["s"]), bytes.fromhex(case["X"]))
    assert product.hex() == case["sX"]
    for point in VECTORS["invalid_points"]:
        assert not ristretto.is_valid(bytes.fromhex(point))
        with pytest.raises(ristretto.InvalidPoint):
            ristretto.scalarmult(bytes.fromhex(case["s"]), bytes.fromhex(point))


def test_prepend_len_is_leb128() -> None:
    assert cpace.prepend_len(b"") == b"\x00"
    assert cpace.prepend_len(bytes(127))[:1] == b"\x7f"
    assert cpace.prepend_len(bytes(128))[:2] == b"\x80\x01"
    assert cpace.lv_cat(b"1234", b"5", b"", b"678") == b"\x041234\x015\x00\x03678"


def _pair(pw_a: bytes, pw_b: bytes, room: bytes, sid: bytes) -> tuple[bytes, bytes]:
    a = cpace.cpace_start(pw_a, room, sid)
    b = cpace.cpace_start(pw_b, room, sid)
    return (
        cpace.cpace_isk(a, b.share, sid=sid, initiator=True),
        cpace.cpace_isk(b, a.share, sid=sid, initiator=False),
    )


def test_both_sides_agree_and_a_wrong_password_differs() -> None:
    room, sid = os.urandom(16), os.urandom(16)
    isk_a, isk_b = _pair(b"correct horse", b"correct horse", room, sid)
    assert isk_a == isk_b
    assert len(isk_a) == cpace.ISK_BYTES
    wrong_a, wrong_b = _pair(b"correct horse", b"correct horsf", room, sid)
    assert wrong_a != wrong_b
    assert isk_a not in (wrong_a, wrong_b)


def test_room_and_session_are_bound() -> None:
    room, sid = os.urandom(16), os.urandom(16)
    a = cpace.cpace_start(b"pw", room, sid)
    b = cpace.cpace_start(b"pw", os.urandom(16), sid)  # another link, same password
    assert cpace.cpace_isk(a, b.share, sid=sid, initiator=True) != cpace.cpace_isk(
        b, a.share, sid=sid, initiator=False
    )


@pytest.mark.parametrize(
    "share",
    [
        bytes(32),
        bytes.fromhex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
        b"\xff" * 32,
        bytes(31),
        b"",
    ],
    ids=["identity", "draft-invalid", "non-canonical", "short", "empty"],
)
def test_bad_shares_are_refused(share: bytes) -> None:
    start = cpace.cpace_start(b"pw", bytes(16), bytes(16))
    with pytest.raises(cpace.PakeError) as info:
        cpace.cpace_isk(start, share, sid=bytes(16), initiator=False)
    assert info.value.code == "bad-pake"


def test_random_shares_never_crash() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    start = cpace.cpace_start(b"pw", bytes(16), bytes(16))
    for _ in range(200):
        share = rng.randbytes(32)
        try:
            isk = cpace.cpace_isk(start, share, sid=bytes(16), initiator=True)
        except cpace.PakeError:
            continue
        assert len(isk) == cpace.ISK_BYTES, f"seed {seed}"


def test_mixing_changes_both_keys_and_is_symmetric() -> None:
    keys = SessionKeys(rx=bytes(range(32)), tx=bytes(range(32, 64)))
    mixed = cpace.mix_session_keys(keys, b"\x01" * 64)
    assert mixed.rx != keys.rx
    assert mixed.tx != keys.tx
    assert len(mixed.rx) == 32
    peer = cpace.mix_session_keys(SessionKeys(rx=keys.tx, tx=keys.rx), b"\x01" * 64)
    assert (peer.rx, peer.tx) == (mixed.tx, mixed.rx)
    assert cpace.mix_session_keys(keys, b"\x02" * 64) != mixed


def test_missing_libsodium_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ristretto, "_module", None)
    monkeypatch.setitem(__import__("sys").modules, "pysodium", None)  # import fails
    with pytest.raises(ristretto.RistrettoUnavailable, match="apt install libsodium23"):
        ristretto.ensure_available()
