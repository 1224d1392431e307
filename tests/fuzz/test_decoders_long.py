"""The long fuzz run of every decoder (profile: tests/fuzz/conftest.py).

Each test feeds one decoder arbitrary input and near-valid input (a genuine value,
then mutated: bit flips, truncation, extension, splices, deep JSON nesting) and checks
that the answer is a value or the decoder's documented error, and nothing else; where
a value comes back, that it is the one a canonical encoder makes (one spelling per
value), and where a genuine value was mutated, that the mutation is caught.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pchat.control.wire import (
    COMMANDS,
    EventLine,
    Request,
    Response,
    WireError,
    decode_request,
    decode_server_line,
    encode_request,
    encode_response,
)
from p2pchat.crypto.encoding import b64url_decode, b64url_encode
from p2pchat.crypto.envelope import (
    DEFAULT_MAX_AGE_MS,
    Direction,
    EnvelopeError,
    LanEnvelopes,
    LinkEnvelopes,
    ReplayedEnvelope,
    ReplayGuard,
    StaleEnvelope,
    peek_lan_sender,
)
from p2pchat.crypto.identity import Identity, peer_id
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.stream import (
    HEADER_BYTES,
    OVERHEAD_BYTES,
    StreamError,
    StreamReceiver,
    StreamSender,
)
from p2pchat.discovery.txt import AdvertError, PeerAdvert, decode_txt, encode_txt
from p2pchat.node.contacts import _request_name
from p2pchat.protocol.batch import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    BatchError,
    decode_batch,
    encode_batch,
)
from p2pchat.protocol.batch import MAX_ITEM_BYTES as MAX_BATCH_ITEM_BYTES
from p2pchat.protocol.errors import RemoteProtocolError
from p2pchat.protocol.frames import (
    HEADER_BYTES as FRAME_HEADER_BYTES,
)
from p2pchat.protocol.frames import (
    MAX_FRAME_BYTES,
    FrameError,
    FrameType,
    decode_frame,
)
from p2pchat.protocol.handshake import HandshakeError, decode_handshake
from p2pchat.protocol.session import Role, Session
from signaling.app import _parse_close_guest, _parse_hello, _parse_room_state
from signaling.owner_client import _json_object as _owner_json_object
from signaling.rooms import RoomLimitError, RoomRegistry, is_valid_room_id
from tests.fuzz.mutations import mutated

FUZZ = settings.get_profile("p2pchat-fuzz-decoders")
ALICE, BOB = Identity(bytes(32)), Identity(bytes([1] * 32))
LINK_KEY = bytes(range(32))
NOW = 1_700_000_000_000

# --- strategies -------------------------------------------------------------------------


def deep_json(depth: int, opener: str, closed: bool) -> str:
    """Nesting that a recursive JSON decoder cannot follow (RecursionError), closed or
    not: ``"[" * 1000`` is only 1000 characters, under every line bound we have."""
    if opener == "[":
        return "[" * depth + ("]" * depth if closed else "")
    return '{"a":' * depth + ("1" + "}" * depth if closed else "")


@contextlib.contextmanager
def default_recursion_limit() -> Iterator[None]:
    """Hypothesis raises the recursion limit while a test runs; a real process keeps
    Python's default (1000), so deep-JSON input is decoded under the default here."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the stack under pytest is about as deep as under aiohttp
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
deep_nesting = st.builds(
    deep_json,
    st.integers(0, 3000) | st.integers(990, 1030),  # around the interpreter's recursion limit
    st.sampled_from(["[", "{"]),
    st.booleans(),
)


# --- frames -----------------------------------------------------------------------------


