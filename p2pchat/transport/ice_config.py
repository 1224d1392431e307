"""The STUN/TURN servers a standalone signaling server offers, as aiortc can use them.

The server sends an ``IceOffer`` (docs/guest-protocol.md "Standalone")::

    {"ice_servers": [{"urls": ["turn:H:P?transport=udp"], "username": "…", "credential": "…"},
                     {"urls": ["stun:H:P"]}],
     "policy": "all" | "relay", "expires_at": <unix s>}

The server is not trusted, so the JSON is bounded (``MAX_ICE_SERVERS`` entries,
``MAX_ICE_URLS_PER_SERVER`` URLs each, ``MAX_ICE_URL_LENGTH`` / ``MAX_CREDENTIAL_LENGTH``
characters) and every URL must be one aiortc can use: ``stun:``, ``turn:`` over UDP or
TCP, ``turns:`` over TCP only, no IPv6 literal. aiortc takes the first TURN and the first
STUN URL and ignores the rest (``aiortc/rtcicetransport.py`` ``connection_kwargs``), so
``IceConfig`` keeps just those. Pure apart from building aiortc's ``RTCConfiguration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from p2pchat.transport.errors import RemoteTransportError

__all__ = [
    "MAX_CREDENTIAL_LENGTH",
    "MAX_ICE_SERVERS",
    "MAX_ICE_URLS_PER_SERVER",
    "MAX_ICE_URL_LENGTH",
    "IceConfig",
    "RemoteIceConfigError",
    "parse_ice_offer",
    "rtc_configuration",
]

MAX_ICE_SERVERS: Final = 4
MAX_ICE_URLS_PER_SERVER: Final = 4
MAX_ICE_URL_LENGTH: Final = 256
MAX_CREDENTIAL_LENGTH: Final = 256
_POLICIES: Final = ("all", "relay")
_MAX_EXPIRES_AT: Final = 2**40  # far beyond any real date, well inside a float's integers

# Host: a DNS name or an IPv4 address; aiortc's URL pattern has no room for "[v6]".
_HOST: Final = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_PORT: Final = r"(?::(?P<port>[0-9]{1,5}))?"
_STUN_URL: Final = re.compile(rf"stun:{_HOST}{_PORT}")
_TURN_URL: Final = re.compile(rf"turn:{_HOST}{_PORT}(?:\?transport=(?:udp|tcp))?")
_TURNS_URL: Final = re.compile(rf"turns:{_HOST}{_PORT}\?transport=tcp")


class RemoteIceConfigError(RemoteTransportError):
    """The server's ICE offer is malformed, over a bound, or names an unusable URL."""


@dataclass(frozen=True)
class IceConfig:
    """The one TURN server (with its credential) and one STUN server aiortc will use."""

    turn_url: str | None = None
    turn_username: str | None = None
    turn_credential: str | None = field(default=None, repr=False)
    stun_url: str | None = None
    policy: str = "all"  # "relay": gather relayed candidates only
    expires_at: int | None = None  # unix s; new TURN allocations are refused after it


def parse_ice_offer(offer: object) -> IceConfig:
    """Check a decoded ``IceOffer`` (the ``ice`` of ``ready``, or an ``ice`` message).

    Raises ``RemoteIceConfigError`` (one line) for anything malformed or over a bound.
    """
    if not isinstance(offer, dict):
        raise RemoteIceConfigError("ICE offer: not a JSON object")
    servers = offer.get("ice_servers")
    if not isinstance(servers, list) or len(servers) > MAX_ICE_SERVERS:
        raise RemoteIceConfigError(
            f"ICE offer: ice_servers must be a list of at most {MAX_ICE_SERVERS}"
        )
    policy = offer.get("policy", "all")
    if policy not in _POLICIES:
        raise RemoteIceConfigError("ICE offer: policy must be all or relay")
    expires_at = offer.get("expires_at")
    if expires_at is not None and (
        not isinstance(expires_at, int)
        or isinstance(expires_at, bool)
        or not 0 <= expires_at <= _MAX_EXPIRES_AT
    ):
        raise RemoteIceConfigError("ICE offer: expires_at must be a unix time")
    turn: tuple[str, str, str] | None = None
    stun: str | None = None
    for server in servers:
        urls, username, credential = _server(server)
        for url in urls:
            if url.startswith("stun:"):
                stun = stun or url
            elif turn is None:
                if username is None or credential is None:
                    raise RemoteIceConfigError(
                        "ICE offer: a TURN server needs username and credential"
                    )
                turn = (url, username, credential)
    if policy == "relay" and turn is None:
        raise RemoteIceConfigError("ICE offer: policy relay without a TURN server")
    return IceConfig(
        turn_url=None if turn is None else turn[0],
        turn_username=None if turn is None else turn[1],
        turn_credential=None if turn is None else turn[2],
        stun_url=stun,
        policy=str(policy),
        expires_at=expires_at,
    )


def rtc_configuration(ice: IceConfig | None) -> RTCConfiguration:
    """aiortc's configuration: no servers at all without ``ice`` (the LAN: no stall on
    unreachable default STUN servers), else the TURN and STUN servers and the policy."""
    if ice is None:
        return RTCConfiguration(iceServers=[])
    servers: list[RTCIceServer] = []
    if ice.turn_url is not None:
        servers.append(
            RTCIceServer(
                urls=[ice.turn_url], username=ice.turn_username, credential=ice.turn_credential
            )
        )
    if ice.stun_url is not None:
        servers.append(RTCIceServer(urls=[ice.stun_url]))
    policy = RTCIceTransportPolicy.RELAY if ice.policy == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def _server(server: object) -> tuple[list[str], str | None, str | None]:
    if not isinstance(server, dict):
        raise RemoteIceConfigError("ICE offer: a server entry is not an object")
    urls = server.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_ICE_URLS_PER_SERVER:
        raise RemoteIceConfigError(f"ICE offer: urls must hold 1..{MAX_ICE_URLS_PER_SERVER} URLs")
    for url in urls:
        _check_url(url)
    return urls, _text(server, "username"), _text(server, "credential")


def _check_url(url: object) -> None:
    if not isinstance(url, str) or len(url) > MAX_ICE_URL_LENGTH:
        raise RemoteIceConfigError(
            f"ICE offer: a URL is not text of at most {MAX_ICE_URL_LENGTH} characters"
        )
    pattern = (
        _STUN_URL
        if url.startswith("stun:")
        else _TURNS_URL
        if url.startswith("turns:")
        else _TURN_URL
    )
    match = pattern.fullmatch(url)
    if match is None:
        # repr: the server's text goes into a log line, never raw control characters
        raise RemoteIceConfigError(f"ICE offer: unusable URL {url[:80]!r}")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise RemoteIceConfigError(f"ICE offer: no such port in {url!r}")


def _text(server: dict[object, object], key: str) -> str | None:
    value = server.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CREDENTIAL_LENGTH:
        raise RemoteIceConfigError(
            f"ICE offer: {key} must be text of 1..{MAX_CREDENTIAL_LENGTH} characters"
        )
    return value
