"""The control socket end to end: the real ControlServer on a real Unix socket,
the real client and CLI commands, in front of a fake node.

The fake implements ``NodeApi`` here on purpose: what is under test is the server,
the client and the CLI, not the node. The server runs on its own event loop in a
thread, as in the node; the CLI runs in the test's thread, blocking, as for a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from p2pchat.cli import main
from p2pchat.control.api import (
    ContactView,
    PeerView,
    SafetyView,
    SentView,
    StatusView,
)
from p2pchat.control.client import ControlClient, NodeClosed, NoNodeRunning
from p2pchat.control.server import WATCH_ENDED, ControlServer
from p2pchat.control.socket_path import control_socket_path
from p2pchat.control.wire import MAX_REQUEST_BYTES
from p2pchat.crypto.identity import Identity, peer_id
from p2pchat.errors import UserError
from p2pchat.node.events import (
    ContactRequestReceived,
    KeyChangeWarning,
    MessageEvent,
    NodeEvent,
    PeerFound,
    SessionChanged,
)
from p2pchat.store import (
    Contact,
    DeliveryState,
    Direction,
    KdfLimits,
    StoredMessage,
    TrustState,
    contact_conversation_id,
    create_profile,
)

T = TypeVar("T")

ALICE_ID = "abcd-efgh-ijkl-mnop"
BOB_ID = "wxyz-2345-6767-abab"
SAFETY = " ".join(f"{n:05d}" for n in range(11111, 11111 + 12 * 3, 3))
EVIL_NAME = "mallory\x1b[2J\n"


# -- the fake node -------------------------------------------------------------


@dataclass
class FakeNode:
    """A ``NodeApi`` with canned answers that records what it was asked."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_with: BaseException | None = None
    backlog: list[NodeEvent] = field(default_factory=list)  # what a new watcher learns first
    queues: list[asyncio.Queue[NodeEvent | None]] = field(default_factory=list)
    peer_online: bool = True

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.fail_with is not None:
            raise self.fail_with

    async def async_status(self) -> StatusView:
        self._record("status")
        return StatusView("me", "mmmm-nnnn-oooo-pppp", 45678, "me (mmmm)", "/tmp/me")

    async def async_peers(self) -> list[PeerView]:
        self._record("peers")
        return [
            PeerView(ALICE_ID, "alice", ["192.168.1.20", "fe80::1%eth0"], "accepted", "open"),
            PeerView(BOB_ID, EVIL_NAME, ["192.168.1.30"], None, "none"),
        ]

    async def async_contacts(self) -> list[ContactView]:
        self._record("contacts")
        return [
            ContactView(ALICE_ID, "alice", "accepted", True, "aaaa " * 16, True),
            ContactView(BOB_ID, "bob", "pending_outgoing", False, "bbbb " * 16, False),
        ]

    async def async_add_contact(self, peer: str) -> ContactView:
        self._record("add", peer)
        return ContactView(BOB_ID, "bob", "pending_outgoing", False, "bbbb", True)

    async def async_requests(self) -> list[ContactView]:
        self._record("requests")
        return [ContactView(BOB_ID, "bob", "pending_incoming", False, "bbbb", True)]

    async def async_accept(self, peer: str) -> ContactView:
        self._record("accept", peer)
        return ContactView(BOB_ID, "bob", "accepted", False, "bbbb", True)

    async def async_reject(self, peer: str) -> ContactView:
        self._record("reject", peer)
        return ContactView(BOB_ID, "bob", "rejected", False, "bbbb", True)

    async def async_verify(self, peer: str, *, mark_verified: bool) -> SafetyView:
        self._record("verify", peer, mark_verified)
        return SafetyView(ALICE_ID, "alice", SAFETY, "p2pchat:safety:1:xyz", mark_verified)

    async def async_send(self, peer: str, text: str) -> SentView:
        self._record("send", peer, text)
        status = "sent" if self.peer_online else "queued"
        return SentView("aa" * 32, "0f" * 16, status)

    async def async_send_many(self, sends: Sequence[tuple[str, str]]) -> list[SentView | UserError]:
        self._record("send_many", len(sends))
        results: list[SentView | UserError] = []
        for peer, text in sends:
            try:
                results.append(await self.async_send(peer, text))
            except UserError as exc:
                results.append(exc)
        return results

    async def subscribe(self) -> AsyncIterator[NodeEvent]:
        self._record("subscribe")
        queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue()
        for event in self.backlog:
            queue.put_nowait(event)
        self.queues.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self.queues.remove(queue)

    def publish(self, event: NodeEvent | None) -> None:
        """Called on the server's loop; None ends every watch (the node stops)."""
        for queue in self.queues:
            queue.put_nowait(event)


