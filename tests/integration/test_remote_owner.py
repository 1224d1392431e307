"""The node as the owner of rooms on a remote ``p2pchat signal-server``: a real node
(control socket, CLI) claims its invite rooms over TLS on an in-process standalone
``SignalingServer`` (its self-signed certificate trusted through ``SSL_CERT_FILE``);
Python guests (the guest's protocol, real aiortc) join through that server.

Covered: ``invite --server`` and chat both ways over the relay; a server restart (the
owner re-claims by itself, seen as ``invite_server_status`` events, and a new guest
joins); a direct guest whose socket closes keeps chatting; a wrong owner token, an
unreachable server and an untrusted certificate (one line each, nothing half-made);
``server set / clear / show``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from p2pchat.cli import main
from p2pchat.control.server import ControlServer
from p2pchat.control.socket_path import control_socket_path
from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.node import Node, NodeConfig
from p2pchat.node.events import GuestJoined, GuestLeft, InviteServerStatus, MessageEvent, NodeEvent
from p2pchat.protocol import events
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.session import Role, Session
from p2pchat.store import KdfLimits, create_profile
from p2pchat.transport.webrtc import DataChannelLink
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
from signaling.tls import load_or_create_certificate, sha256_fingerprint, ssl_context

FAST = KdfLimits(opslimit=1, memlimit=8192)
TOKEN = "owner-token-0123456789"
SIGNAL, RELAY = 0x01, 0x02
WAIT_S = 30.0  # only catches a hang
T = TypeVar("T")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class World:
    """A node with its control socket, and a TLS signal server, on one loop in a thread."""

    loop: asyncio.AbstractEventLoop
    data_dir: Path
    node: Node
    cert: Path
    files: Any
    server: SignalingServer
    events: list[NodeEvent] = field(default_factory=list)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.server.base_url

    def cli(self, *args: str) -> int:
        return main(["--data-dir", str(self.data_dir), *args])

    def wait_event(
        self, match: Callable[[NodeEvent], bool], what: str, *, after: int = 0
    ) -> NodeEvent:
        """The first event from index ``after`` on that ``match``es."""

        async def wait() -> NodeEvent:
            async with asyncio.timeout(WAIT_S):
                while True:
                    for event in self.events[after:]:
                        if match(event):
                            return event
                    await asyncio.sleep(0.02)

        try:
            return self.run(wait())
        except TimeoutError:
            raise AssertionError(f"no {what}; events: {self.events}") from None

    def restart_server(self) -> None:
        """Stop the server, start it again on its port, and wait until the owner has
        lost it and re-claimed (its status goes reconnecting, then connected)."""
        port = self.server.port
        self.run(self.server.async_stop())
        self.run(self.async_start_server(port))
        lost = self.wait_event(
            lambda e: isinstance(e, InviteServerStatus) and e.state == "reconnecting",
            "reconnecting",
        )
        self.wait_event(
            lambda e: isinstance(e, InviteServerStatus) and e.state == "connected",
            "connected again",
            after=self.events.index(lost),
        )

    async def async_start_server(self, port: int = 0, token: str = TOKEN) -> None:
        self.server = SignalingServer(
            RoomRegistry(), host="127.0.0.1", port=port, ssl_context=ssl_context(self.files),
            static_dir=None, owner_hooks=None, owner_token=token,
        )  # fmt: skip
        await self.server.async_start()


async def async_new_world(loop: asyncio.AbstractEventLoop, data: Path, files: Any) -> World:
    """A new profile and its node (every event kept in ``events``), with its control
    socket; no signal server yet."""
    profile = create_profile(data, "pw", name="owner", identity_seed=os.urandom(32),
                             kdf_limits=FAST)  # fmt: skip
    node = Node(profile, NodeConfig(data_dir=data, interfaces=["lo"]))
    w = World(loop, data, node, files.cert, files, None)  # type: ignore[arg-type]
    emit = node.emit

    def record(event: NodeEvent) -> None:
        w.events.append(event)
        emit(event)

    node.emit = record  # type: ignore[method-assign]
    w.control = ControlServer(node, control_socket_path(data))  # type: ignore[attr-defined]
    await w.control.async_start()  # type: ignore[attr-defined]
    return w


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    files = load_or_create_certificate(tmp_path / "server", addresses=["127.0.0.1"])
    monkeypatch.setenv("SSL_CERT_FILE", str(files.cert))  # the node trusts this server
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    data = tmp_path / "me"

    async def start() -> World:
        w = await async_new_world(loop, data, files)
        await w.async_start_server()
        return w

    w = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    yield w

    async def stop() -> None:
        await w.control.async_stop()  # type: ignore[attr-defined]
        await w.node.guests.async_stop()
        await w.server.async_stop()
        w.node.profile.close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


class PyGuest:
    """A guest's page in Python: a sealed OFFER through the server's guest socket,
    then the session on the relay (the socket) or, ``direct``, on the data channel."""

    def __init__(self, link: str, cert: Path, *, direct: bool = False) -> None:
        self.link = URL(link)
        self.secret = LinkSecret.from_fragment(self.link.fragment)
        self.cert = cert
        self.direct = direct
        self.guest_id = _b64url(os.urandom(16))
        self.session = Session(
            Role.INITIATOR, LinkEnvelopes(self.secret.envelope_key, ReplayGuard())
        )
        self.received: list[str] = []
        self.opened = asyncio.Event()
        self.got_message = asyncio.Event()
        self.channel: DataChannelLink | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._http: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"guest:{self.guest_id}"

    async def async_join(self, name: str) -> None:
        self.channel, sdp = await DataChannelLink.async_create_offer(
            on_message=self._on_data, interfaces=["lo"], files_channel=False
        )
        context = ssl.create_default_context(cafile=str(self.cert))
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        room = self.link.path.rsplit("/", 1)[-1]
        self.ws = await self._http.ws_connect(
            f"wss://{self.link.host}:{self.link.port}/ws/{room}", max_msg_size=0
        )
        offer = self.session.make_offer(sdp, _now_ms(), {"guest": self.guest_id, "name": name})
        await self.ws.send_bytes(bytes([SIGNAL]) + offer)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        async with asyncio.timeout(WAIT_S):
            await self.opened.wait()

    async def async_send(self, text: str) -> None:
        _, data = self.session.send_text(text, _now_ms())
        self._send(data)

    async def async_close_socket(self) -> None:
        assert self.ws is not None
        await self.ws.close()

    async def async_leave(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.channel is not None:
            await self.channel.async_close()
        if self._http is not None:
            await self._http.close()

    def _send(self, sealed: bytes) -> None:
        data = encode_batch([sealed]) if self.session.batching else sealed
        if self.direct:
            assert self.channel is not None
            self.channel.send(data)
        else:
            assert self.ws is not None
            asyncio.get_running_loop().create_task(self.ws.send_bytes(bytes([RELAY]) + data))

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            kind, body = msg.data[0], msg.data[1:]
            if kind == SIGNAL:
                answer = self.session.receive_answer(body, _now_ms())
                if self.direct:
                    assert self.channel is not None
                    await self.channel.async_apply_answer(answer.sdp)
                    await self.channel.async_wait_open(WAIT_S)
                    self.channel.send(self.session.stream_header())
                else:
                    await self.ws.send_bytes(bytes([RELAY]) + self.session.stream_header())
            elif kind == RELAY:
                self._on_data(body)

    def _on_data(self, data: bytes) -> None:
        for event in self.session.receive_data(data, _now_ms()):
            if isinstance(event, events.SessionOpened):
                self.opened.set()
            elif isinstance(event, events.MessageReceived):
                self.received.append(event.text)
                self.got_message.set()
                self._send(self.session.send_receipt(event.message_id, _now_ms()))
            elif isinstance(event, events.PingReceived):
                self._send(self.session.pong(event.ping_id, _now_ms()))


async def async_until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (the timeout only catches a hang)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def invite(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert world.cli("invite", "--json", "--uses", "2", *args) == 0
    view: dict[str, Any] = json.loads(capsys.readouterr().out)
    return view


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    return captured.err.removeprefix("p2pchat: ").rstrip("\n")


def chat_both_ways(world: World, guest: PyGuest, tag: str) -> None:
    world.run(world.node.async_send(guest.label, f"to the guest {tag}"))
    world.run(guest.async_send(f"to the owner {tag}"))
    world.wait_event(
        lambda e: isinstance(e, MessageEvent) and e.direction == "in"
        and e.text == f"to the owner {tag}",
        f"the guest's message {tag}",
    )  # fmt: skip

    async def received() -> None:
        async with asyncio.timeout(WAIT_S):
            while f"to the guest {tag}" not in guest.received:
                guest.got_message.clear()
                await guest.got_message.wait()

    world.run(received())


def test_invite_on_a_remote_server_chat_and_reconnect_after_a_restart(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    view = invite(world, capsys, "--server", world.url, "--server-token", TOKEN)
    assert view["server"] == world.url
    assert view["server_state"] == "connected"
    assert view["url"].startswith(f"{world.url}/c/")
    assert view["certificate_sha256"] == sha256_fingerprint(world.files)
    guest = PyGuest(view["url"], world.cert)
    world.run(guest.async_join("ann"))
    joined = world.wait_event(lambda e: isinstance(e, GuestJoined), "guest_joined")
    assert isinstance(joined, GuestJoined)
    assert joined.path == "relay"
    chat_both_ways(world, guest, "1")
    world.run(guest.async_leave())

    # The server restarts: the owner re-claims its room by itself.
    world.restart_server()
    second = PyGuest(view["url"], world.cert)
    world.run(second.async_join("bea"))
    world.wait_event(
        lambda e: isinstance(e, GuestJoined) and e.name == "bea", "the second guest joined"
    )
    chat_both_ways(world, second, "2")
    world.run(second.async_leave())


def test_a_server_that_no_longer_takes_the_token_is_refused_not_retried(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    invite(world, capsys, "--server", world.url, "--server-token", TOKEN)
    port = world.server.port
    world.run(world.server.async_stop())
    world.run(world.async_start_server(port, token="another-token-0123456789"))
    refused = world.wait_event(
        lambda e: isinstance(e, InviteServerStatus) and e.state == "refused", "refused"
    )
    assert isinstance(refused, InviteServerStatus)
    assert "401" in refused.detail
    assert world.node.guests.server_state(world.url) == "refused"


def test_a_direct_guest_keeps_chatting_when_its_socket_closes(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    view = invite(world, capsys, "--server", world.url, "--server-token", TOKEN)
    closed = threading.Event()
    hooks = world.node.guests
    on_guest_closed = hooks.on_guest_closed

    def spy(room_id: str, connection: Any) -> None:
        on_guest_closed(room_id, connection)
        closed.set()

    hooks.on_guest_closed = spy  # type: ignore[method-assign]
    guest = PyGuest(view["url"], world.cert, direct=True)
    world.run(guest.async_join("ann"))
    joined = world.wait_event(lambda e: isinstance(e, GuestJoined), "guest_joined")
    assert isinstance(joined, GuestJoined)
    assert joined.path == "direct"
    world.run(guest.async_close_socket())
    assert closed.wait(WAIT_S)  # the owner heard that the guest's socket closed
    chat_both_ways(world, guest, "after the socket closed")
    assert not [e for e in world.events if isinstance(e, GuestLeft)]
    world.run(guest.async_leave())


def test_refusals_are_one_line_and_leave_no_invite(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    assert world.cli("invite", "--server", world.url, "--server-token", "wrong-token") == 1
    line = one_error_line(capsys)
    assert "refused the owner token" in line
    assert "--server-token" in line

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert world.cli("invite", "--server", f"https://127.0.0.1:{free}") == 1
    assert "cannot reach the invite server" in one_error_line(capsys)

    assert world.cli("invite", "--server", "http://127.0.0.1:1") == 1
    assert "https://HOST[:PORT]" in one_error_line(capsys)

    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-cas"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-ca.pem"))
    assert world.cli("invite", "--server", world.url, "--server-token", TOKEN) == 1
    assert "certificate this node does not trust" in one_error_line(capsys)

    assert world.cli("invites", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_server_set_show_clear(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert world.cli("server") == 0
    assert "no server set" in capsys.readouterr().out
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert world.cli("server", "set", world.url + "/", "--token-file", str(token_file)) == 0
    out = capsys.readouterr().out
    assert world.url in out
    assert TOKEN not in out
    assert world.node.profile.settings.invite_server == world.url
    assert TOKEN not in repr(world.node.profile.settings)

    # invite without --server uses the saved one (and its token).
    view = invite(world, capsys)
    assert view["server"] == world.url
    assert world.cli("server", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {"url": world.url, "token_set": True, "state": "connected"}

    assert world.cli("server", "set", "ftp://x") == 1
    assert "https://HOST[:PORT]" in one_error_line(capsys)
    assert world.cli("server", "clear") == 0
    assert "no server set" in capsys.readouterr().out
    assert world.node.profile.settings.invite_server is None


def test_a_revoked_invite_stays_revoked_on_a_restarted_server(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    view = invite(world, capsys, "--server", world.url, "--server-token", TOKEN)
    room = URL(view["url"]).path.rsplit("/", 1)[-1]
    assert world.cli("revoke", view["invite_id"]) == 0
    world.restart_server()

    # The owner says it again after its new claim.
    world.run(async_until(lambda: not world.server.registry.is_live(room, time.time())))
    assert room in world.server.registry


# -- the owner client against a scripted server: claim token, ICE, close codes -----------


class ScriptedServer:
    """``/owner/{room}`` that records each hello and plays one script per connection."""

    def __init__(self, scripts: list[Callable[[web.WebSocketResponse], Awaitable[None]]]) -> None:
        self.scripts = scripts
        self.hellos: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_get("/owner/{room}", self._owner)

    async def _owner(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.hellos.append(json.loads(await ws.receive_str()))
        script = self.scripts[min(len(self.hellos), len(self.scripts)) - 1]
        await script(ws)
        return ws


def ready(ice: dict[str, Any] | None = None) -> str:
    reply: dict[str, Any] = {"type": "ready", "expires_at": time.time() + 600}
    if ice is not None:
        reply["ice"] = ice
    return json.dumps(reply)


def ice_offer(user: str) -> dict[str, Any]:
    return {
        "ice_servers": [{"urls": ["turn:192.0.2.1:3478?transport=udp"], "username": user,
                         "credential": "c"}, {"urls": ["stun:192.0.2.1:3478"]}],
        "policy": "all", "expires_at": int(time.time()) + 3600,
    }  # fmt: skip


async def test_owner_client_reclaims_with_its_token_keeps_the_ice_and_stops_when_refused() -> None:
    from signaling.owner_client import OwnerClient
    from tests.integration.signaling_fakes import FakeOwner, new_room_id

    let_go = asyncio.Event()

    async def first(ws: web.WebSocketResponse) -> None:
        await ws.send_str(ready(ice_offer("u1")))
        await ws.send_str(json.dumps({"type": "ice", **ice_offer("u2")}))
        await ws.close(code=1012, message=b"restarting")

    async def second(ws: web.WebSocketResponse) -> None:
        await ws.send_str(ready())  # no ICE this time: the last offer stays
        await let_go.wait()
        await ws.close(code=4409, message=b"room already claimed")

    scripted = ScriptedServer([first, second])
    runner = web.AppRunner(scripted.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    statuses: list[tuple[str, str]] = []
    changed = asyncio.Event()

    def on_status(state: str, detail: str) -> None:
        statuses.append((state, detail))
        changed.set()

    async def until(state: str, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while [s for s, _ in statuses].count(state) < count:
                changed.clear()
                await changed.wait()

    client = OwnerClient(f"http://127.0.0.1:{port}", FakeOwner(), ssl=False, on_status=on_status)
    room, claim = new_room_id(), os.urandom(32)
    try:
        await client.async_open_room(room, expires_at=time.time() + 600, claim=claim)
        await until("connected", 2)  # after the 1012, by itself
        assert [h["claim"] for h in scripted.hellos] == [_b64url(claim)] * 2
        ice = client.ice_for(room)
        assert ice is not None
        assert ice["ice_servers"][0]["username"] == "u2"  # type: ignore[index]
        let_go.set()
        await until("refused", 1)
        assert [s for s, _ in statuses] == [
            "connecting", "connected", "reconnecting", "connected", "refused",
        ]  # fmt: skip
        assert "1012" in statuses[2][1]
        assert "4409" in statuses[4][1]
        # The loop ends: the room is given up.
        await async_until(lambda: room not in client.rooms and client.ice_for(room) is None)
        assert len(scripted.hellos) == 2
    finally:
        await client.async_close()
        await runner.cleanup()
