"""The control server: the node's ``NodeApi`` on a Unix socket (mode 0600) in its data dir.

Each connection sends request lines and gets one response line per request, in
order. ``watch`` turns the connection into an event stream until the client closes.
A ``UserError`` from the node is an ``ok: false`` response with its message; any
other exception is logged and answered with ``internal error: ...``: a bad request
or a bug in one command never stops the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from p2pchat.control.api import NodeApi
from p2pchat.control.socket_path import socket_address
from p2pchat.control.wire import (
    MAX_REQUEST_BYTES,
    Request,
    Response,
    WireError,
    decode_request,
    encode_event,
    encode_response,
    one_line,
)
from p2pchat.errors import UserError
from p2pchat.node.events import NodeEvent

logger = logging.getLogger(__name__)

MAX_CLIENTS = 32
IDLE_TIMEOUT_S = 300.0  # a connection with no request for this long is closed
MAX_WRITE_BUFFER_BYTES = 1024 * 1024  # a watcher that reads slower than this waits
SOCKET_MODE = 0o600
STOPPING = "the node is stopping"
_READ_BYTES = 64 * 1024  # what one read takes from the socket: many pipelined requests
WATCH_ENDED = "the event stream ended: the node is stopping, or this watcher fell behind"

_Command = Callable[[NodeApi, Mapping[str, Any]], Awaitable[Any]]


class ControlServer:
    """Serves ``api`` on ``socket_path`` between ``async_start`` and ``async_stop``."""

    def __init__(self, api: NodeApi, socket_path: Path, *, max_clients: int = MAX_CLIENTS) -> None:
        self._api = api
        self._path = Path(socket_path)
        self._max_clients = max_clients
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._in_flight: dict[asyncio.Task[None], int] = {}  # request being answered

    @property
    def socket_path(self) -> Path:
        return self._path

    async def async_start(self) -> None:
        """Bind and listen. A stale socket file (from a node that died) is replaced."""
        if self._server is not None:
            raise RuntimeError("control server already started")
        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(
                self._on_connection, sock=sock, limit=MAX_REQUEST_BYTES + 1
            )
        except BaseException:
            sock.close()
            self._unlink_own_socket()
            raise
        logger.debug("control socket listening at %s", self._path)

    async def async_stop(self) -> None:
        """Stop listening, close every connection, remove the socket file."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
        self._unlink_own_socket()

    # -- connections ---------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover (asyncio always runs callbacks in a task)
            writer.close()
            return
        if len(self._connections) >= self._max_clients:
            await _answer_and_close(
                writer, Response(None, False, error="too many control clients: try again later")
            )
            return
        self._connections.add(task)
        writer.transport.set_write_buffer_limits(high=MAX_WRITE_BUFFER_BYTES)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left mid-answer
        except asyncio.CancelledError:
            if self._server is not None:  # not ours: async_stop cancels on purpose
                raise
            request_id = self._in_flight.get(task)
            if request_id is not None:  # tell the client why, rather than just hang up
                with contextlib.suppress(Exception):
                    writer.write(encode_response(Response(request_id, False, error=STOPPING)))
        except Exception:  # a bug here must not reach the event loop's handler
            logger.exception("control connection failed")
        finally:
            self._connections.discard(task)
            self._in_flight.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Lines are read as they came, several at a time: pipelined requests that
        # arrived together are answered together, and consecutive ``send``s among
        # them are stored in one commit (no task per request, one drain per batch).
        task = asyncio.current_task()
        assert task is not None
        pending = b""  # a line not complete yet
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(_READ_BYTES), IDLE_TIMEOUT_S)
            except TimeoutError:
                return
            if not chunk:
                return  # EOF: the client is done (an unfinished line is dropped)
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > MAX_REQUEST_BYTES:
                message = f"request line over {MAX_REQUEST_BYTES // 1024} KiB: closing"
                await _answer_and_close(writer, Response(None, False, error=message))
                return
            requests: list[Request] = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    requests.append(decode_request(line))
                except WireError as exc:
                    await self._answer(task, requests, writer)
                    requests = []
                    writer.write(encode_response(Response(exc.request_id, False, error=str(exc))))
                    continue
                if requests[-1].cmd == "watch":
                    watch = requests.pop()
                    await self._answer(task, requests, writer)
                    self._in_flight[task] = watch.id
                    await self._watch(watch, reader, writer)
                    return
            await self._answer(task, requests, writer)
            await writer.drain()

    async def _answer(
        self, task: asyncio.Task[None], requests: list[Request], writer: asyncio.StreamWriter
    ) -> None:
        """Answer ``requests`` in order; a run of ``send``s is one call (one commit)."""
        start = 0
        while start < len(requests):
            end = start + 1
            if requests[start].cmd == "send":
                while end < len(requests) and requests[end].cmd == "send":
                    end += 1
            self._in_flight[task] = requests[start].id
            if end - start > 1:
                writer.write(b"".join(await self._call_sends(requests[start:end])))
            else:
                writer.write(await self._call(requests[start]))
            del self._in_flight[task]
            start = end

    async def _call_sends(self, requests: list[Request]) -> list[bytes]:
        """The response lines to several ``send`` requests; never raises (but for
        cancellation)."""
        try:
            results = await self._api.async_send_many(
                [(str(r.args["peer"]), str(r.args["text"])) for r in requests]
            )
        except Exception as exc:
            error = _failure(exc, "send")
            return [encode_response(Response(r.id, False, error=error)) for r in requests]
        return [
            encode_response(
                Response(request.id, False, error=str(result))
                if isinstance(result, UserError)
                else Response(request.id, True, _jsonable(result))
            )
            for request, result in zip(requests, results, strict=True)
        ]

    async def _call(self, request: Request) -> bytes:
        """The response line to ``request``; never raises (but for cancellation)."""
        command = _COMMANDS[request.cmd]
        try:
            result = await command(self._api, request.args)
            return encode_response(Response(request.id, True, _jsonable(result)))
        except Exception as exc:
            return encode_response(Response(request.id, False, error=_failure(exc, request.cmd)))

    async def _watch(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        acknowledged = asyncio.Event()
        try:
            events = self._api.subscribe()
        except Exception as exc:
            await _write(writer, Response(request.id, False, error=_failure(exc, "watch")))
            return
        pump = asyncio.create_task(_pump_events(events, writer, acknowledged))
        # One step for the subscription to register (and to fail, e.g. a UserError),
        # so that the client, once told "ok", misses no event from then on.
        await asyncio.sleep(0)
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            error = _failure(_exception(pump), "watch")
            await _write(writer, Response(request.id, False, error=error))
            return
        await _write(writer, Response(request.id, True, None))
        acknowledged.set()
        client_gone = asyncio.create_task(_discard_until_eof(reader))
        try:
            await asyncio.wait({pump, client_gone}, return_when=asyncio.FIRST_COMPLETED)
            stream_ended = pump.done()
        finally:
            for task in (pump, client_gone):
                task.cancel()
            await asyncio.gather(pump, client_gone, return_exceptions=True)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        if not stream_ended or pump.cancelled():
            return  # the client left
        ended_by = pump.exception()
        if isinstance(ended_by, ConnectionError):
            return
        error = WATCH_ENDED if ended_by is None else _failure(ended_by, "watch")
        with contextlib.suppress(ConnectionError):
            await _write(writer, Response(request.id, False, error=error))

    # -- the socket file -----------------------------------------------------

    def _bind(self) -> socket.socket:
        self._remove_stale_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with socket_address(self._path) as address:
                sock.bind(address)
            # Not listening yet, so nobody can connect while the mode is still wide.
            os.chmod(self._path, SOCKET_MODE)
            info = os.lstat(self._path)
            if not stat.S_ISSOCK(info.st_mode) or stat.S_IMODE(info.st_mode) != SOCKET_MODE:
                raise OSError(f"{self._path} is not the private socket just created")
            self._inode = info.st_ino
        except BaseException:
            sock.close()
            self._unlink_own_socket()
            raise
        return sock

    def _remove_stale_socket(self) -> None:
        try:
            info = os.lstat(self._path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise UserError(
                f"{self._path} exists and is not a socket: move it away, then start again"
            )
        if _is_listening(self._path):
            raise UserError(f"another p2pchat node is already serving {self._path}")
        self._path.unlink(missing_ok=True)  # a node that died left it behind

    def _unlink_own_socket(self) -> None:
        # Only the file we created: after a restart race it may be another node's.
        inode, self._inode = self._inode, None
        if inode is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(self._path).st_ino == inode:
                self._path.unlink()


# -- the commands ------------------------------------------------------------


async def _status(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_status()


async def _peers(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_peers()


async def _contacts(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_contacts()


async def _add(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_add_contact(args["peer"])


async def _requests(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_requests()


async def _accept(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_accept(args["peer"])


async def _reject(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_reject(args["peer"])


async def _verify(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_verify(args["peer"], mark_verified=bool(args["mark"]))


async def _send(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_send(args["peer"], args["text"])


async def _invite(api: NodeApi, args: Mapping[str, Any]) -> Any:
    from p2pchat.node.invites import DEFAULT_EXPIRES_S, MAX_USES, parse_duration

    try:
        expires_s = parse_duration(args["expires"]) if args.get("expires") else DEFAULT_EXPIRES_S
    except ValueError as exc:
        raise UserError(f"--expires: {exc}") from None
    uses_text = args.get("uses") or "1"
    if not uses_text.isdigit() or not 1 <= int(uses_text) <= MAX_USES:
        raise UserError(f"--uses must be a whole number from 1 to {MAX_USES}")
    password = None
    if args.get("password"):
        from p2pchat.crypto import ristretto
        from p2pchat.crypto.cpace import normalize_password
        from p2pchat.link_password import checked_link_password

        password = normalize_password(checked_link_password(args["password"], "--password"))
        try:
            ristretto.ensure_available()
        except ristretto.RistrettoUnavailable as exc:
            raise UserError(str(exc)) from None
    return await api.async_invite(
        expires_s=expires_s,
        uses=int(uses_text),
        label=args.get("label") or None,
        approve=bool(args.get("approve")),
        group=args.get("group") or None,
        server=args.get("server") or None,
        server_token=args.get("server_token") or None,
        password=password,
    )


async def _server(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_server()


async def _server_set(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_server_set(args["url"], args.get("token") or None)


async def _server_clear(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_server_clear()


async def _invites(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_invites()


async def _revoke(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_revoke(args["invite"])


async def _admit(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_admit(args["peer"], admit=not args.get("deny"))


async def _guests(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_guests()


async def _groups(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_groups()


async def _group_create(api: NodeApi, args: Mapping[str, Any]) -> Any:
    members = [m for m in str(args.get("members") or "").split("\n") if m]
    return await api.async_group_create(args["name"], members)


async def _group_add(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_group_add(args["group"], args["member"])


async def _group_remove(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_group_remove(args["group"], args["member"])


async def _group_keep(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_group_keep(args["group"], args["guest"])


async def _group_leave(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_group_leave(args["group"])


async def _send_file(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_send_file(args["peer"], args["path"])


async def _send_files(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_send_files(args["peer"], args["path"])


async def _files(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_files()


async def _file_accept(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_file_accept(args["transfer"], args.get("to") or None)


async def _file_cancel(api: NodeApi, args: Mapping[str, Any]) -> Any:
    return await api.async_file_cancel(args["transfer"])


_COMMANDS: dict[str, _Command] = {
    "status": _status,
    "peers": _peers,
    "contacts": _contacts,
    "add": _add,
    "requests": _requests,
    "accept": _accept,
    "reject": _reject,
    "verify": _verify,
    "send": _send,
    "invite": _invite,
    "invites": _invites,
    "server": _server,
    "server_set": _server_set,
    "server_clear": _server_clear,
    "revoke": _revoke,
    "admit": _admit,
    "guests": _guests,
    "groups": _groups,
    "group_create": _group_create,
    "group_add": _group_add,
    "group_remove": _group_remove,
    "group_keep": _group_keep,
    "group_leave": _group_leave,
    "send_file": _send_file,
    "send_files": _send_files,
    "files": _files,
    "file_accept": _file_accept,
    "file_cancel": _file_cancel,
}


# -- helpers -----------------------------------------------------------------


def _failure(exc: BaseException, cmd: str) -> str:
    """The error line for a failed command: a ``UserError`` as is, else a logged bug."""
    if isinstance(exc, UserError):
        return str(exc)
    logger.error("control command %r failed", cmd, exc_info=exc)
    return f"internal error: {one_line(repr(exc))} (details are in the node's log)"


def _exception(task: asyncio.Task[None]) -> BaseException:
    exc = task.exception()
    assert exc is not None
    return exc


def _jsonable(result: Any) -> Any:
    """Dataclass views (and lists of them) as plain JSON data."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, list | tuple):
        return [_jsonable(item) for item in result]
    return result


async def _pump_events(
    events: AsyncIterator[NodeEvent], writer: asyncio.StreamWriter, acknowledged: asyncio.Event
) -> None:
    async for event in events:
        try:
            line = encode_event(event.to_json())
        except Exception:
            logger.exception("cannot encode event %r for a watcher", type(event).__name__)
            continue
        await acknowledged.wait()  # the "ok" to the watch request goes first
        writer.write(line)
        await writer.drain()


async def _discard_until_eof(reader: asyncio.StreamReader) -> None:
    # A watcher has nothing more to say; reading notices when it closes.
    while await reader.read(4096):
        pass


async def _write(writer: asyncio.StreamWriter, response: Response) -> None:
    writer.write(encode_response(response))
    await writer.drain()


async def _answer_and_close(writer: asyncio.StreamWriter, response: Response) -> None:
    with contextlib.suppress(ConnectionError):
        await _write(writer, response)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def _is_listening(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        with socket_address(path) as address:
            probe.connect(address)
    except OSError:
        return False
    else:
        return True
    finally:
        probe.close()