@dataclass
class RunningNode:
    fake: FakeNode
    server: ControlServer
    loop: asyncio.AbstractEventLoop
    data_dir: Path

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def publish(self, event: NodeEvent | None) -> None:
        self.loop.call_soon_threadsafe(self.fake.publish, event)

    def watchers(self) -> int:
        return self.run(_count(self.fake))

    def cli(self, *argv: str) -> int:
        return main(["--data-dir", str(self.data_dir), *argv])


async def _count(fake: FakeNode) -> int:
    return len(fake.queues)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def start_server(loop: asyncio.AbstractEventLoop, data_dir: Path, **kwargs: Any) -> RunningNode:
    fake = FakeNode()
    server = ControlServer(fake, control_socket_path(data_dir), **kwargs)
    node = RunningNode(fake, server, loop, data_dir)
    node.run(server.async_start())
    return node


@pytest.fixture
def node(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[RunningNode]:
    running = start_server(loop, tmp_path)
    yield running
    running.run(running.server.async_stop())


# -- raw socket helpers ----------------------------------------------------------


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def read_line(lines: io.BufferedReader) -> dict[str, Any]:
    line = lines.readline()
    assert line.endswith(b"\n"), line
    obj: dict[str, Any] = json.loads(line)
    return obj


def exchange(path: Path, *requests: bytes) -> list[dict[str, Any]]:
    """Send request lines on one connection, read one answer each."""
    with connect(path) as sock, sock.makefile("rb") as lines:
        answers = []
        for request in requests:
            sock.sendall(request)
            answers.append(read_line(lines))  # type: ignore[arg-type]
        return answers


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("p2pchat: ")
    return err.removeprefix("p2pchat: ").rstrip("\n")


# -- the socket file -------------------------------------------------------------


def test_socket_is_private(node: RunningNode) -> None:
    info = os.lstat(node.server.socket_path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert node.server.socket_path == node.data_dir / "control.sock"


def test_stop_removes_the_socket(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    running = start_server(loop, tmp_path)
    running.run(running.server.async_stop())
    assert not control_socket_path(tmp_path).exists()
    running.run(running.server.async_stop())  # twice is fine


def test_stale_socket_from_a_dead_node_is_replaced(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(control_socket_path(tmp_path)))  # bound, never listening: a dead node
    dead.close()
    running = start_server(loop, tmp_path)
    try:
        assert exchange(running.server.socket_path, b'{"id":1,"cmd":"status"}\n')[0]["ok"]
    finally:
        running.run(running.server.async_stop())


def test_refuses_a_live_socket_or_a_regular_file(node: RunningNode, tmp_path: Path) -> None:
    second = ControlServer(FakeNode(), node.server.socket_path)
    with pytest.raises(UserError, match="already serving"):
        node.run(second.async_start())
    assert exchange(node.server.socket_path, b'{"id":1,"cmd":"status"}\n')[0]["ok"]

    other = tmp_path / "other"
    other.mkdir()
    control_socket_path(other).write_text("not a socket")
    with pytest.raises(UserError, match="not a socket"):
        node.run(ControlServer(FakeNode(), control_socket_path(other)).async_start())
    assert control_socket_path(other).read_text() == "not a socket"


def test_long_data_dir_paths_work(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    assert len(str(control_socket_path(deep))) > 108
    running = start_server(loop, deep)
    try:
        assert stat.S_IMODE(os.lstat(control_socket_path(deep)).st_mode) == 0o600
        assert ControlClient(deep).call("status")["port"] == 45678
    finally:
        running.run(running.server.async_stop())
    assert not control_socket_path(deep).exists()


# -- the wire, raw ---------------------------------------------------------------


def test_malformed_requests_get_errors_and_the_connection_lives_on(node: RunningNode) -> None:
    answers = exchange(
        node.server.socket_path,
        b"this is not json\n",
        b'{"id": 7, "cmd": "explode"}\n',
        b'{"id": 8, "cmd": "send", "args": {"peer": "alice"}}\n',
        b'{"id": 9, "cmd": "send", "args": {"peer": "alice", "text": 5}}\n',
        b"\xff\xfe\n",
        b'{"id": 10, "cmd": "status"}\n',
    )
    assert [a["ok"] for a in answers] == [False] * 5 + [True]
    assert [a["id"] for a in answers] == [None, 7, 8, 9, None, 10]
    assert "not JSON" in answers[0]["error"]
    assert 'unknown command "explode"' in answers[1]["error"]
    assert 'missing argument "text"' in answers[2]["error"]
    assert '"text" must be a string' in answers[3]["error"]
    assert answers[5]["result"]["peer_id"] == "mmmm-nnnn-oooo-pppp"
    assert [c[0] for c in node.fake.calls] == ["status"]  # nothing bad reached the node


def test_pipelined_sends_reach_the_node_as_one_call_and_are_answered_in_order(
    node: RunningNode,
) -> None:
    # Written in one go, they arrive together: one call, so the node can store them
    # in one commit. The one with no text is refused on its own; order is kept.
    sends = [b'{"id": %d, "cmd": "send", "args": {"peer": "alice", "text": "m%d"}}\n' % (i, i)
             for i in range(1, 21)]  # fmt: skip
    sends[9] = b'{"id": 10, "cmd": "send", "args": {"peer": "alice"}}\n'
    with connect(node.server.socket_path) as sock, sock.makefile("rb") as lines:
        sock.sendall(b"".join(sends) + b'{"id": 99, "cmd": "status"}\n')
        answers = [read_line(lines) for _ in range(21)]  # type: ignore[arg-type]
    assert [a["id"] for a in answers] == [*range(1, 21), 99]
    assert [a["ok"] for a in answers] == [True] * 9 + [False] + [True] * 11
    texts = [args[1] for name, args in node.fake.calls if name == "send"]
    assert texts == [f"m{i}" for i in range(1, 21) if i != 10]
    assert ("send_many", (9,)) in node.fake.calls  # m1..m9, before the bad line
    assert ("send_many", (10,)) in node.fake.calls  # m11..m20


def test_an_over_long_line_is_refused_and_the_connection_closed(node: RunningNode) -> None:
    with connect(node.server.socket_path) as sock, sock.makefile("rb") as lines:
        # The server may close before we finish writing.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b'{"id": 1, "cmd": "send", "args": {"text": "' + b"x" * MAX_REQUEST_BYTES)
        answer = read_line(lines)  # type: ignore[arg-type]
        assert answer == {"id": None, "ok": False, "error": "request line over 128 KiB: closing"}
        assert lines.readline() == b""
    assert exchange(node.server.socket_path, b'{"id":1,"cmd":"status"}\n')[0]["ok"]


def test_client_limit(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    running = start_server(loop, tmp_path, max_clients=2)
    try:
        path = running.server.socket_path
        first, second = connect(path), connect(path)
        with first, second:
            time.sleep(0.2)  # both are accepted by now
            with connect(path) as third, third.makefile("rb") as lines:
                answer = read_line(lines)  # type: ignore[arg-type]
                assert answer["ok"] is False
                assert "too many control clients" in answer["error"]
                assert lines.readline() == b""
        _wait_until(lambda: exchange(path, b'{"id":1,"cmd":"status"}\n')[0]["ok"])
    finally:
        running.run(running.server.async_stop())


def test_internal_errors_are_answered_and_the_node_keeps_serving(
    node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    node.fake.fail_with = RuntimeError("boom")
    assert node.cli("peers") == 1
    assert one_error_line(capsys) == (
        "internal error: RuntimeError('boom') (details are in the node's log)"
    )
    node.fake.fail_with = None
    assert node.cli("peers") == 0


def test_unserializable_results_are_internal_errors(node: RunningNode) -> None:
    async def weird() -> object:
        return {"when": object()}

    node.fake.async_status = weird  # type: ignore[method-assign]
    answer = exchange(node.server.socket_path, b'{"id":3,"cmd":"status"}\n')[0]
    assert answer["ok"] is False
    assert answer["error"].startswith("internal error: TypeError")


# -- CLI commands ----------------------------------------------------------------


def test_no_node_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "peers"]) == 1
    assert one_error_line(capsys) == (
        f"no p2pchat node is running for {tmp_path}: start one with `p2pchat daemon` (or `p2pchat`)"
    )
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(control_socket_path(tmp_path)))  # left behind by a node that died
    dead.close()
    assert main(["send", "--data-dir", str(tmp_path), "alice", "hi"]) == 1
    assert one_error_line(capsys).startswith("no p2pchat node is running")
    with pytest.raises(NoNodeRunning):
        ControlClient(tmp_path / "nowhere").call("status")


def test_status(node: RunningNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert node.cli("status") == 0
    out = capsys.readouterr().out
    assert "Name:      me\n" in out
    assert "Peer id:   mmmm-nnnn-oooo-pppp\n" in out
    assert "Port:      45678\n" in out
    assert node.cli("status", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "name": "me",
        "peer_id": "mmmm-nnnn-oooo-pppp",
        "port": 45678,
        "instance": "me (mmmm)",
        "data_dir": "/tmp/me",
    }


def test_peers_table_is_aligned_and_terminal_safe(
    node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    assert node.cli("peers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["NAME", "PEER", "ID", "CONTACT", "SESSION", "ADDRESSES"]
    assert lines[1].split() == [
        "alice",
        ALICE_ID,
        "accepted",
        "open",
        "192.168.1.20,",
        "fe80::1%eth0",
    ]
    assert lines[2].startswith("mallory\\x1b[2J\\n")  # escaped, not executed
    columns = [line.index(ALICE_ID if i == 1 else BOB_ID) for i, line in enumerate(lines[1:], 1)]
    assert columns[0] == columns[1] == lines[0].index("PEER ID")


def test_json_outputs_are_the_views(node: RunningNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert node.cli("peers", "--json") == 0
    peers = json.loads(capsys.readouterr().out)
    assert peers[0] == {
        "peer_id": ALICE_ID,
        "name": "alice",
        "addresses": ["192.168.1.20", "fe80::1%eth0"],
        "contact": "accepted",
        "session": "open",
    }
    assert peers[1]["name"] == EVIL_NAME  # JSON keeps the data as it is
    assert node.cli("contacts", "--json") == 0
    contacts = json.loads(capsys.readouterr().out)
    assert [c["state"] for c in contacts] == ["accepted", "pending_outgoing"]
    assert node.cli("requests", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "pending_incoming"


def test_contacts_and_requests_tables(
    node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    assert node.cli("contacts") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PEER", "ID", "STATE", "VERIFIED", "ONLINE"]
    assert lines[1].split() == ["alice", ALICE_ID, "accepted", "yes", "online"]
    assert lines[2].split() == ["bob", BOB_ID, "pending", "outgoing", "no", "offline"]
    assert node.cli("requests") == 0
    out = capsys.readouterr().out
    assert f"bob   {BOB_ID}  online" in out
    assert "p2pchat accept PEER" in out


def test_add_accept_reject(node: RunningNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert node.cli("add", "bob") == 0
    assert node.cli("accept", "wxyz") == 0
    assert node.cli("reject", "bob") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"Asked bob ({BOB_ID}) to become a contact: they need to accept it on their side.",
        f"bob ({BOB_ID}) is now a contact.",
        f"Rejected bob ({BOB_ID}).",
    ]
    assert node.fake.calls == [("add", ("bob",)), ("accept", ("wxyz",)), ("reject", ("bob",))]


def test_verify_shows_groups_and_a_qr(
    node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    assert node.cli("verify", "alice") == 0
    out = capsys.readouterr().out
    groups = SAFETY.split()
    assert "    " + " ".join(groups[:4]) + "\n" in out
    assert "    " + " ".join(groups[8:]) + "\n" in out
    assert "Compare these digits with alice's screen" in out
    assert "█" in out or "▀" in out  # the QR code
    assert "--mark-verified" in out
    assert node.fake.calls[-1] == ("verify", ("alice", False))

    assert node.cli("verify", "alice", "--mark-verified", "--json") == 0
    safety = json.loads(capsys.readouterr().out)
    assert safety["verified"] is True
    assert safety["safety_number"] == SAFETY
    assert node.fake.calls[-1] == ("verify", ("alice", True))


def test_send(
    node: RunningNode, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert node.cli("send", "alice", "hello", "there,", "friend") == 0
    assert capsys.readouterr().out == "sent\n"
    assert node.fake.calls[-1] == ("send", ("alice", "hello there, friend"))

    node.fake.peer_online = False
    assert node.cli("send", "bob", "later") == 0
    assert capsys.readouterr().out == (
        "queued: bob is offline, it will be delivered when they come back\n"
    )

    stdin = "line one\nline two ✓\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    assert node.cli("send", "alice", "-", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "conversation": "aa" * 32,
        "message_id": "0f" * 16,
        "status": "queued",
    }
    assert node.fake.calls[-1] == ("send", ("alice", "line one\nline two ✓"))


def test_send_refuses_empty_and_oversized_messages(
    node: RunningNode, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert node.cli("send", "alice", " ") == 2
    assert one_error_line(capsys) == "nothing to send: the message is empty"
    big = "x" * (70 * 1024)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(big.encode())))
    assert node.cli("send", "alice", "-") == 1
    assert "is 71,680 bytes (70 KiB), over the limit of 65,510 bytes" in one_error_line(capsys)
    assert all(call[0] != "send" for call in node.fake.calls)


def test_a_user_error_from_the_node_is_one_line(
    node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    node.fake.fail_with = UserError('no contact matches "zed"; contacts: alice (abcd-efgh-…)')
    assert node.cli("send", "zed", "hi") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == 'p2pchat: no contact matches "zed"; contacts: alice (abcd-efgh-…)\n'


# -- watch -----------------------------------------------------------------------


MESSAGE = MessageEvent(
    conversation="aa" * 32,
    peer_id=ALICE_ID,
    sender="alice",
    direction="in",
    message_id="01" * 16,
    timestamp_ms=1_795_000_000_000,
    text="hello\nsecond line",
)


def test_watch_stream_raw(node: RunningNode) -> None:
    node.fake.backlog = [PeerFound(ALICE_ID, "alice", ["192.168.1.20"], True)]
    with connect(node.server.socket_path) as sock, sock.makefile("rb") as lines:
        sock.sendall(b'{"id": 5, "cmd": "watch"}\n')
        assert read_line(lines) == {"id": 5, "ok": True, "result": None}  # type: ignore[arg-type]
        # What the node queued at subscription comes after the "ok"...
        assert read_line(lines)["event"]["type"] == "peer_found"  # type: ignore[arg-type]
        # ...and the subscription is live once the client has its "ok".
        node.publish(MESSAGE)
        assert read_line(lines) == {"event": MESSAGE.to_json()}  # type: ignore[arg-type]
    _wait_until(lambda: node.watchers() == 0)  # the server noticed the client leaving


def test_watch_ends_when_the_node_stops(node: RunningNode) -> None:
    events = ControlClient(node.data_dir).watch()
    node.fake.backlog = [SessionChanged(ALICE_ID, "alice", "open")]
    assert next(events)["state"] == "open"
    node.publish(None)
    with pytest.raises(NodeClosed, match="the event stream ended"):
        next(events)
    assert WATCH_ENDED.startswith("the event stream ended")


def test_watchers_hear_why_when_the_server_stops(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    running = start_server(loop, tmp_path)
    running.fake.backlog = [SessionChanged(ALICE_ID, "alice", "open")]
    events = ControlClient(tmp_path).watch()
    assert next(events)["type"] == "session"
    running.run(running.server.async_stop())
    with pytest.raises(NodeClosed, match=r"^the node is stopping$"):
        next(events)


def test_watch_cli_json_and_ctrl_c(
    node: RunningNode, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    node.fake.backlog = [PeerFound(ALICE_ID, "alice", ["192.168.1.20"], True), MESSAGE]
    real_watch = ControlClient.watch

    def watch_then_ctrl_c(self: ControlClient) -> Iterator[dict[str, Any]]:
        events = real_watch(self)
        yield next(events)
        yield next(events)
        events.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(ControlClient, "watch", watch_then_ctrl_c)
    assert node.cli("watch", "--json") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines == [
        PeerFound(ALICE_ID, "alice", ["192.168.1.20"], True).to_json(),
        MESSAGE.to_json(),
    ]
    _wait_until(lambda: node.watchers() == 0)


def test_watch_cli_readable_lines(node: RunningNode, capsys: pytest.CaptureFixture[str]) -> None:
    node.fake.backlog = [
        PeerFound(ALICE_ID, "alice", ["192.168.1.20"], True),
        ContactRequestReceived(BOB_ID, EVIL_NAME),
        MESSAGE,
        KeyChangeWarning(ALICE_ID, "alice", "aaaa", "ffff", "zzzz-zzzz-zzzz-zzzz"),
    ]
    threading.Timer(0.5, node.publish, args=(None,)).start()  # then the node stops
    assert node.cli("watch") == 1
    captured = capsys.readouterr()
    assert captured.err == f"p2pchat: {WATCH_ENDED}\n"
    lines = captured.out.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  "
    assert re.fullmatch(stamp + rf"alice \({ALICE_ID}\) is on the LAN \(a contact\)", lines[0])
    assert re.fullmatch(
        stamp + rf"mallory\\x1b\[2J\\n \({BOB_ID}\) asks to become a contact: .*", lines[1]
    )
    assert re.fullmatch(stamp + r"alice  > hello", lines[2])
    assert lines[3] == " " * len("2026-11-23 10:01:02  alice  > ") + "second line"
    assert re.fullmatch(stamp + r"WARNING: a LAN peer claims to be alice .*", lines[4])


def _wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- history (no node: the profile itself) -----------------------------------------

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import p2pchat.store

    monkeypatch.setattr(
        p2pchat.store,
        "open_profile",
        functools.partial(p2pchat.store.open_profile, kdf_limits=FAST),
    )
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", PASSPHRASE)
    data_dir = tmp_path / "profile"
    alice, alan = Identity(bytes([1]) * 32), Identity(bytes([2]) * 32)
    with create_profile(
        data_dir, PASSPHRASE, name="me", identity_seed=bytes(32), kdf_limits=FAST
    ) as profile:
        sam1, sam2 = Identity(bytes([3]) * 32), Identity(bytes([4]) * 32)
        for ident, name in ((alice, "alice"), (alan, "alan"), (sam1, "sam"), (sam2, "Sam")):
            profile.upsert_contact(Contact(ident.public_key, name, TrustState.ACCEPTED, False, 1))
        conversation = contact_conversation_id(alice.public_key)
        for i, (direction, sender, body, delivery) in enumerate(
            [
                (Direction.IN, "alice", "hi there", DeliveryState.DELIVERED),
                (Direction.OUT, "me", "hello alice", DeliveryState.DELIVERED),
                (Direction.OUT, "me", "are you there?", DeliveryState.PENDING),
            ]
        ):
            profile.add_message(
                StoredMessage(
                    bytes([i]) * 16,
                    conversation,
                    direction,
                    sender,
                    1_795_000_000_000 + i,
                    body,
                    delivery,
                )
            )
    return data_dir


def test_history(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(profile_dir), "history", "alice"]) == 0
    lines = capsys.readouterr().out.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  "
    assert re.fullmatch(stamp + r"alice  > hi there", lines[0])
    assert re.fullmatch(stamp + r"me     > hello alice  \[delivered\]", lines[1])
    assert re.fullmatch(stamp + r"me     > are you there\?  \[queued\]", lines[2])
    assert len(lines) == 3


def test_history_json_and_limit(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alice_id = peer_id(Identity(bytes([1]) * 32).public_key)
    argv = ["history", alice_id[:9], "--json", "--limit", "2", "--data-dir", str(profile_dir)]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in rows] == ["hello alice", "are you there?"]
    assert rows[1] == {
        "conversation": contact_conversation_id(Identity(bytes([1]) * 32).public_key),
        "peer_id": alice_id,
        "message_id": "02" * 16,
        "direction": "out",
        "sender": "me",
        "timestamp_ms": 1_795_000_000_002,
        "text": "are you there?",
        "delivery": "pending",
        "kind": "text",
    }


def test_history_unknown_or_ambiguous_peer(
    profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(profile_dir), "history", "zed"]) == 1
    message = one_error_line(capsys)
    assert message.startswith('no contact matches "zed"')
    assert "alan (" in message
    assert "alice (" in message
    assert main(["--data-dir", str(profile_dir), "history", "sam"]) == 1
    message = one_error_line(capsys)
    assert message.startswith('"sam" matches 2 contacts: Sam (')
    assert message.endswith("); use more of the peer id")
    assert main(["--data-dir", str(profile_dir), "history", "alan"]) == 0
    assert capsys.readouterr().out.startswith("No messages with alan (")
    with pytest.raises(SystemExit, match="2"):
        main(["--data-dir", str(profile_dir), "history", "alice", "--limit", "0"])


# -- the front door ----------------------------------------------------------------


def test_help_stays_light() -> None:
    code = (
        "import sys\n"
        "from p2pchat.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "for sub in ('send', 'watch', 'history'):\n"
        "    try:\n        main([sub, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('aiortc', 'av', 'zeroconf', 'aiohttp'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
