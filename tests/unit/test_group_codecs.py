"""The group wire objects: round trips, ids, and every refusal with its code."""

from __future__ import annotations

import struct

import pytest
from nacl.signing import SigningKey

from p2pchat.protocol.group_members import (
    MAX_LIST_BYTES,
    MEMBERS_DOMAIN,
    Member,
    MemberKind,
    decode_member_list,
    make_member_list,
)
from p2pchat.protocol.group_messages import (
    MAX_MESSAGE_BYTES,
    MAX_TEXT_BYTES,
    MESSAGE_DOMAIN,
    ZERO_HASH,
    MessageKind,
    chain_hash,
    copy_id_of,
    decode_group_message,
    group_id_of,
    make_group_message,
    message_id_of,
)
from p2pchat.protocol.group_wire import (
    MAX_GUESTS,
    MAX_LAN_MEMBERS,
    GroupError,
    LocalGroupError,
)

GID = bytes(range(16))
TS = 1_767_225_600_000


def key(n: int) -> SigningKey:
    return SigningKey(bytes((n + i) % 256 for i in range(32)))


ADMIN, BOB, CAROL = key(1), key(2), key(3)


def lan(sk: SigningKey, name: str) -> Member:
    return Member(MemberKind.LAN, bytes(sk.verify_key), name)


def members() -> list[Member]:
    return [lan(ADMIN, "Alice"), lan(BOB, "Bob")]


def refused(data: bytes, code: str, decode: object = decode_member_list) -> None:
    with pytest.raises(GroupError) as info:
        decode(data)  # type: ignore[operator]
    assert info.value.code == code, str(info.value)


def _ids(value: object) -> str:
    return value if isinstance(value, str) else "case"


def resign(body: bytes, sk: SigningKey, domain: bytes) -> bytes:
    return body + sk.sign(domain + body).signature


# -- member lists ------------------------------------------------------------------------


def test_member_list_round_trip() -> None:
    guest = Member(MemberKind.GUEST, bytes(CAROL.verify_key), "Guest ✓", bytes(BOB.verify_key))
    made = make_member_list(GID, 3, "Team", [*members(), guest], ADMIN)
    decoded = decode_member_list(made.encoded)
    assert decoded == made
    assert decoded.member(bytes(CAROL.verify_key)) == guest
    assert [m.name for m in decoded.lan_members] == ["Alice", "Bob"]
    assert group_id_of(made.encoded) == GID


def test_member_list_refusals() -> None:
    good = make_member_list(GID, 1, "Team", members(), ADMIN).encoded
    refused(good[:-1], "group-truncated")
    refused(good[:20], "group-truncated")
    refused(good + b"\0", "group-trailing")
    refused(b"\x02" + good[1:], "group-version")
    for index in (30, len(good) - 70, len(good) - 1):  # a key, a name byte, the signature
        altered = bytearray(good)
        altered[index] ^= 1
        with pytest.raises(GroupError):
            decode_member_list(bytes(altered))
    refused(good[:-64] + BOB.sign(MEMBERS_DOMAIN + good[:-64]).signature, "group-bad-signature")
    refused(good[:-64] + ADMIN.sign(good[:-64]).signature, "group-bad-signature")  # no domain
    refused(bytes(MAX_LIST_BYTES + 1), "group-too-large")
    refused(list_body(entries=[entry(ADMIN)], count=2), "group-truncated")  # a count that lies


def list_body(
    *,
    epoch: int = 1,
    name: bytes = b"Team",
    entries: list[bytes] | None = None,
    count: int | None = None,
) -> bytes:
    if entries is None:
        entries = [
            bytes([1]) + bytes(m.key) + bytes([len(m.name)]) + m.name.encode() for m in members()
        ]
    head = struct.pack(">B16sI32s", 1, GID, epoch, bytes(ADMIN.verify_key))
    n = len(entries) if count is None else count
    return head + bytes([len(name)]) + name + bytes([n]) + b"".join(entries)


def entry(sk: SigningKey, name: bytes = b"M", kind: int = 1, host: bytes = b"") -> bytes:
    return bytes([kind]) + bytes(sk.verify_key) + bytes([len(name)]) + name + host


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (list_body(epoch=0), "group-bad-epoch"),
        (list_body(name=b""), "group-bad-name"),
        (list_body(name=b"\xff\xfe"), "group-bad-name"),
        (list_body(name=b"a\nb"), "group-bad-name"),
        (list_body(name=b"a\xe2\x80\xaeb"), "group-bad-name"),  # bidi override
        (list_body(name=b"x" * 65), "group-bad-name"),
        (list_body(entries=[]), "group-bad-count"),
        (list_body(entries=[entry(ADMIN, b"\x07bell")]), "group-bad-name"),
        (list_body(entries=[entry(ADMIN), entry(BOB, kind=3)]), "group-bad-member-kind"),
        (list_body(entries=[entry(ADMIN), entry(ADMIN)]), "group-duplicate-key"),
        (list_body(entries=[entry(BOB)]), "group-admin-not-member"),
        (
            list_body(entries=[entry(ADMIN), entry(CAROL, kind=2, host=bytes(BOB.verify_key))]),
            "group-bad-host",
        ),
        (list_body(entries=[entry(ADMIN)], count=41), "group-too-many-members"),
        (
            list_body(
                entries=[entry(ADMIN)] + [entry(key(10 + i)) for i in range(MAX_LAN_MEMBERS)]
            ),
            "group-too-many-members",
        ),
        (
            list_body(
                entries=[entry(ADMIN)]
                + [
                    entry(key(10 + i), kind=2, host=bytes(ADMIN.verify_key))
                    for i in range(MAX_GUESTS + 1)
                ]
            ),
            "group-too-many-guests",
        ),
        (list_body(entries=[entry(ADMIN), b"\x01" + bytes(32) + b"\x01M"]), "group-bad-key"),
    ],
    ids=_ids,
)
def test_member_list_rule_refusals(body: bytes, code: str) -> None:
    refused(resign(body, ADMIN, MEMBERS_DOMAIN), code)


