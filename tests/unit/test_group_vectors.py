"""The group code against tests/vectors/groups-v1.json, and docs/protocol.md against both."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from p2pchat.crypto.identity import Identity
from p2pchat.protocol.frames import FrameType, decode_frame
from p2pchat.protocol.group_members import decode_member_list
from p2pchat.protocol.group_messages import (
    chain_hash,
    copy_id_of,
    decode_group_message,
    message_id_of,
)

ROOT = Path(__file__).parents[2]
V: dict[str, Any] = json.loads((ROOT / "tests/vectors/groups-v1.json").read_text(encoding="utf-8"))
h = bytes.fromhex


def test_the_generator_reproduces_the_file() -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_groups", ROOT / "tests/vectors/generate_groups.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == V


def test_member_list_vector() -> None:
    c = V["member_list"]
    decoded = decode_member_list(h(c["encoded"]))
    assert decoded.group_id.hex() == c["group_id"]
    assert (decoded.epoch, decoded.name) == (c["epoch"], c["name"])
    assert decoded.admin_key == Identity(h(V["seeds"]["alice"])).public_key
    assert [(int(m.kind), m.key.hex(), m.name) for m in decoded.members] == [
        (m["kind"], m["key"], m["name"]) for m in c["members"]
    ]
    assert decoded.members[2].host_key == h(c["members"][2]["host_key"])


def test_message_vectors_and_ids() -> None:
    first, second = V["messages"]
    for c in (first, second):
        msg = decode_group_message(h(c["encoded"]))
        assert msg.sender_key == Identity(h(c["sender_seed"])).public_key
        assert (msg.epoch, msg.seq, msg.timestamp_ms, int(msg.kind)) == (
            c["epoch"], c["seq"], c["timestamp_ms"], c["kind"],
        )  # fmt: skip
        assert msg.body.hex() == c["body"]
        assert message_id_of(msg.encoded).hex() == c["message_id"]
        assert chain_hash(msg.encoded).hex() == c["chain_hash"]
    assert second["prev_hash"] == first["chain_hash"]
    cp = V["copy_id"]
    assert copy_id_of(h(cp["message_id"]), h(cp["member_key"])).hex() == cp["copy_id"]
    frame = decode_frame(h(V["frame"]["encoded"]))
    assert frame.type is FrameType.GROUP_MESSAGE
    assert frame.message_id.hex() == cp["copy_id"]
    assert frame.body.hex() == first["encoded"]


def test_the_doc_quotes_the_vectors() -> None:
    doc = (ROOT / "docs/protocol.md").read_text(encoding="utf-8")
    section = doc[doc.index("\n## Groups") :]
    flat = re.sub(r"\s+", "", section)
    first = V["messages"][0]
    for value in (
        V["member_list"]["encoded"],
        first["encoded"],
        first["message_id"],
        first["chain_hash"],
        V["copy_id"]["copy_id"],
    ):
        assert value in flat, f"docs/protocol.md (Groups) does not quote {value[:16]}..."