@FUZZ
@given(
    st.binary(max_size=400)
    | st.builds(  # around the size bound (drawing 64 KiB byte by byte is too slow)
        lambda head, n, fill: head + bytes([fill]) * n,
        st.binary(max_size=40),
        st.integers(MAX_FRAME_BYTES - 50, MAX_FRAME_BYTES + 10),
        st.sampled_from([0, 0x61, 0xFF]),
    )
)
def test_frame_any_bytes(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    assert frame.encode() == data  # one spelling per frame


# --- batches (several sealed frames in one channel message) ------------------------------


def _batch_items(data: bytes) -> list[bytes] | None:
    """The reference reading of a batch: (u32 length | item)+, bounds as documented."""
    if not data or len(data) > MAX_BATCH_BYTES:
        return None
    items, offset = [], 0
    while offset < len(data):
        if len(items) == MAX_BATCH_ITEMS or len(data) - offset < 4:
            return None
        length = int.from_bytes(data[offset : offset + 4], "big")
        offset += 4
        if not OVERHEAD_BYTES <= length <= MAX_BATCH_ITEM_BYTES or length > len(data) - offset:
            return None
        items.append(data[offset : offset + length])
        offset += length
    return items


GENUINE_BATCH = encode_batch([bytes([i]) * (OVERHEAD_BYTES + i) for i in range(6)])


@FUZZ
@given(
    st.binary(max_size=400)
    | mutated(GENUINE_BATCH)
    | st.lists(st.binary(min_size=OVERHEAD_BYTES, max_size=60), min_size=1, max_size=20).map(
        encode_batch
    )
)
def test_batch_any_bytes(data: bytes) -> None:
    want = _batch_items(data)
    if want is None:
        with pytest.raises(BatchError) as refused:
            decode_batch(data)
        assert refused.value.code == "bad-batch"
        return
    items = decode_batch(data)
    assert items == want
    assert encode_batch(items) == data  # one spelling per batch


@FUZZ
@given(st.data())
def test_batch_into_a_session(data: st.DataObject) -> None:
    """Whatever arrives as a batch: events, or a RemoteProtocolError; never anything else."""
    receiver, sealed = _batch_session()
    genuine = encode_batch(sealed)
    blob = data.draw(mutated(genuine) | st.just(genuine))
    try:
        events = receiver.receive_data(blob, NOW)
    except RemoteProtocolError:
        assert blob != genuine
        return
    # Authenticated: only genuine frames open, in order (a cut batch is a shorter one).
    texts = [getattr(event, "text", None) for event in events]
    assert texts == [f"m{i}" for i in range(len(sealed))][: len(events)]
    assert events or blob == genuine


def _batch_session() -> tuple[Session, list[bytes]]:
    a = Session(Role.INITIATOR, LinkEnvelopes(LINK_KEY, ReplayGuard()))
    b = Session(Role.RESPONDER, LinkEnvelopes(LINK_KEY, ReplayGuard()))
    b.receive_offer(a.make_offer("v=0", NOW, {}), NOW)
    a.receive_answer(b.make_answer("v=0", NOW, {}), NOW)
    b.receive_data(a.stream_header(), NOW)
    a.stream_header()
    b.stream_header()
    return b, [a.send_text(f"m{i}", NOW)[1] for i in range(3)]


@FUZZ
@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
)
def test_frame_near_valid(version: int, kind: int, mid: bytes, ts: int, body: bytes) -> None:
    data = bytes([version, kind]) + mid + ts.to_bytes(8, "big") + body
    valid = version == 1 and (
        (kind == FrameType.TEXT and _utf8(body))
        or (kind in (2, 3, 4, 5) and not body)
        or (kind in (6, 7, 8, 9) and bool(body))  # group and file frames: opaque, non-empty
    )
    try:
        frame = decode_frame(data)
    except FrameError:
        assert not valid
        return
    assert valid
    assert (frame.type, frame.message_id, frame.timestamp_ms, frame.body) == (kind, mid, ts, body)
    assert len(data) >= FRAME_HEADER_BYTES


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- handshake bodies -------------------------------------------------------------------


