"""Where invite links point: the node's own (embedded) server, or a remote one.

:class:`EmbeddedInviteServer` is the LAN case: the node serves the guest page and the
guest sockets itself (TLS with its self-signed certificate). :class:`RemoteInviteServer`
claims each invite's room on a ``p2pchat signal-server`` through one
:class:`~signaling.owner_client.OwnerClient` per server URL; its guests reach the same
:class:`~signaling.app.OwnerHooks` (the :class:`~p2pchat.node.guests.GuestHost`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from p2pchat.crypto.link import LinkSecret
from p2pchat.errors import UserError
from p2pchat.node.config import NodeConfig, lan_address

if TYPE_CHECKING:
    from signaling.app import OwnerHooks
    from signaling.owner_client import OwnerClient
    from signaling.rooms import RoomRegistry
    from signaling.server import SignalingServer

logger = logging.getLogger(__name__)

MAX_SERVER_URL_CHARS = 256
MAX_TOKEN_CHARS = 256
DEFAULT_HTTPS_PORT = 443


@dataclass(frozen=True)
class ServerUrl:
    """A remote invite server: ``https://HOST[:PORT]`` (443 omitted), nothing else."""

    host: str  # IPv6 without brackets
    port: int

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}" + ("" if self.port == DEFAULT_HTTPS_PORT else f":{self.port}")

    def link(self, secret: LinkSecret, *, password: bool = False) -> str:
        """The invite link on this server (the guest page's path, the secret as fragment;
        ``password``: it ends in ``.pw``)."""
        return secret.url_at(self.base, password=password)


