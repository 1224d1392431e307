"""Write tests/vectors/groups-v1.json: known-answer vectors for the group wire objects.

Run by hand from the repository root when a group format changes on purpose
(``.venv/bin/python tests/vectors/generate_groups.py``); tests/unit/test_group_vectors.py
checks the code against the file and docs/protocol.md ("Groups") against both. Every
input is fixed and Ed25519 signatures are deterministic, so the output never changes.
Kept apart from v1.json, whose stream section changes on every run (a random header).
"""

from __future__ import annotations

import json
from pathlib import Path

from p2pchat.crypto.identity import Identity
from p2pchat.protocol.frames import ChatFrame, FrameType
from p2pchat.protocol.group_members import Member, MemberKind, make_member_list
from p2pchat.protocol.group_messages import (
    ZERO_HASH,
    MessageKind,
    chain_hash,
    copy_id_of,
    make_group_message,
    message_id_of,
)

HERE = Path(__file__).parent
GROUP_ID = bytes(range(0xA0, 0xB0))
TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def seed(n: int) -> bytes:
    return bytes((n + i) % 256 for i in range(32))


def build() -> dict[str, object]:
    alice, bob, guest = Identity(seed(1)), Identity(seed(101)), Identity(seed(151))
    members = [
        Member(MemberKind.LAN, alice.public_key, "Alice"),
        Member(MemberKind.LAN, bob.public_key, "Bob"),
        Member(MemberKind.GUEST, guest.public_key, "Gäst", bob.public_key),
    ]
    member_list = make_member_list(GROUP_ID, 1, "Team ✓", members, alice.signing_key)
    first = make_group_message(
        GROUP_ID, 1, bob.signing_key, 1, ZERO_HASH, TS, MessageKind.TEXT, b"hello, group"
    )
    second = make_group_message(
        GROUP_ID, 1, bob.signing_key, 2, chain_hash(first.encoded), TS + 1, MessageKind.LEAVE, b""
    )
    first_id = message_id_of(first.encoded)
    copy_to_alice = copy_id_of(first_id, alice.public_key)
    frame = ChatFrame(FrameType.GROUP_MESSAGE, copy_to_alice, TS, first.encoded)
    return {
        "version": 1,
        "seeds": {"alice": alice.seed.hex(), "bob": bob.seed.hex(), "guest": guest.seed.hex()},
        "member_list": {
            "group_id": GROUP_ID.hex(),
            "epoch": 1,
            "admin_key": alice.public_key.hex(),
            "name": member_list.name,
            "members": [
                {
                    "kind": int(m.kind),
                    "key": m.key.hex(),
                    "name": m.name,
                    "host_key": m.host_key.hex() if m.host_key else None,
                }
                for m in members
            ],
            "encoded": member_list.encoded.hex(),
        },
        "messages": [
            {
                "sender_seed": bob.seed.hex(),
                "epoch": msg.epoch,
                "seq": msg.seq,
                "prev_hash": msg.prev_hash.hex(),
                "timestamp_ms": msg.timestamp_ms,
                "kind": int(msg.kind),
                "body": msg.body.hex(),
                "encoded": msg.encoded.hex(),
                "message_id": message_id_of(msg.encoded).hex(),
                "chain_hash": chain_hash(msg.encoded).hex(),
            }
            for msg in (first, second)
        ],
        "copy_id": {
            "message_id": first_id.hex(),
            "member_key": alice.public_key.hex(),
            "copy_id": copy_to_alice.hex(),
        },
        "frame": {"type": int(frame.type), "encoded": frame.encode().hex()},
    }


if __name__ == "__main__":
    (HERE / "groups-v1.json").write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {HERE / 'groups-v1.json'}")