@FUZZ
@given(
    st.binary(max_size=600)
    | json_values.map(lambda v: json.dumps(v).encode())
    | deep_nesting.map(str.encode)
)
def test_handshake_any_input(data: bytes) -> None:
    try:
        with default_recursion_limit():
            body = decode_handshake(data)
    except HandshakeError:
        return
    assert decode_handshake(body.encode()) == body


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "v": st.sampled_from([1, 1.0, True, "1", 2, 0, None]),
            "sdp": st.text(max_size=40) | st.integers() | st.none(),
            "kx": st.binary(min_size=30, max_size=34).map(b64url_encode) | st.text(max_size=50),
            "info": st.dictionaries(
                st.text(max_size=300), st.text(max_size=300) | st.integers(), max_size=20
            )
            | json_values,
        },
    )
)
def test_handshake_near_valid(doc: dict[str, Any]) -> None:
    data = json.dumps(doc).encode()
    try:
        body = decode_handshake(data)
    except HandshakeError:
        return
    assert type(doc["v"]) is int
    assert doc["v"] == 1
    assert body.sdp == doc["sdp"]
    assert b64url_encode(body.kx_public) == doc["kx"]
    assert len(body.kx_public) == 32


# --- envelopes --------------------------------------------------------------------------


def _lan_pair() -> tuple[LanEnvelopes, LanEnvelopes]:
    return (
        LanEnvelopes(ALICE, BOB.public_key, ReplayGuard()),
        LanEnvelopes(BOB, ALICE.public_key, ReplayGuard()),
    )


def _link_pair() -> tuple[LinkEnvelopes, LinkEnvelopes]:
    return LinkEnvelopes(LINK_KEY, ReplayGuard()), LinkEnvelopes(LINK_KEY, ReplayGuard())


SCHEMES = {"lan": _lan_pair, "link": _link_pair}
_GENUINE = {
    name: make()[0].seal(1, Direction.INITIATOR, bytes(16), b'{"v":1}', NOW, nonce=bytes(24))
    for name, make in SCHEMES.items()
}


@FUZZ
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@given(data=st.data())
def test_envelope_any_or_mutated_bytes(scheme: str, data: st.DataObject) -> None:
    genuine = _GENUINE[scheme]
    blob = data.draw(st.binary(max_size=400) | mutated(genuine), label="envelope")
    _, opener = SCHEMES[scheme]()
    try:
        opened = opener.open(blob, Direction.INITIATOR, NOW)
    except EnvelopeError:
        pass
    else:
        assert blob == genuine, "a changed envelope was accepted"
        assert opened.body == b'{"v":1}'
    if scheme == "lan":
        try:
            sender = peek_lan_sender(blob)
        except EnvelopeError:
            return
        assert sender == blob[2:34]
        assert len(sender) == 32


@FUZZ
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@given(
    kind=st.integers(0, 255),
    sealed_as=st.sampled_from(Direction),
    expected=st.sampled_from(Direction),
    skew=st.integers(-2 * DEFAULT_MAX_AGE_MS, 2 * DEFAULT_MAX_AGE_MS),
    body=st.binary(max_size=64),
    repeat=st.integers(1, 3),
)
def test_envelope_checks_direction_age_and_replay(
    scheme: str,
    kind: int,
    sealed_as: Direction,
    expected: Direction,
    skew: int,
    body: bytes,
    repeat: int,
) -> None:
    """A genuine envelope opens once, only the right way round, only while fresh."""
    sealer, opener = SCHEMES[scheme]()
    blob = sealer.seal(kind, sealed_as, bytes(range(16)), body, NOW)
    for attempt in range(repeat):
        try:
            opened = opener.open(blob, expected, NOW + skew)
        except StaleEnvelope:
            assert abs(skew) > DEFAULT_MAX_AGE_MS
            continue
        except ReplayedEnvelope:
            assert attempt > 0
            continue
        except EnvelopeError as exc:
            assert sealed_as != expected, str(exc)  # noqa: PT017
            continue
        assert attempt == 0
        assert sealed_as == expected
        assert abs(skew) <= DEFAULT_MAX_AGE_MS
        assert (opened.kind, opened.body, opened.timestamp_ms) == (kind, body, NOW)


