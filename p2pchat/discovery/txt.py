"""The TXT record of a ``_p2pchat._tcp.local.`` service: a pure codec.

Keys (RFC 6763 section 6; keys compare case-insensitively, unknown keys are ignored
so later versions can add some):

=======  ====================================================================
``v``    protocol version, ``"1"``
``id``   peer id, the short readable fingerprint of ``pk`` (``abcd-efgh-...``)
``pk``   Ed25519 public key, 32 bytes, base64url without padding
``name`` display name, UTF-8, 1 to 64 bytes, no control characters
=======  ====================================================================

Anyone on the LAN can send any TXT record, so :func:`decode_txt` trusts nothing:
every malformed record raises :class:`AdvertError`, and the ``id`` is checked against
the key with the caller's ``peer_id_of`` (the crypto module's ``peer_id``).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PROTOCOL_VERSION = 1
PUBLIC_KEY_BYTES = 32
MAX_NAME_BYTES = 64
MAX_PEER_ID_CHARS = 64

# Lowercase base32 groups joined by dashes: what the crypto module's peer_id makes.
_PEER_ID_RE = re.compile(r"[a-z2-7]+(?:-[a-z2-7]+)*")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
# Bidirectional overrides would let a name display as something it is not.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class AdvertError(ValueError):
    """A peer's TXT record is malformed: remote bad data, never our bug.

    Raised by :func:`decode_txt`; the message says what was wrong.
    """


@dataclass(frozen=True)
class PeerAdvert:
    """What a peer tells the LAN about itself. Constructing one validates it.

    Raises ``ValueError`` for an invalid field (local misuse when we build our own).
    """

    version: int
    peer_id: str
    public_key: bytes
    name: str

    def __post_init__(self) -> None:
        if self.version != PROTOCOL_VERSION:
            raise ValueError(f"unsupported protocol version {self.version!r}")
        if len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes")
        if len(self.peer_id) > MAX_PEER_ID_CHARS or not _PEER_ID_RE.fullmatch(self.peer_id):
            raise ValueError("peer id is not lowercase base32 groups")
        _check_name(self.name)


def encode_txt(advert: PeerAdvert) -> dict[str, str]:
    """The TXT properties for ``advert`` (pass them to zeroconf's ``ServiceInfo``)."""
    return {
        "v": str(advert.version),
        "id": advert.peer_id,
        "pk": _b64url_encode(advert.public_key),
        "name": advert.name,
    }


def decode_txt(
    properties: Mapping[bytes, bytes | None],
    *,
    peer_id_of: Callable[[bytes], str] | None,
) -> PeerAdvert:
    """Parse and check a peer's TXT properties (as zeroconf's ``ServiceInfo.properties``).

    ``peer_id_of`` maps a public key to its peer id; an advert whose ``id`` does not
    match its ``pk`` is rejected. ``None`` leaves that check to the caller (the node
    wants to see an advert that claims a contact's id with another key, to warn).
    Raises :class:`AdvertError` for anything malformed, and nothing else.
    """
    fields: dict[str, bytes | None] = {}
    for raw_key, value in properties.items():
        try:
            key = raw_key.decode("ascii").lower()
        except UnicodeDecodeError:
            continue  # not one of ours; RFC 6763 keys are printable ASCII
        if key in fields:
            raise AdvertError(f"duplicate key {key!r}")
        fields[key] = value

    version = _text(fields, "v", 3)
    if version != str(PROTOCOL_VERSION):
        raise AdvertError(f"unsupported protocol version {version!r}")
    claimed_id = _text(fields, "id", MAX_PEER_ID_CHARS)
    public_key = _b64url_decode(_text(fields, "pk", 64))
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise AdvertError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    name = _text(fields, "name", MAX_NAME_BYTES)

    try:
        advert = PeerAdvert(PROTOCOL_VERSION, claimed_id, public_key, name)
        expected_id = claimed_id if peer_id_of is None else peer_id_of(public_key)
    except ValueError as exc:
        raise AdvertError(str(exc)) from None
    if claimed_id != expected_id:
        raise AdvertError("peer id does not match public key")
    return advert


def _text(fields: Mapping[str, bytes | None], key: str, max_bytes: int) -> str:
    value = fields.get(key)
    if value is None:
        raise AdvertError(f"missing value for {key!r}")
    if len(value) > max_bytes:
        raise AdvertError(f"value of {key!r} is longer than {max_bytes} bytes")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise AdvertError(f"value of {key!r} is not UTF-8") from None


def _check_name(name: str) -> None:
    size = len(name.encode("utf-8", errors="replace"))
    if not 0 < size <= MAX_NAME_BYTES:
        raise ValueError(f"name must be 1 to {MAX_NAME_BYTES} bytes of UTF-8")
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI_CONTROLS for c in name):
        raise ValueError("name contains control characters")


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: one canonical spelling per byte string."""
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise AdvertError("public key is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AdvertError("public key is not base64url") from None
    if _b64url_encode(data) != text:  # non-zero trailing bits
        raise AdvertError("public key is not canonical base64url")
    return data
