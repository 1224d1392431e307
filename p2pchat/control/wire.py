"""The control socket's wire format: newline-delimited JSON, one object per line.

Pure: bytes in, values out (or ``WireError``), and values to bytes. ::

    request   {"id": 7, "cmd": "send", "args": {"peer": "alice", "text": "hi"}}
    response  {"id": 7, "ok": true, "result": ...}
              {"id": 7, "ok": false, "error": "one-line message"}

``watch`` is answered with ``{"id": n, "ok": true, "result": null}``, then the
server streams ``{"event": {"type": ..., ...}}`` lines until the client closes. If
the node ends the stream itself (it is stopping, or the watcher fell behind), a
last ``{"id": n, "ok": false, "error": ...}`` says so before the connection closes.

Bounds: a request line is at most ``MAX_REQUEST_BYTES``; a message text at most
the chat frame's body (64 KiB less the frame header). Whatever a request line
holds, ``decode_request`` returns a ``Request`` with checked arguments or raises
``WireError`` with a one-line message for the client; nothing else escapes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pchat.protocol.frames import MAX_BODY_BYTES

MAX_REQUEST_BYTES = 128 * 1024  # one request line, without its newline
MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # one response or event line (e.g. a long contact list)
MAX_TEXT_BYTES = MAX_BODY_BYTES  # a message must fit one chat frame
MAX_PEER_BYTES = 256  # a display name or a peer id (prefix), with room to spare
MAX_ERROR_CHARS = 1000
MAX_REQUEST_ID = 2**53 - 1  # exact in every JSON implementation


@dataclass(frozen=True)
class Arg:
    """One argument of a command: a string (``max_bytes`` of UTF-8) or a flag."""

    name: str
    kind: type[str] | type[bool]
    required: bool = True
    max_bytes: int = MAX_PEER_BYTES


_PEER = Arg("peer", str)
_GROUP = Arg("group", str)
MAX_PATH_BYTES = 4096  # a file or directory path (PATH_MAX)
_TRANSFER = Arg("transfer", str, max_bytes=64)  # a transfer id (32 hex digits) or its start
MAX_SERVER_BYTES = 256  # a remote invite server's URL, or its owner token
MAX_GROUP_MEMBERS_BYTES = 32 * (MAX_PEER_BYTES + 1)  # group_create: members, one a line

COMMANDS: dict[str, tuple[Arg, ...]] = {
    "status": (),
    "peers": (),
    "contacts": (),
    "add": (_PEER,),
    "requests": (),
    "accept": (_PEER,),
    "reject": (_PEER,),
    "verify": (_PEER, Arg("mark", bool, required=False)),
    "send": (_PEER, Arg("text", str, max_bytes=MAX_TEXT_BYTES)),
    "watch": (),
    "invite": (
        Arg("expires", str, required=False, max_bytes=16),
        Arg("uses", str, required=False, max_bytes=8),
        Arg("label", str, required=False, max_bytes=64),
        Arg("approve", bool, required=False),
        Arg("group", str, required=False, max_bytes=128),
        Arg("server", str, required=False, max_bytes=MAX_SERVER_BYTES),
        Arg("server_token", str, required=False, max_bytes=MAX_SERVER_BYTES),
        Arg("password", str, required=False, max_bytes=512),  # never logged nor stored
    ),
    "server": (),
    "server_set": (
        Arg("url", str, max_bytes=MAX_SERVER_BYTES),
        Arg("token", str, required=False, max_bytes=MAX_SERVER_BYTES),
    ),
    "server_clear": (),
    "invites": (),
    "revoke": (Arg("invite", str, max_bytes=64),),
    "admit": (_PEER, Arg("deny", bool, required=False)),
    "guests": (),
    "groups": (),
    "group_create": (
        Arg("name", str),
        Arg("members", str, required=False, max_bytes=MAX_GROUP_MEMBERS_BYTES),
    ),
    "group_add": (_GROUP, Arg("member", str)),
    "group_remove": (_GROUP, Arg("member", str)),
    "group_keep": (_GROUP, Arg("guest", str)),
    "group_leave": (_GROUP,),
    "send_file": (_PEER, Arg("path", str, max_bytes=MAX_PATH_BYTES)),
    "send_files": (_PEER, Arg("path", str, max_bytes=MAX_PATH_BYTES)),
    "files": (),
    "file_accept": (_TRANSFER, Arg("to", str, required=False, max_bytes=MAX_PATH_BYTES)),
    "file_cancel": (_TRANSFER,),
}


class WireError(Exception):
    """A line that breaks the wire format; ``str()`` is a one-line message.

    ``request_id`` is the request's id when it could be read, so that the error
    response can answer the right request.
    """

    def __init__(self, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    id: int
    cmd: str
    args: Mapping[str, str | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    id: int | None  # None: the request could not be read far enough to know it
    ok: bool
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class EventLine:
    event: dict[str, Any]


def decode_request(line: bytes) -> Request:
    """One request line (with or without its newline) → a checked ``Request``."""
    if len(line.removesuffix(b"\n")) > MAX_REQUEST_BYTES:
        raise WireError(f"request line over {MAX_REQUEST_BYTES // 1024} KiB")
    obj = _json_object(line, "request")
    request_id = _request_id(obj.get("id"))
    unknown = sorted(set(obj) - {"id", "cmd", "args"})
    if unknown:
        raise WireError(f"unknown request field {_quote(unknown[0])}", request_id)
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise WireError('"cmd" must be a string', request_id)
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise WireError('"args" must be an object', request_id)
    return Request(request_id, cmd, check_args(cmd, args, request_id))


def check_args(
    cmd: str, args: Mapping[str, object], request_id: int | None = None
) -> dict[str, str | bool]:
    """``args`` checked against ``cmd``'s arguments; optional flags default to False."""
    spec = COMMANDS.get(cmd)
    if spec is None:
        raise WireError(
            f"unknown command {_quote(cmd)}: expected one of {', '.join(COMMANDS)}", request_id
        )
    known = {arg.name for arg in spec}
    unknown = sorted(set(args) - known)
    if unknown:
        raise WireError(f"{cmd}: unknown argument {_quote(unknown[0])}", request_id)
    checked: dict[str, str | bool] = {}
    for arg in spec:
        if arg.name not in args:
            if arg.required:
                raise WireError(f"{cmd}: missing argument {_quote(arg.name)}", request_id)
            if arg.kind is bool:
                checked[arg.name] = False
            continue
        checked[arg.name] = _checked_value(cmd, arg, args[arg.name], request_id)
    return checked