def parse_server_url(text: str) -> ServerUrl:
    """``https://host[:port][/]`` (or a bare ``host[:port]``) → :class:`ServerUrl`;
    :class:`UserError` (one line) for anything else: plain http, a path, a query, a user."""
    text = text.strip()
    if not text or len(text) > MAX_SERVER_URL_CHARS:
        raise UserError(f"--server: a URL of 1 to {MAX_SERVER_URL_CHARS} characters, please")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"--server: not a URL: {exc}") from None
    if parts.scheme.lower() != "https":
        raise UserError("--server: the invite server must be https://HOST[:PORT]")
    if parts.username is not None or parts.password is not None:
        raise UserError("--server: no user name in the URL (use --server-token)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UserError("--server: just https://HOST[:PORT], without a path")
    host = (parts.hostname or "").lower()
    if not host or not _host_ok(host):
        raise UserError(f"--server: {parts.netloc!r} is not a host name or address")
    if port == 0:
        raise UserError("--server: the port is 1 to 65535")
    return ServerUrl(host, port or DEFAULT_HTTPS_PORT)


def check_server_token(token: str) -> str:
    """The owner token: 1..256 visible ASCII characters (it goes in an HTTP header)."""
    token = token.strip()
    if not 0 < len(token) <= MAX_TOKEN_CHARS or not all(33 <= ord(c) < 127 for c in token):
        raise UserError(
            f"--server-token: 1 to {MAX_TOKEN_CHARS} visible ASCII characters, no spaces"
        )
    return token


class InviteServer(Protocol):
    """Rooms for invites, and what the owner shows beside a link."""

    server: str | None  # the remote server's base URL; None: the node's own (LAN)

    @property
    def state(self) -> str | None: ...  # remote: connecting|connected|reconnecting|refused
    @property
    def certificate_sha256(self) -> str: ...
    def link(self, secret: LinkSecret, *, password: bool = False) -> str: ...
    async def async_open_room(self, room_id: str, *, expires_at: float, claim: bytes) -> None: ...
    def revoke(self, room_id: str) -> None: ...
    def ice_for(self, room_id: str) -> dict[str, object] | None: ...
    async def async_stop(self) -> None: ...


class EmbeddedInviteServer:
    """The node's own server on the LAN (``--invite-port``), started on first use."""

    server: str | None = None

    def __init__(self, config: NodeConfig, hooks: OwnerHooks) -> None:
        self._config = config
        self._hooks = hooks
        self._server: SignalingServer | None = None
        self._registry: RoomRegistry | None = None
        self._host = ""
        self._fingerprint = ""

    @property
    def state(self) -> str | None:
        return None

    @property
    def certificate_sha256(self) -> str:
        return self._fingerprint

    async def async_start(self) -> None:
        if self._server is not None:
            return
        from signaling.rooms import RoomRegistry
        from signaling.server import SignalingServer
        from signaling.tls import load_or_create_certificate, sha256_fingerprint, ssl_context

        self._host = lan_address(self._config)
        files = load_or_create_certificate(self._config.data_dir)
        self._fingerprint = sha256_fingerprint(files)
        self._registry = RoomRegistry()
        # Guests are on the LAN: without --interface, every IPv4 address serves them.
        host = bind_host(self._config) or "0.0.0.0"  # noqa: S104
        server = SignalingServer(
            self._registry, host=host, port=self._config.invite_port,
            ssl_context=ssl_context(files), owner_hooks=self._hooks,
        )  # fmt: skip
        try:
            await server.async_start()
        except OSError as exc:
            raise UserError(f"cannot start the invite server: {exc}") from None
        self._server = server

    def link(self, secret: LinkSecret, *, password: bool = False) -> str:
        assert self._server is not None
        return secret.url(self._host, self._server.port, password=password)

    async def async_open_room(self, room_id: str, *, expires_at: float, claim: bytes) -> None:
        import time

        await self.async_start()
        assert self._registry is not None
        # A used-up room stays live until it expires, so a guest already in can
        # reconnect; the node refuses new guests on it (close code 4403).
        self._registry.open_room(room_id, expires_at=expires_at, now=time.time())

    def revoke(self, room_id: str) -> None:
        if self._registry is not None:
            self._registry.revoke(room_id)

    def ice_for(self, room_id: str) -> dict[str, object] | None:
        return None  # the LAN: no STUN, no TURN

    async def async_stop(self) -> None:
        if self._server is not None:
            await self._server.async_stop()


class RemoteInviteServer:
    """Invites on a ``p2pchat signal-server``: one owner socket per room, re-claimed
    by itself after a loss. ``on_status(url, state, detail)`` hears every change."""

    def __init__(
        self,
        url: ServerUrl,
        hooks: OwnerHooks,
        *,
        token: str | None = None,
        on_status: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.url = url
        self.server: str | None = url.base
        self._hooks = hooks
        self._token = token
        self._on_status = on_status
        self._client: OwnerClient | None = None

    @property
    def state(self) -> str | None:
        return self._client.state if self._client is not None else "connecting"

    @property
    def certificate_sha256(self) -> str:
        return self._client.certificate_sha256 if self._client is not None else ""

    def link(self, secret: LinkSecret, *, password: bool = False) -> str:
        return self.url.link(secret, password=password)

    async def async_open_room(self, room_id: str, *, expires_at: float, claim: bytes) -> None:
        from signaling.owner_client import OwnerClient, OwnerClientError

        if self._client is None:
            self._client = OwnerClient(
                self.url.base, self._hooks, owner_token=self._token, on_status=self._status
            )
        try:
            await self._client.async_open_room(room_id, expires_at=expires_at, claim=claim)
        except OwnerClientError as exc:
            raise UserError(self._explain(exc)) from None

    def revoke(self, room_id: str) -> None:
        if self._client is None:
            return
        # A room gone already (refused or expired) takes nobody new anyway.
        with contextlib.suppress(ValueError):
            self._client.set_room_state(room_id, "revoked")

    def ice_for(self, room_id: str) -> dict[str, object] | None:
        return self._client.ice_for(room_id) if self._client is not None else None

    async def async_stop(self) -> None:
        if self._client is not None:
            await self._client.async_close()

    def _status(self, state: str, detail: str) -> None:
        if self._on_status is not None:
            self._on_status(self.url.base, state, detail)

    def _explain(self, exc: Exception) -> str:
        """One line that says what to do."""
        kind = getattr(exc, "kind", "")
        where = self.url.base
        if kind == "token":
            return (
                f"the invite server {where} refused the owner token:"
                " check --server-token (or `p2pchat server set URL --token-file FILE`)"
            )
        if kind == "tls":
            return (
                f"the invite server {where} has a certificate this node does not trust"
                f" ({exc}): give it a certificate from a public CA, or point"
                " SSL_CERT_FILE at your CA before starting the node"
            )
        if kind == "unreachable":
            return (
                f"cannot reach the invite server {where}: check the address and that"
                f" `p2pchat signal-server` runs there ({exc})"
            )
        return f"the invite server {where} refused the invite: {exc}"


def bind_host(config: NodeConfig) -> str | None:
    """Where the invite server listens: the chosen interfaces' address, else everywhere."""
    return lan_address(config) if config.interfaces else None


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(
        0 < len(label) <= 63
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    )
