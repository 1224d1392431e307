"""The control client: what CLI subcommands use to ask the running node.

Blocking and synchronous (the CLI is): one connection per call, and one held
open for ``watch``. Every failure a user can meet is a one-line ``UserError``:
no node running, the node's own refusal (unknown PEER...), a node that stopped.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from p2pchat.control.socket_path import control_socket_path, socket_address
from p2pchat.control.wire import (
    MAX_RESPONSE_BYTES,
    EventLine,
    Request,
    Response,
    WireError,
    decode_server_line,
    encode_request,
)
from p2pchat.errors import UserError

CALL_TIMEOUT_S = 60.0


class NoNodeRunning(UserError):
    """Nothing listens on the data directory's control socket."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            f"no p2pchat node is running for {data_dir}:"
            " start one with `p2pchat daemon` (or `p2pchat`)"
        )
        self.data_dir = data_dir


class NodeClosed(UserError):
    """The node went away (or ended a watch) in the middle of an exchange."""


class ControlClient:
    def __init__(self, data_dir: Path, *, timeout: float = CALL_TIMEOUT_S) -> None:
        self._data_dir = Path(data_dir)
        self._timeout = timeout
        self._ids = itertools.count(1)

    @property
    def socket_path(self) -> Path:
        return control_socket_path(self._data_dir)

    def call(self, cmd: str, **args: str | bool) -> Any:
        """Run ``cmd`` on the node and return its JSON result; ``UserError`` if refused."""
        request = Request(next(self._ids), cmd, args)
        line = _encoded(request)
        with self._connection() as (sock, lines):
            _send(sock, line)
            return _result(request, self._read(lines, request))

    def watch(self, on_open: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
        """The node's events as JSON objects, from now until the caller stops.

        ``on_open`` runs once the node has subscribed us, before the first event is
        read: what it asks of the node (on other connections) misses no event.
        Raises ``NodeClosed`` when the node ends the stream.
        """
        request = Request(next(self._ids), "watch", {})
        line = _encoded(request)
        with self._connection() as (sock, lines):
            _send(sock, line)
            _result(request, self._read(lines, request))
            if on_open is not None:
                on_open()
            sock.settimeout(None)  # events come when they come
            while True:
                answer = self._read(lines, request)
                if isinstance(answer, EventLine):
                    yield answer.event
                elif answer.ok or answer.id not in (request.id, None):
                    raise UserError("unexpected answer from the node during `watch`")
                else:
                    raise NodeClosed(answer.error or "the node ended the event stream")

    # -- private ---------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[tuple[socket.socket, IO[bytes]]]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            try:
                with socket_address(self.socket_path) as address:
                    sock.connect(address)
            except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
                raise NoNodeRunning(self._data_dir) from None
            except PermissionError:
                raise UserError(
                    f"cannot connect to {self.socket_path}: permission denied"
                    " (is the node running as another user?)"
                ) from None
            except OSError as exc:
                raise UserError(f"cannot connect to {self.socket_path}: {exc.strerror}") from None
            with sock.makefile("rb") as lines:
                yield sock, lines
        finally:
            sock.close()

    def _read(self, lines: IO[bytes], request: Request) -> Response | EventLine:
        try:
            line = lines.readline(MAX_RESPONSE_BYTES + 2)
        except TimeoutError:
            raise UserError(
                f"the node did not answer `{request.cmd}` within {self._timeout:g} s"
            ) from None
        except OSError:
            line = b""
        if not line:
            raise NodeClosed(f"the node closed the connection during `{request.cmd}`")
        try:
            if not line.endswith(b"\n"):
                raise WireError(f"response line over {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
            return decode_server_line(line)
        except WireError as exc:
            raise UserError(f"unexpected answer from the node: {exc}") from None


def _encoded(request: Request) -> bytes:
    try:
        return encode_request(request)
    except WireError as exc:
        raise UserError(str(exc)) from None


def _send(sock: socket.socket, line: bytes) -> None:
    try:
        sock.sendall(line)
    except TimeoutError:
        raise UserError("the node is not reading its control socket") from None
    except OSError:
        pass  # the node hung up: reading its answer (or EOF) says why


def _result(request: Request, answer: Response | EventLine) -> Any:
    if isinstance(answer, EventLine) or answer.id not in (request.id, None):
        raise UserError(f"unexpected answer from the node to `{request.cmd}`")
    if not answer.ok:
        raise UserError(answer.error or f"the node refused `{request.cmd}`")
    return answer.result