def encode_request(request: Request) -> bytes:
    """A request line; ``WireError`` if ``request`` itself breaks the format."""
    args = check_args(request.cmd, request.args, request.id)
    line = _dumps({"id": request.id, "cmd": request.cmd, "args": args})
    if len(line) - 1 > MAX_REQUEST_BYTES:
        raise WireError(f"request line over {MAX_REQUEST_BYTES // 1024} KiB", request.id)
    return line


def encode_response(response: Response) -> bytes:
    """A response line. ``TypeError``/``ValueError`` if ``result`` is not JSON data."""
    if response.ok:
        return _dumps({"id": response.id, "ok": True, "result": response.result})
    return _dumps({"id": response.id, "ok": False, "error": one_line(response.error or "")})


def encode_event(event: Mapping[str, Any]) -> bytes:
    return _dumps({"event": dict(event)})


def decode_server_line(line: bytes) -> Response | EventLine:
    """What a client reads: a response or a streamed event; else ``WireError``."""
    if len(line.removesuffix(b"\n")) > MAX_RESPONSE_BYTES:
        raise WireError(f"response line over {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
    obj = _json_object(line, "response")
    if "event" in obj:
        event = obj["event"]
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise WireError('"event" must be an object with a string "type"')
        return EventLine(event)
    request_id = obj.get("id")
    if request_id is not None:
        request_id = _request_id(request_id)
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise WireError('"ok" must be true or false', request_id)
    if ok:
        return Response(request_id, True, result=obj.get("result"))
    error = obj.get("error")
    if not isinstance(error, str):
        raise WireError('"error" must be a string', request_id)
    return Response(request_id, False, error=one_line(error))


def one_line(message: str) -> str:
    """``message`` on one line, bounded, without control characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in message).split())
    if len(flat) > MAX_ERROR_CHARS:
        flat = flat[: MAX_ERROR_CHARS - 1] + "…"
    return flat


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise WireError(f"{what} line is not UTF-8") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise WireError(f"{what} line is not JSON: {one_line(str(exc))[:200]}") from None
    if not isinstance(obj, dict):
        raise WireError(f"{what} must be a JSON object")
    return obj


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _request_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REQUEST_ID:
        raise WireError(f'"id" must be an integer from 0 to {MAX_REQUEST_ID}')
    return value


def _checked_value(cmd: str, arg: Arg, value: object, request_id: int | None) -> str | bool:
    if arg.kind is bool:
        if not isinstance(value, bool):
            raise WireError(f"{cmd}: {_quote(arg.name)} must be true or false", request_id)
        return value
    if not isinstance(value, str):
        raise WireError(f"{cmd}: {_quote(arg.name)} must be a string", request_id)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates from a "\ud800" escape
        raise WireError(f"{cmd}: {_quote(arg.name)} is not valid Unicode", request_id) from None
    if size == 0:
        raise WireError(f"{cmd}: {_quote(arg.name)} is empty", request_id)
    if size > arg.max_bytes:
        raise WireError(
            f"{cmd}: {_quote(arg.name)} is {size} bytes, over the limit of {arg.max_bytes}",
            request_id,
        )
    return value


def _dumps(obj: object) -> bytes:
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate somewhere: let JSON escape it
        text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return text.encode("ascii") + b"\n"


def _quote(text: str) -> str:
    return json.dumps(one_line(text)[:64], ensure_ascii=False)
