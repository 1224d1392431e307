"""The long fuzz run of the two group decoders (profile: tests/fuzz/conftest.py).

Arbitrary bytes, and genuine signed objects mutated (bit flips, truncation, insertion,
extension): the answer is a value or a ``GroupError`` and nothing else; a value is
exactly the input (one spelling per object), and a mutated genuine object is always
refused (the signature covers every byte).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pchat.protocol.group_members import (
    MAX_MEMBERS,
    Member,
    MemberKind,
    decode_member_list,
    make_member_list,
)
from p2pchat.protocol.group_messages import (
    ZERO_HASH,
    MessageKind,
    decode_group_message,
    make_group_message,
)
from p2pchat.protocol.group_wire import GroupError
from tests.fuzz.mutations import mutated

FUZZ = settings.get_profile("p2pchat-fuzz-decoders")
T = TypeVar("T")
# The decoders' codes, as documented in docs/protocol.md ("Groups").
CODES = {
    "group-too-large", "group-version", "group-truncated", "group-trailing", "group-bad-epoch",
    "group-bad-name", "group-bad-count", "group-too-many-members", "group-too-many-guests",
    "group-bad-member-kind", "group-duplicate-key", "group-admin-not-member", "group-bad-host",
    "group-bad-key", "group-bad-signature", "group-bad-seq", "group-bad-kind", "group-bad-body",
    "group-malformed",
}  # fmt: skip
ADMIN, GUEST = SigningKey(bytes(32)), SigningKey(bytes([9] * 32))
GID = bytes(range(16))
_LAN = [
    Member(MemberKind.LAN, bytes(SigningKey(bytes([n]) * 32).verify_key), f"m{n} ✓")
    for n in range(0, 6)  # n = 0: the admin
]
_GUEST = Member(MemberKind.GUEST, bytes(GUEST.verify_key), "guest", _LAN[1].key)
LIST = make_member_list(GID, 3, "Team ✓", [*_LAN, _GUEST], ADMIN).encoded
MESSAGE = make_group_message(
    GID, 3, ADMIN, 7, bytes([3] * 32), 1_767_225_600_000, MessageKind.TEXT, "hello ✓".encode()
).encoded
FIRST = make_group_message(GID, 1, GUEST, 1, ZERO_HASH, 0, MessageKind.LEAVE, b"").encoded


def decoded_or_refused(decode: Callable[[bytes], T], data: bytes) -> T | None:
    """What ``decode`` makes of ``data``, or None if it refused with a documented code."""
    try:
        return decode(data)
    except GroupError as exc:
        assert exc.code in CODES, exc.code  # noqa: PT017
        return None


def _header_like(data: bytes) -> bytes:
    """Arbitrary bytes after a valid version and group id: past the first checks."""
    return b"\x01" + GID + data


@FUZZ
@given(
    st.binary(max_size=600)
    | st.binary(max_size=600).map(_header_like)
    | mutated(LIST)
    | st.just(LIST)
)
def test_member_list_decoder(data: bytes) -> None:
    try:
        decoded = decode_member_list(data)
    except GroupError as exc:
        assert exc.code in CODES, exc.code  # noqa: PT017
        return
    assert data == LIST  # nothing but the genuine list verifies
    assert decoded.encoded == data
    assert len(decoded.members) <= MAX_MEMBERS


@FUZZ
@given(
    st.binary(max_size=400)
    | st.binary(max_size=400).map(_header_like)
    | mutated(MESSAGE)
    | mutated(FIRST)
    | st.sampled_from([MESSAGE, FIRST])
)
def test_group_message_decoder(data: bytes) -> None:
    decoded = decoded_or_refused(decode_group_message, data)
    if decoded is None:
        return
    assert data in (MESSAGE, FIRST)
    assert decoded.encoded == data
