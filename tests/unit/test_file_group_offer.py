"""A group's file offer (version 2): the v1 layout, version 2, then the group's id."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any

import pytest

from p2pchat.protocol.file_wire import FileOffer, FileWireError, decode_offer

ROOT = Path(__file__).parents[2]
V: dict[str, Any] = json.loads(
    (ROOT / "tests/vectors/files-group-v2.json").read_text(encoding="utf-8")
)
GID = bytes(range(16))
OFFER = FileOffer(300_000, 262_144, bytes([1] * 32), bytes([2] * 32), "image/png", "a.png", GID)


def test_the_generator_reproduces_the_file() -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_group_files", ROOT / "tests/vectors/generate_group_files.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == V


def test_vectors_decode_and_encode() -> None:
    for o in V["offers"]:
        offer = decode_offer(bytes.fromhex(o["encoded"]))
        assert offer.group_id == bytes.fromhex(V["group_id"])
        assert (offer.size, offer.mime, offer.name) == (o["size"], o["mime"], o["name"])
        assert offer.encode().hex() == o["encoded"]
        # the same offer without a group: a version-1 offer, decoded as before
        v1 = decode_offer(bytes.fromhex(o["v1"]))
        assert v1.group_id is None
        assert v1.encode().hex() == o["v1"]
        assert bytes.fromhex(o["encoded"]) == b"\x02" + bytes.fromhex(o["v1"])[1:] + offer.group_id


def test_layout() -> None:
    data = OFFER.encode()
    assert data[0] == 2
    assert data[-16:] == GID
    assert decode_offer(data) == OFFER


@pytest.mark.parametrize(
    "data",
    [
        OFFER.encode()[:-1],  # a byte short of the group id
        OFFER.encode() + b"\x00",  # a byte after it
        OFFER.encode()[: 1 + 8 + 4 + 32 + 32 + 1],  # no room for the id
    ],
)
def test_malformed_group_offers(data: bytes) -> None:
    with pytest.raises(FileWireError) as caught:
        decode_offer(data)
    assert caught.value.code == "file-bad-offer"


def test_bad_group_id_length_is_local_misuse() -> None:
    with pytest.raises(ValueError, match="group id"):
        FileOffer(1, 65_536, bytes(32), bytes(32), "", "x", b"short")


def test_random_bytes_never_crash() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    good = OFFER.encode()
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = bytes(data[: rng.randint(0, len(data))])
        try:
            decode_offer(cut)
        except FileWireError:
            pass
        except Exception as exc:  # pragma: no cover - the failure names the seed
            raise AssertionError(f"seed {seed}: {exc!r}") from exc
