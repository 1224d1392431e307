"""Invite-link secrets (the Firefox Send / Excalidraw pattern).

The secret travels only in the URL fragment, which browsers never send to the
server. The server learns the room id; the envelope key stays with the endpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from p2pchat.crypto import purposes
from p2pchat.crypto.encoding import b64url_decode, b64url_encode

SECRET_BYTES = 32
ROOM_ID_BYTES = 16
ENVELOPE_KEY_BYTES = 32
PASSWORD_SUFFIX = ".pw"  # noqa: S105 - a marker in the link, not a password


@dataclass(frozen=True)
class LinkSecret:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != SECRET_BYTES:
            raise ValueError(f"link secret must be {SECRET_BYTES} bytes")

    @classmethod
    def generate(cls) -> LinkSecret:
        return cls(os.urandom(SECRET_BYTES))

    @classmethod
    def from_fragment(cls, fragment: str) -> LinkSecret:
        try:
            text = fragment.removeprefix("#").removesuffix(PASSWORD_SUFFIX)
            return cls(b64url_decode(text))
        except ValueError as exc:
            raise ValueError("the link is damaged: ask for a new one") from exc

    @property
    def fragment(self) -> str:
        return b64url_encode(self.secret)

    @property
    def room_id(self) -> str:
        return b64url_encode(self.room_id_raw)

    @property
    def room_id_raw(self) -> bytes:
        """The room id's 16 bytes (CPace's channel identifier on a password link)."""
        return purposes.derive(purposes.LINK_ROOM, self.secret, ROOM_ID_BYTES)

    @property
    def envelope_key(self) -> bytes:
        return purposes.derive(purposes.LINK_ENVELOPE, self.secret, ENVELOPE_KEY_BYTES)

    def url(self, host: str, port: int, *, password: bool = False) -> str:
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return self.url_at(f"https://{host}:{port}", password=password)

    def url_at(self, base: str, *, password: bool = False) -> str:
        """The link under ``base`` (``https://HOST[:PORT]``); ``password``: the fragment
        ends in ``.pw`` (outside base64url), so the page asks for the password."""
        suffix = PASSWORD_SUFFIX if password else ""
        return f"{base}/c/{self.room_id}#{self.fragment}{suffix}"
