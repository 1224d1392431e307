"""What the group codecs share: errors, bounds, a reader that never trusts a length, names,
the head both group objects start with.

See the "Groups" section of docs/protocol.md for the layouts and every error code.
"""

from __future__ import annotations

import struct
import unicodedata
from typing import NamedTuple

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from p2pchat.protocol.errors import LocalProtocolError, RemoteProtocolError

GROUP_VERSION = 1
GROUP_ID_BYTES = 16
KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_NAME_BYTES = 64  # a group's name and a member's display name
MAX_LAN_MEMBERS = 32  # the issue asks for at least 20
MAX_GUESTS = 8  # the issue asks for at least 5
MAX_EPOCH = 2**32 - 1
MAX_SEQ = 2**64 - 1
# Bidirectional overrides would let a name display as something it is not.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class GroupError(RemoteProtocolError):
    """A group object or a group input refused: the ``code`` says which rule (stable)."""

    code = "group-malformed"


class LocalGroupError(LocalProtocolError):
    """We asked for a group change the rules forbid (a bound, not the admin, ...)."""

    code = "group-local"


def check_name(name: str, what: str) -> bytes:
    """The UTF-8 bytes of a group or member name; ``ValueError`` if it breaks the rules."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise ValueError(f"{what} is not valid UTF-8") from None
    if not 0 < len(raw) <= MAX_NAME_BYTES:
        raise ValueError(f"{what} must be 1 to {MAX_NAME_BYTES} bytes of UTF-8")
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI_CONTROLS for c in name):
        raise ValueError(f"{what} contains control characters")
    return raw


def sign(domain: bytes, data: bytes, key: SigningKey) -> bytes:
    return key.sign(domain + data).signature


def verify(domain: bytes, data: bytes, signature: bytes, public_key: bytes) -> bool:
    try:
        VerifyKey(public_key).verify(domain + data, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


class Reader:
    """Reads fields from untrusted bytes; every read checks what is left first."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.offset:
            raise GroupError(f"ends inside the {what}", code="group-truncated")
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = struct.unpack(">H", self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = struct.unpack(">I", self.take(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = struct.unpack(">Q", self.take(8, what))[0]
        return value

    def name(self, what: str) -> str:
        raw = self.take(self.u8(f"{what} length"), what)
        try:
            text = raw.decode("utf-8")
            check_name(text, what)
        except (UnicodeDecodeError, ValueError) as exc:
            bad_utf8 = isinstance(exc, UnicodeDecodeError)
            message = f"{what} is not valid UTF-8" if bad_utf8 else str(exc)
            raise GroupError(message, code="group-bad-name") from None
        return text

    def signed_part_end(self) -> int:
        """Where the signature starts: exactly 64 bytes must be left, no more, no fewer."""
        left = len(self.data) - self.offset
        if left < SIGNATURE_BYTES:
            raise GroupError("ends inside the signature", code="group-truncated")
        if left > SIGNATURE_BYTES:
            raise GroupError(
                f"{left - SIGNATURE_BYTES} bytes after the last field", code="group-trailing"
            )
        return self.offset


class Head(NamedTuple):
    """The start both group objects share, read; ``reader`` stands just after the epoch."""

    reader: Reader
    group_id: bytes
    epoch: int


def read_head(data: bytes, what: str, max_bytes: int) -> Head:
    """Check the size bound and the version, then read the group id and the epoch.

    The epoch is not checked here: a member list refuses 0 at once, a message only
    after its layout (so each keeps the error code it has always given).
    """
    if len(data) > max_bytes:
        raise GroupError(f"{what} over {max_bytes} bytes", code="group-too-large")
    r = Reader(data)
    version = r.u8("version")
    if version != GROUP_VERSION:
        raise GroupError(f"{what} version {version} is not supported", code="group-version")
    return Head(r, r.take(GROUP_ID_BYTES, "group id"), r.u32("epoch"))