# --- secret stream ----------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_stream_any_bytes(data: bytes) -> None:
    try:
        receiver = StreamReceiver(LINK_KEY, data[:HEADER_BYTES])
        receiver.open(data[HEADER_BYTES:])
    except StreamError:
        pass


@FUZZ
@given(data=st.data(), plaintexts=st.lists(st.binary(max_size=80), min_size=1, max_size=6))
def test_stream_mutated_frame_is_refused_and_changes_nothing(
    data: st.DataObject, plaintexts: list[bytes]
) -> None:
    sender = StreamSender(LINK_KEY)
    frames = [sender.seal(p, final=i == len(plaintexts) - 1) for i, p in enumerate(plaintexts)]
    receiver = StreamReceiver(LINK_KEY, sender.header)
    target = data.draw(st.integers(0, len(frames) - 1), label="target")
    for i, (plain, frame) in enumerate(zip(plaintexts, frames, strict=True)):
        if i == target:
            bad = data.draw(mutated(frame) | st.sampled_from(frames), label="bad")
            if bad != frame:
                with pytest.raises(StreamError):
                    receiver.open(bad)
        assert receiver.open(frame) == (plain, i == len(frames) - 1)
    with pytest.raises(StreamError):
        receiver.open(frames[-1])


# --- encodings, link fragments, TXT adverts ---------------------------------------------


@FUZZ
@given(
    st.text(max_size=80)
    | st.binary(max_size=60).map(b64url_encode)
    | st.text("AQgw_-=+/ ", max_size=30)
)
def test_b64url(text: str) -> None:
    try:
        decoded = b64url_decode(text)
    except ValueError:
        return
    assert b64url_encode(decoded) == text


@FUZZ
@given(
    st.text(max_size=80)
    | st.binary(min_size=30, max_size=34).map(b64url_encode).map(lambda t: "#" + t)
)
def test_link_fragment(text: str) -> None:
    try:
        secret = LinkSecret.from_fragment(text)
    except ValueError:
        return
    assert secret.fragment == text.removeprefix("#")
    assert len(secret.secret) == 32
    assert is_valid_room_id(secret.room_id)


_ADVERT = encode_txt(PeerAdvert(1, ALICE.peer_id, ALICE.public_key, "alice"))
txt_values = st.none() | st.binary(max_size=80) | st.text(max_size=70).map(str.encode)
txt_keys = st.sampled_from([b"v", b"V", b"id", b"pk", b"PK", b"name", b"x"]) | st.binary(max_size=6)


@FUZZ
@given(
    st.dictionaries(txt_keys, txt_values, max_size=8)
    | st.builds(
        lambda base, extra: {**base, **extra},
        st.just({k.encode(): v.encode() for k, v in _ADVERT.items()}),
        st.dictionaries(txt_keys, txt_values, max_size=3),
    ),
    st.booleans(),
)
def test_txt_advert(properties: dict[bytes, bytes | None], check_id: bool) -> None:
    try:
        advert = decode_txt(properties, peer_id_of=peer_id if check_id else None)
    except AdvertError:
        return
    assert isinstance(advert, PeerAdvert)
    if check_id:
        assert advert.peer_id == peer_id(advert.public_key)


# --- control socket wire ----------------------------------------------------------------

request_docs = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(-2, 2**54) | st.booleans() | st.floats() | st.text(max_size=4),
        "cmd": st.sampled_from(sorted(COMMANDS)) | st.text(max_size=10),
        "args": st.dictionaries(
            st.sampled_from(
                [
                    "peer",
                    "text",
                    "mark",
                    "expires",
                    "uses",
                    "label",
                    "approve",
                    "invite",
                    "deny",
                    "x",
                ]
            ),
            st.text(max_size=300) | st.booleans() | st.integers() | st.none(),
            max_size=4,
        )
        | json_values,
        "extra": json_values,
    },
)


@FUZZ
@given(
    st.binary(max_size=500)
    | request_docs.map(lambda d: json.dumps(d).encode() + b"\n")
    | deep_nesting.map(str.encode)
)
def test_control_request(line: bytes) -> None:
    try:
        with default_recursion_limit():
            request = decode_request(line)
    except WireError:
        return
    assert isinstance(request, Request)
    assert decode_request(encode_request(request)) == request


