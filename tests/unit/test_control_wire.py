"""The control wire format: any bytes in → a checked request or a WireError, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.control.wire import (
    COMMANDS,
    MAX_REQUEST_BYTES,
    MAX_TEXT_BYTES,
    EventLine,
    Request,
    Response,
    WireError,
    decode_request,
    decode_server_line,
    encode_event,
    encode_request,
    encode_response,
    one_line,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
peer_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: len(s.encode()) <= 256
)


@st.composite
def valid_requests(draw: st.DrawFn) -> Request:
    cmd = draw(st.sampled_from(sorted(COMMANDS)))
    args: dict[str, str | bool] = {}
    for arg in COMMANDS[cmd]:
        if arg.kind is bool:
            args[arg.name] = draw(st.booleans())
        else:
            args[arg.name] = draw(
                peer_text.filter(lambda t, a=arg: len(t.encode("utf-8")) <= a.max_bytes)
            )
    return Request(draw(st.integers(0, 2**53 - 1)), cmd, args)


# -- requests: any bytes -------------------------------------------------------


def _decode_or_error(line: bytes) -> None:
    try:
        request = decode_request(line)
    except WireError as exc:
        error = str(exc)
    else:
        assert request.cmd in COMMANDS
        return
    assert "\n" not in error


@given(st.binary(max_size=400))
def test_any_bytes_decode_to_a_request_or_wire_error(line: bytes) -> None:
    _decode_or_error(line)


@given(json_values)
def test_any_json_decodes_to_a_request_or_wire_error(value: Any) -> None:
    _decode_or_error(json.dumps(value).encode())


@given(
    st.dictionaries(
        st.sampled_from(["id", "cmd", "args", "extra"]),
        json_values | st.sampled_from(sorted(COMMANDS)),
        max_size=4,
    )
)
def test_request_shaped_objects_decode_or_fail_cleanly(obj: dict[str, Any]) -> None:
    _decode_or_error(json.dumps(obj).encode())


@given(valid_requests())
def test_valid_requests_round_trip(request: Request) -> None:
    line = encode_request(request)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1  # one line, whatever the text holds
    decoded = decode_request(line)
    assert decoded == request


# -- requests: specific errors ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"cmd": "status"}', '"id" must be an integer'),
        (b'{"id": true, "cmd": "status"}', '"id" must be an integer'),
        (b'{"id": -1, "cmd": "status"}', '"id" must be an integer'),
        (b'{"id": 1.5, "cmd": "status"}', '"id" must be an integer'),
        (b'{"id": 9007199254740992, "cmd": "status"}', '"id" must be an integer'),
        (b'{"id": NaN, "cmd": "status"}', "not JSON"),
        (b'{"id": 1}', '"cmd" must be a string'),
        (b'{"id": 1, "cmd": "explode"}', 'unknown command "explode"'),
        (b'{"id": 1, "cmd": "status", "args": []}', '"args" must be an object'),
        (b'{"id": 1, "cmd": "status", "x": 1}', 'unknown request field "x"'),
        (b'{"id": 1, "cmd": "status", "args": {"peer": "a"}}', 'unknown argument "peer"'),
        (b'{"id": 1, "cmd": "send", "args": {"peer": "a"}}', 'missing argument "text"'),
        (b'{"id": 1, "cmd": "send", "args": {"peer": 1, "text": "t"}}', "must be a string"),
        (b'{"id": 1, "cmd": "send", "args": {"peer": "", "text": "t"}}', '"peer" is empty'),
        (b'{"id": 1, "cmd": "add", "args": {"peer": "\\ud800"}}', "not valid Unicode"),
        (b'{"id": 1, "cmd": "verify", "args": {"peer": "a", "mark": 1}}', "true or false"),
        (b"[" * 60_000 + b"]" * 60_000, "not JSON"),  # deep nesting: no RecursionError
    ],
)
def test_bad_requests_say_why(line: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message.replace("[", r"\[")):
        decode_request(line)


def test_error_keeps_the_request_id_once_known() -> None:
    with pytest.raises(WireError) as caught:
        decode_request(b'{"id": 42, "cmd": "explode"}')
    assert caught.value.request_id == 42
    with pytest.raises(WireError) as caught:
        decode_request(b"garbage")
    assert caught.value.request_id is None


def test_line_bound() -> None:
    padding = MAX_REQUEST_BYTES - len(b'{"id":1,"cmd":"status","args":{}}')
    assert decode_request(b'{"id":1,"cmd":"status","args":{}}' + b" " * padding + b"\n")
    with pytest.raises(WireError, match="over 128 KiB"):
        decode_request(b'{"id":1,"cmd":"status","args":{}}' + b" " * (padding + 1))


def test_text_bound_is_one_chat_frame() -> None:
    request = Request(1, "send", {"peer": "alice", "text": "x" * MAX_TEXT_BYTES})
    assert decode_request(encode_request(request)) == request
    too_long = Request(1, "send", {"peer": "alice", "text": "x" * (MAX_TEXT_BYTES + 1)})
    with pytest.raises(WireError, match="over the limit"):
        encode_request(too_long)
    with pytest.raises(WireError, match="over the limit"):
        decode_request(json.dumps({"id": 1, "cmd": "send", "args": too_long.args}).encode())


def test_optional_flag_defaults_to_false() -> None:
    request = decode_request(b'{"id": 3, "cmd": "verify", "args": {"peer": "bob"}}')
    assert request.args == {"peer": "bob", "mark": False}
    assert decode_request(b'{"id": 3, "cmd": "status"}').args == {}


# -- responses and events --------------------------------------------------------


@given(st.binary(max_size=400))
def test_any_bytes_decode_to_a_server_line_or_wire_error(line: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_server_line(line)


@given(st.integers(0, 2**53 - 1) | st.none(), json_values.filter(lambda v: v == v))
def test_ok_responses_round_trip(request_id: int | None, result: Any) -> None:
    try:
        line = encode_response(Response(request_id, True, result))
    except ValueError:  # NaN/inf are not JSON: the server answers an internal error
        return
    decoded = decode_server_line(line)
    assert decoded == Response(request_id, True, result=json.loads(line)["result"])


@given(st.text(max_size=2000))
def test_error_responses_are_one_bounded_line(message: str) -> None:
    line = encode_response(Response(5, False, error=message))
    assert line.count(b"\n") == 1
    decoded = decode_server_line(line)
    assert isinstance(decoded, Response)
    assert decoded.ok is False
    assert decoded.error is not None
    assert decoded.error == one_line(message)
    assert len(decoded.error) <= 1000


def test_events_round_trip() -> None:
    event = {"type": "message", "text": "héllo\n\x1b[31m", "timestamp_ms": 1}
    decoded = decode_server_line(encode_event(event))
    assert decoded == EventLine(event)
    with pytest.raises(WireError, match='"event" must be an object'):
        decode_server_line(b'{"event": {"text": "no type"}}')
