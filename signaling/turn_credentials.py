"""STUN/TURN servers for the guests and owners of a standalone server: the ``IceOffer``.

The server holds coturn's shared secret (``use-auth-secret``) and mints short-lived
credentials per room with coturn's REST scheme (coturn ``src/apps/relay/userdb.c``):
username ``<expiry unix s>:r<room_id[:10]>``, password
``base64(HMAC-SHA1(secret, username))``. coturn refuses a username whose expiry has
passed, so a credential only bounds *joining*: an allocation made in time keeps being
refreshed (the session caches the key). The secret itself never leaves this process.

The URLs are checked once, at start, against what both ends can use: aiortc takes the
first ``turn:``/``turns:`` URL and the first ``stun:`` URL only (so a UDP ``turn:`` URL
goes first), ``turns:`` only with ``?transport=tcp``, and no IPv6 literal (its URL
pattern has no brackets). Pure: no I/O, ``now`` is an argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ICE_POLICIES",
    "MAX_ICE_URLS",
    "MAX_ICE_URL_LENGTH",
    "MIN_SECRET_LENGTH",
    "TURN_TTL_DEFAULT",
    "TURN_TTL_MAX",
    "TURN_TTL_MIN",
    "IceProvider",
    "TurnConfig",
    "TurnConfigError",
    "is_udp_turn_url",
    "mint",
]

TURN_TTL_MIN: Final = 300
TURN_TTL_MAX: Final = 3600
TURN_TTL_DEFAULT: Final = 3600
#: The node refuses longer URLs and more servers than this (transport/ice_config.py).
MAX_ICE_URL_LENGTH: Final = 256
MAX_ICE_URLS: Final = 4
MIN_SECRET_LENGTH: Final = 16
ICE_POLICIES: Final = ("all", "relay")

# Host: a DNS name or an IPv4 address (no brackets: aiortc cannot parse IPv6 literals).
_HOST: Final = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_PORT: Final = r"(?::(?P<port>[0-9]{1,5}))?"
_STUN_URL: Final = re.compile(rf"stun:{_HOST}{_PORT}")
_TURN_URL: Final = re.compile(rf"(?P<scheme>turns?):{_HOST}{_PORT}(?:\?transport=(?P<tr>udp|tcp))?")


class TurnConfigError(ValueError):
    """A STUN/TURN setting is unusable; the message is one line, fit for the user."""


def mint(secret: bytes, room_id: str, now: float, ttl: int) -> tuple[str, str]:
    """coturn REST credentials for ``room_id``, valid for new allocations until now+ttl."""
    username = f"{int(now) + ttl}:r{room_id[:10]}"
    digest = hmac.new(secret, username.encode("ascii"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def is_udp_turn_url(url: str) -> bool:
    """A ``turn:`` URL over UDP (no transport means UDP)."""
    return url.startswith("turn:") and not url.endswith("?transport=tcp")


@dataclass(frozen=True)
class TurnConfig:
    """What ``--turn-url``/``--stun-url``/``--turn-secret-file``/``--turn-ttl``/
    ``--ice-policy`` say; checked at construction (``TurnConfigError``)."""

    turn_urls: tuple[str, ...]
    stun_urls: tuple[str, ...]
    secret: bytes = field(repr=False)
    ttl: int = TURN_TTL_DEFAULT
    policy: str = "all"

    def __post_init__(self) -> None:
        for url in self.turn_urls:
            _check_url(url, _TURN_URL, "--turn-url", "turn:HOST[:PORT][?transport=udp|tcp]")
            if url.startswith("turns:") and not url.endswith("?transport=tcp"):
                raise TurnConfigError(f"--turn-url {url}: a turns: URL needs ?transport=tcp")
        for url in self.stun_urls:
            _check_url(url, _STUN_URL, "--stun-url", "stun:HOST[:PORT]")
        if not self.turn_urls and not self.stun_urls:
            raise TurnConfigError("give at least one --turn-url or --stun-url")
        if len(self.turn_urls) + len(self.stun_urls) > MAX_ICE_URLS:
            raise TurnConfigError(f"at most {MAX_ICE_URLS} STUN/TURN URLs in all")
        if self.turn_urls and len(self.secret) < MIN_SECRET_LENGTH:
            raise TurnConfigError(
                f"the TURN secret must be at least {MIN_SECRET_LENGTH} characters"
            )
        if not TURN_TTL_MIN <= self.ttl <= TURN_TTL_MAX:
            raise TurnConfigError(
                f"--turn-ttl must be within {TURN_TTL_MIN}..{TURN_TTL_MAX} seconds"
            )
        if self.policy not in ICE_POLICIES:
            raise TurnConfigError(f"--ice-policy must be one of: {', '.join(ICE_POLICIES)}")
        if self.policy == "relay" and not self.turn_urls:
            raise TurnConfigError("--ice-policy relay needs a --turn-url")


class IceProvider:
    """Mints the ``IceOffer`` each owner and guest socket of a room receives."""

    def __init__(self, config: TurnConfig) -> None:
        self._config = config
        # aiortc uses only the first TURN URL: put the UDP ones first, order kept otherwise.
        udp = [url for url in config.turn_urls if is_udp_turn_url(url)]
        self._turn_urls = udp + [url for url in config.turn_urls if url not in udp]

    @property
    def ttl(self) -> int:
        """Lifetime of a credential in seconds (owners get a fresh one every ttl/2)."""
        return self._config.ttl

    def for_room(self, room_id: str, now: float) -> dict[str, object] | None:
        """The JSON-ready ``IceOffer`` for ``room_id`` at ``now`` (unix seconds)."""
        config = self._config
        servers: list[dict[str, object]] = []
        expires_at = int(now) + config.ttl
        if self._turn_urls:
            username, password = mint(config.secret, room_id, now, config.ttl)
            servers.append(
                {"urls": list(self._turn_urls), "username": username, "credential": password}
            )
        if config.stun_urls:
            servers.append({"urls": list(config.stun_urls)})
        return {"ice_servers": servers, "policy": config.policy, "expires_at": expires_at}


def _check_url(url: str, pattern: re.Pattern[str], flag: str, shape: str) -> None:
    if len(url) > MAX_ICE_URL_LENGTH:
        raise TurnConfigError(f"{flag}: longer than {MAX_ICE_URL_LENGTH} characters")
    if url.split(":", 1)[-1].startswith("["):
        raise TurnConfigError(f"{flag} {url}: IPv6 literals are not supported (aiortc): use a name")
    match = pattern.fullmatch(url)
    if match is None:
        raise TurnConfigError(f"{flag} {url!r}: expected {shape}")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise TurnConfigError(f"{flag} {url}: no such port: {port}")