@FUZZ
@given(
    st.binary(max_size=500)
    | st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "ok": json_values,
            "result": json_values,
            "error": json_values,
            "event": json_values,
        },
    ).map(lambda d: json.dumps(d).encode())
    | deep_nesting.map(str.encode)
)
def test_control_server_line(line: bytes) -> None:
    try:
        with default_recursion_limit():
            value = decode_server_line(line)
    except WireError:
        return
    assert isinstance(value, Response | EventLine)
    if isinstance(value, Response) and value.id is not None:
        assert decode_server_line(encode_response(value)) == value


# --- signaling: room ids and the owner's control messages -------------------------------


@FUZZ
@given(st.text(max_size=30) | st.binary(min_size=14, max_size=18).map(b64url_encode))
def test_room_id(text: str) -> None:
    """``is_valid_room_id`` is exactly "canonical base64url of 16 bytes"."""
    try:
        canonical = len(b64url_decode(text)) == 16
    except ValueError:
        canonical = False
    assert is_valid_room_id(text) is canonical


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.text(max_size=24) | st.binary(min_size=16, max_size=16).map(b64url_encode),
            st.floats() | st.integers(-(10**20), 10**20),
            st.sampled_from(["open", "close", "revoke", "discard", "purge"]),
        ),
        max_size=20,
    )
)
def test_room_registry_inputs(ops: list[tuple[str, float, str]]) -> None:
    registry = RoomRegistry(max_rooms=4)
    now = 1000.0
    for room_id, expires, op in ops:
        if op == "open":
            try:
                registry.open_room(room_id, expires_at=expires, now=now)
            except (ValueError, RoomLimitError):
                pass
            else:
                assert is_valid_room_id(room_id)
                assert math.isfinite(expires)
        elif op == "close":
            registry.close(room_id)
        elif op == "revoke":
            registry.revoke(room_id)
        elif op == "discard":
            registry.discard(room_id)
        else:
            registry.purge(now)
        assert len(registry) <= registry.max_rooms
        assert all(room.is_live(now) for room in registry.live_rooms(now))


@FUZZ
@given(
    st.text(max_size=1100)
    | json_values.map(json.dumps)
    | st.builds(lambda v: json.dumps({"expires_at": v, "room": v}), json_values)
    | deep_nesting.map(lambda t: t[:1024])  # the bound of _parse_json_object
)
def test_owner_text_messages(text: str) -> None:
    with default_recursion_limit():
        hello = _parse_hello(text)
        state = _parse_room_state(text)
    if hello is not None:
        expires_at, claim, flow = hello
        assert math.isfinite(expires_at)
        assert claim is None or len(claim) == 32
        assert isinstance(flow, bool)
    assert state is None or isinstance(state, str)


@FUZZ
@given(st.binary(max_size=140))
def test_owner_close_guest(rest: bytes) -> None:
    parsed = _parse_close_guest(rest)
    if parsed is not None:
        code, reason = parsed
        assert code == 1000 or 3000 <= code <= 4999
        assert len(reason.encode()) <= 123


@FUZZ
@given(
    st.text(max_size=4200)
    | json_values.map(json.dumps)
    | deep_nesting.map(lambda t: t[:4096])  # the bound of owner_client._json_object
)
def test_owner_client_server_messages(text: str) -> None:
    """What a standalone server sends the owner client (the server is not trusted)."""
    with default_recursion_limit():
        value = _owner_json_object(text)
    assert value is None or isinstance(value, dict)


@FUZZ
@given(
    st.binary(max_size=300)
    | st.builds(lambda v: json.dumps({"name": v}).encode(), json_values)
    | deep_nesting.map(str.encode)
)
def test_contact_request_body(body: bytes) -> None:
    with default_recursion_limit():
        name = _request_name(body)
    assert name is None or (0 < len(name.encode()) <= 64 and name.isprintable())