def test_member_list_bounds_on_making() -> None:
    many = [lan(key(10 + i), f"m{i}") for i in range(MAX_LAN_MEMBERS - 1)]
    assert len(make_member_list(GID, 1, "Big", [lan(ADMIN, "A"), *many], ADMIN).members) == 32
    for bad, code in [
        ([lan(ADMIN, "A"), *many, lan(key(99), "one too many")], "group-too-many-members"),
        ([lan(ADMIN, "A"), lan(BOB, "x" * 65)], "group-bad-name"),
        ([lan(ADMIN, "A"), lan(BOB, "tab\there")], "group-bad-name"),
        ([lan(BOB, "B")], "group-admin-not-member"),
    ]:
        with pytest.raises(LocalGroupError) as info:
            make_member_list(GID, 1, "Team", bad, ADMIN)
        assert info.value.code == code
    with pytest.raises(LocalGroupError, match="1 to 64 bytes"):
        make_member_list(GID, 1, "é" * 33, members(), ADMIN)


# -- messages -------------------------------------------------------------------------------


def message(seq: int = 1, prev: bytes = ZERO_HASH, text: str = "hi", sk: SigningKey = BOB) -> bytes:
    return make_group_message(GID, 1, sk, seq, prev, TS, MessageKind.TEXT, text.encode()).encoded


def test_message_round_trip_and_ids() -> None:
    first = make_group_message(GID, 2, BOB, 1, ZERO_HASH, TS, MessageKind.TEXT, "héllo".encode())
    decoded = decode_group_message(first.encoded)
    assert decoded == first
    assert decoded.text == "héllo"
    second = make_group_message(
        GID, 2, BOB, 2, chain_hash(first.encoded), TS, MessageKind.LEAVE, b""
    )
    assert decode_group_message(second.encoded).prev_hash == chain_hash(first.encoded)
    mid = message_id_of(first.encoded)
    assert len(mid) == 16
    assert mid == decoded.message_id != message_id_of(second.encoded)
    copies = {copy_id_of(mid, bytes(k.verify_key)) for k in (ADMIN, BOB, CAROL)}
    assert len(copies) == 3
    assert mid not in copies
    big = make_group_message(GID, 1, BOB, 1, ZERO_HASH, TS, MessageKind.TEXT, b"x" * MAX_TEXT_BYTES)
    assert len(big.encoded) == MAX_MESSAGE_BYTES
    assert group_id_of(big.encoded) == GID
    assert group_id_of(b"\x01short") is None


def message_body(
    *, epoch: int = 1, seq: int = 1, prev: bytes = ZERO_HASH, kind: int = 1, body: bytes = b"hi"
) -> bytes:
    head = struct.pack(
        ">B16sI32sQ32sQBH", 1, GID, epoch, bytes(BOB.verify_key), seq, prev, TS, kind, len(body)
    )
    return head + body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (message_body(epoch=0), "group-bad-epoch"),
        (message_body(seq=0), "group-bad-seq"),
        (message_body(seq=1, prev=b"\1" * 32), "group-bad-seq"),
        (message_body(kind=3), "group-bad-kind"),
        (message_body(kind=2, body=b"x"), "group-bad-body"),
        (message_body(body=b"\xc3\x28"), "group-bad-body"),
    ],
    ids=_ids,
)
def test_message_rule_refusals(body: bytes, code: str) -> None:
    refused(resign(body, BOB, MESSAGE_DOMAIN), code, decode_group_message)


def test_message_refusals() -> None:
    good = message()
    refused(good[:-1], "group-truncated", decode_group_message)
    refused(good[:50], "group-truncated", decode_group_message)
    refused(good + b"\0", "group-trailing", decode_group_message)
    refused(b"\x09" + good[1:], "group-version", decode_group_message)
    forged = good[:-64] + CAROL.sign(MESSAGE_DOMAIN + good[:-64]).signature
    refused(forged, "group-bad-signature", decode_group_message)
    altered = bytearray(good)
    altered[-70] ^= 1  # a byte of the text
    refused(bytes(altered), "group-bad-signature", decode_group_message)
    refused(bytes(MAX_MESSAGE_BYTES + 1), "group-too-large", decode_group_message)
    # A body length that runs past the end is never trusted.
    lying = bytearray(good)
    lying[102:104] = (0xFFFF).to_bytes(2, "big")
    refused(bytes(lying), "group-truncated", decode_group_message)
    with pytest.raises(LocalGroupError) as info:
        make_group_message(
            GID, 1, BOB, 1, ZERO_HASH, TS, MessageKind.TEXT, b"x" * (MAX_TEXT_BYTES + 1)
        )
    assert info.value.code == "group-too-large"
