"""Stateful fuzzing of a pair of Sessions: random interleavings of every event.

An initiator and a responder (over ``LinkEnvelopes`` or ``LanEnvelopes``) go through
the handshake, exchange stream headers and chat frames, and close, while the rules
below also inject junk, flip bits, replay, reorder and call operations in the wrong
state. The machine keeps a model of what each side has sent and received, and checks,
at every step:

1. **Only ProtocolError.** Every call returns or raises a ``ProtocolError``:
   ``LocalProtocolError`` exactly when the model says the call is not allowed in the
   session's state (misuse), ``RemoteProtocolError`` for bad input from the other side.
   Any other exception fails the test.
2. **A refused input changes nothing.** After a refusal, the session's state, session
   id, peer info and peer key share are what they were, and the next genuine item on
   that channel decodes to exactly what was sent (checked by delivering it).
3. **Exactly what was sent, in order, once.** What each side accepts is a prefix of what
   the other sent (message id, timestamp, text; receipts, pings, pongs), and once every
   channel is drained it is all of it, unless a rule below lost the rest on purpose.
   Replays and reorderings are never accepted.
4. **The handshake only accepts the genuine offer and answer**, once each.

Known, documented exception to 2 (docs/reliability.md): the secret-stream header is the
first channel message and is not authenticated on its own, so *before* the genuine
header arrives, any 24-byte message is taken as the header (and may even report
``SessionOpened``). The model calls that direction *poisoned*: from then on every frame
on it is refused (RemoteProtocolError), none is ever accepted or mis-decoded. Only
someone who can inject into the data channel can do this, and they can also drop it;
DTLS (with the fingerprint from the authenticated SDP) keeps them out on the direct
path. Likewise a side that closed refuses what the other side still had in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from p2pchat.crypto.envelope import Direction, LanEnvelopes, LinkEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.crypto.stream import HEADER_BYTES
from p2pchat.protocol.batch import BatchError, decode_batch, encode_batch
from p2pchat.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from p2pchat.protocol.events import (
    MessageReceived,
    PingReceived,
    PongReceived,
    ReceiptReceived,
    SessionClosed,
    SessionOpened,
)
from p2pchat.protocol.handshake import EnvelopeKind
from p2pchat.protocol.session import Role, Session, SessionState

MACHINES = settings.get_profile("p2pchat-fuzz-machines")
NOW = 1_700_000_000_000
LINK_KEY = bytes(range(32))
ALICE, BOB = Identity(bytes(32)), Identity(bytes([1] * 32))
SIDES = st.sampled_from(["i", "r"])


@dataclass
class Item:
    """One channel message in flight, and what it must decode to."""

    data: bytes
    expect: Any  # an event, or "header", or a list of events (a batch of several)


@dataclass
class Side:
    session: Session
    inbox: list[Item] = field(default_factory=list)  # in flight towards this side
    delivered: list[Item] = field(default_factory=list)  # genuine items it took (for replays)
    sent_events: list[Any] = field(default_factory=list)  # what it sent (as the peer sees it)
    got_events: list[Any] = field(default_factory=list)  # what it accepted
    header: bytes | None = None  # our stream header, once made
    header_sent: bool = False
    header_received: bool = False
    poisoned: bool = False  # a forged header was taken before the genuine one
    lost: bool = False  # something sent to it was refused on purpose (closed, poisoned)


def _opens_a_prefix(genuine: bytes, altered: bytes) -> bool:
    """Whether the receiver opens the first message of ``altered`` before refusing it:
    the batch still splits (a broken length is refused before anything opens) and its
    first message is the genuine one."""
    try:
        items = decode_batch(altered)
    except BatchError:
        return False
    return items[0] == decode_batch(genuine)[0]


def snapshot(session: Session) -> tuple[Any, ...]:
    return (session.state, session.session_id, dict(session.peer_info), session.peer_kx_public)


class SessionPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sides: dict[str, Side] = {}
        self.offer: bytes | None = None
        self.answer: bytes | None = None
        self.offer_delivered = self.answer_delivered = False
        self.clock = NOW

    @initialize(
        scheme=st.sampled_from(["lan", "link"]), batch=st.tuples(st.booleans(), st.booleans())
    )
    def start(self, scheme: str, batch: tuple[bool, bool]) -> None:
        if scheme == "lan":
            i_env: Any = LanEnvelopes(ALICE, BOB.public_key, ReplayGuard())
            r_env: Any = LanEnvelopes(BOB, ALICE.public_key, ReplayGuard())
        else:
            i_env, r_env = (
                LinkEnvelopes(LINK_KEY, ReplayGuard()),
                LinkEnvelopes(LINK_KEY, ReplayGuard()),
            )
        self.envelopes = {"i": i_env, "r": r_env}
        # Batches when both announce them; one side from before them: one frame a message.
        self.announce = {"i": batch[0], "r": batch[1]}
        self.sides = {
            "i": Side(Session(Role.INITIATOR, i_env, batch=batch[0])),
            "r": Side(Session(Role.RESPONDER, r_env, batch=batch[1])),
        }

    # -- helpers -------------------------------------------------------------------------

    def other(self, name: str) -> str:
        return "r" if name == "i" else "i"

    def now(self) -> int:
        self.clock += 1
        return self.clock

    def refused(self, name: str, call: Any, *, local: bool) -> ProtocolError:
        """``call()`` must be refused with the given kind of error and change nothing."""
        session = self.sides[name].session
        before = snapshot(session)
        try:
            call()
        except ProtocolError as exc:
            expected = LocalProtocolError if local else RemoteProtocolError
            assert isinstance(exc, expected), f"{type(exc).__name__}: {exc}"  # noqa: PT017
            assert snapshot(session) == before
            return exc
        raise AssertionError("accepted what must be refused")

    def can_send(self, name: str) -> bool:
        side = self.sides[name]
        return side.header_sent and side.session.state in (SessionState.KEYED, SessionState.OPEN)

    def info(self, side: str, name: str) -> dict[str, str]:
        return {"name": name, "batch": "1"} if self.announce[side] else {"name": name}

    def push(self, sender: str, data: bytes, expect: Any) -> None:
        if expect != "header" and self.sides[sender].session.batching:
            data = encode_batch([data])
        self.push_wire(sender, data, expect)

    def push_wire(self, sender: str, data: bytes, expect: Any) -> None:
        self.sides[self.other(sender)].inbox.append(Item(data, expect))
        if isinstance(expect, list):
            self.sides[sender].sent_events += expect
        elif expect != "header":
            self.sides[sender].sent_events.append(expect)

    # -- handshake -----------------------------------------------------------------------

    @rule(sdp=st.text(min_size=1, max_size=30), name=st.text(max_size=10))
    def make_offer(self, sdp: str, name: str) -> None:
        session = self.sides["i"].session
        if session.state is not SessionState.NEW:
            self.refused("i", lambda: session.make_offer(sdp, self.now()), local=True)
            return
        self.offer = session.make_offer(sdp, self.now(), {"name": name})
        self.offer_sdp, self.offer_info = sdp, self.info("i", name)

    @precondition(lambda self: self.offer is not None)
    @rule()
    def deliver_offer(self) -> None:
        assert self.offer is not None
        session = self.sides["r"].session
        if self.offer_delivered:  # a replay of the genuine offer
            self.refused(
                "r", lambda: session.receive_offer(self.offer, self.now()), local=True
            )  # the responder is past NEW: it takes no second offer
            return
        event = session.receive_offer(self.offer, self.now())
        assert (event.sdp, dict(event.info)) == (self.offer_sdp, self.offer_info)
        assert session.session_id == self.sides["i"].session.session_id
        assert session.state is SessionState.OFFER_RECEIVED
        self.offer_delivered = True

    @rule(sdp=st.text(min_size=1, max_size=30))
    def make_answer(self, sdp: str) -> None:
        session = self.sides["r"].session
        if session.state is not SessionState.OFFER_RECEIVED:
            self.refused("r", lambda: session.make_answer(sdp, self.now()), local=True)
            return
        self.answer = session.make_answer(sdp, self.now(), {"name": "bob"})
        self.answer_sdp = sdp
        assert session.state is SessionState.KEYED

    @precondition(lambda self: self.answer is not None)
    @rule()
    def deliver_answer(self) -> None:
        assert self.answer is not None
        session = self.sides["i"].session
        if self.answer_delivered:
            self.refused("i", lambda: session.receive_answer(self.answer, self.now()), local=True)
            return
        event = session.receive_answer(self.answer, self.now())
        assert (event.sdp, dict(event.info)) == (self.answer_sdp, self.info("r", "bob"))
        assert session.state is SessionState.KEYED
        self.answer_delivered = True

    @rule(
        to=SIDES,
        junk=st.binary(max_size=200),
        how=st.sampled_from(["junk", "flip", "reflect", "wrong-kind", "replay-fresh"]),
        index=st.integers(0, 10_000),
        bit=st.integers(0, 7),
    )
    def bad_envelope(self, to: str, junk: bytes, how: str, index: int, bit: int) -> None:
        """Anything but the genuine envelope, at the side that expects one, is refused."""
        target = to
        side = self.sides[target].session
        waiting = (
            side.state is SessionState.NEW
            if target == "r"
            else side.state is SessionState.OFFER_SENT
        )
        genuine = self.offer if target == "r" else self.answer
        if how == "flip" and genuine:
            blob = bytearray(genuine)
            blob[index % len(blob)] ^= 1 << bit
            data = bytes(blob)
        elif how == "reflect" and (own := (self.answer if target == "r" else self.offer)):
            data = own  # our own envelope sent back to us
        elif how == "wrong-kind":
            sender = self.other(target)
            direction = Direction.INITIATOR if sender == "i" else Direction.RESPONDER
            data = self.envelopes[sender].seal(
                EnvelopeKind.CONTACT_REQUEST, direction, side.session_id, b"{}", self.now()
            )
        else:
            data = junk
        receive = side.receive_offer if target == "r" else side.receive_answer
        self.refused(target, lambda: receive(data, self.now()), local=not waiting)

    @rule(to=SIDES, data=st.binary(max_size=80))
    def wrong_handshake_call(self, to: str, data: bytes) -> None:
        """The initiator never takes an offer, the responder never an answer."""
        target = to
        session = self.sides[target].session
        receive = session.receive_answer if target == "r" else session.receive_offer
        self.refused(target, lambda: receive(data, self.now()), local=True)

    # -- channel: headers and frames -----------------------------------------------------

    @rule(side=SIDES)
    def send_header(self, side: str) -> None:
        me = self.sides[side]
        if me.header_sent:
            assert me.session.stream_header() == me.header  # idempotent
            return
        if me.session.state is not SessionState.KEYED:
            self.refused(side, me.session.stream_header, local=True)
            return
        header = me.session.stream_header()
        me.header, me.header_sent = header, True
        # If the peer's header (or a forged one) is in, ours completes the session.
        expected = SessionState.OPEN if me.header_received else SessionState.KEYED
        assert me.session.state is expected
        self.push(side, header, "header")

    @rule(
        side=SIDES,
        text=st.text(max_size=40),
        kind=st.sampled_from(["text", "receipt", "ping", "pong"]),
    )
    def send_frame(self, side: str, text: str, kind: str) -> None:
        me = self.sides[side]
        s, now = me.session, self.now()
        mid = bytes([len(me.sent_events) % 256]) * 16
        calls = {
            "text": lambda: s.send_text(text, now, message_id=mid)[1],
            "receipt": lambda: s.send_receipt(mid, now),
            "ping": lambda: s.send_ping(now),
            "pong": lambda: s.pong(mid, now),
        }
        if not self.can_send(side):
            self.refused(side, calls[kind], local=True)
            return
        result = calls[kind]()
        if kind == "ping":
            ping_id, data = result
            expect: Any = PingReceived(ping_id)
        else:
            data = result
            expect = {
                "text": MessageReceived(mid, now, text),
                "receipt": ReceiptReceived(mid),
                "pong": PongReceived(mid, now),
            }[kind]
        self.push(side, data, expect)

    @rule(side=SIDES, now=st.integers(0, 4))
    def close(self, side: str, now: int) -> None:
        """Close (one time in five: closing ends the interesting part of a run)."""
        if now:
            return
        me = self.sides[side]
        if not self.can_send(side):
            self.refused(side, lambda: me.session.close(self.now()), local=True)
            return
        data = me.session.close(self.now())
        assert me.session.state is SessionState.CLOSED
        self.push(side, data, SessionClosed())

    def deliver_to(self, name: str, data: bytes) -> list[Any]:
        return self.sides[name].session.receive_data(data, self.now())

    def keyed(self, name: str) -> bool:
        return self.sides[name].session.state in (
            SessionState.KEYED, SessionState.OPEN, SessionState.CLOSED
        )  # fmt: skip

    @rule(side=SIDES)
    def deliver(self, side: str) -> None:
        """The next genuine item on the channel towards ``side``, in order."""
        me = self.sides[side]
        if not me.inbox:
            return
        item = me.inbox[0]
        session = me.session
        if not self.keyed(side):  # data before our answer was in: refused, not consumed
            self.refused(side, lambda: self.deliver_to(side, item.data), local=True)
            return
        me.inbox.pop(0)
        if session.state is SessionState.CLOSED or me.poisoned:
            exc = self.refused(side, lambda: self.deliver_to(side, item.data), local=False)
            # A batching side splits first: what a forged header made of the stream
            # may already fail as a batch.
            assert exc.code in ("closed", "bad-stream", "bad-batch")
            me.lost = True
            return
        events = self.deliver_to(side, item.data)
        me.delivered.append(item)
        if item.expect == "header":
            assert not me.header_received
            me.header_received = True
            assert events == ([SessionOpened()] if me.header_sent else [])
            return
        expected = item.expect if isinstance(item.expect, list) else [item.expect]
        assert events == expected
        me.got_events += expected
        if isinstance(expected[-1], SessionClosed):
            assert session.state is SessionState.CLOSED

    @rule(side=SIDES, junk=st.binary(max_size=120) | st.binary(min_size=24, max_size=24))
    def inject(self, side: str, junk: bytes) -> None:
        """Junk on the channel towards ``side``."""
        me = self.sides[side]
        if not self.keyed(side):
            self.refused(side, lambda: self.deliver_to(side, junk), local=True)
            return
        if me.session.state is SessionState.CLOSED:
            self.refused(side, lambda: self.deliver_to(side, junk), local=False)
            return
        if not me.header_received and len(junk) == HEADER_BYTES:
            self.forged_header(side, junk)
            return
        self.refused(side, lambda: self.deliver_to(side, junk), local=False)

    @rule(side=SIDES, index=st.integers(0, 10_000), bit=st.integers(0, 7))
    def bit_flip(self, side: str, index: int, bit: int) -> None:
        """The next genuine item, one bit flipped; the genuine one stays in flight."""
        me = self.sides[side]
        if not me.inbox or not self.keyed(side):
            return
        flipped = bytearray(me.inbox[0].data)
        flipped[index % len(flipped)] ^= 1 << bit
        if me.session.state is not SessionState.CLOSED and not me.header_received:
            assert me.inbox[0].expect == "header"  # headers always go first
            self.forged_header(side, bytes(flipped))
            return
        self.refused(side, lambda: self.deliver_to(side, bytes(flipped)), local=False)
        item = me.inbox[0]
        if isinstance(item.expect, list) and _opens_a_prefix(item.data, bytes(flipped)):
            # The first frames of the batch opened before the broken one: the stream
            # moved on, so the rest of it is refused (the adapter closes the link on
            # any protocol error; docs/protocol.md, "Batches").
            me.poisoned = me.lost = True

    def forged_header(self, side: str, data: bytes) -> None:
        me = self.sides[side]
        events = self.deliver_to(side, data)  # taken: the header is not authenticated
        assert events == ([SessionOpened()] if me.header_sent else [])
        me.header_received = me.poisoned = True

    @rule(side=SIDES, pick=st.integers(0, 10_000))
    def replay(self, side: str, pick: int) -> None:
        """An item ``side`` already took, again: refused."""
        me = self.sides[side]
        if not me.delivered:
            return
        item = me.delivered[pick % len(me.delivered)]
        self.refused(side, lambda: self.deliver_to(side, item.data), local=False)

    @rule(side=SIDES, pick=st.integers(1, 10_000))
    def reorder(self, side: str, pick: int) -> None:
        """A later item before the next one: refused, and both stay in flight."""
        me = self.sides[side]
        if len(me.inbox) < 2 or not self.keyed(side):
            return
        item = me.inbox[1 + pick % (len(me.inbox) - 1)]
        self.refused(side, lambda: self.deliver_to(side, item.data), local=False)

    # -- progress: whole steps in one rule, so that runs get far ---------------------------

    @rule()
    def connect(self) -> None:
        """Take every handshake step that is possible now, then exchange headers."""
        i, r = self.sides["i"].session, self.sides["r"].session
        if i.state is SessionState.NEW:
            self.make_offer("v=0 offer", "alice")
        if self.offer is not None and not self.offer_delivered:
            self.deliver_offer()
        if r.state is SessionState.OFFER_RECEIVED:
            self.make_answer("v=0 answer")
        if self.answer is not None and not self.answer_delivered:
            self.deliver_answer()
        for name in ("r", "i"):
            if self.sides[name].session.state is SessionState.KEYED:
                self.send_header(name)
        for name in ("r", "i"):
            side = self.sides[name]
            if side.inbox and side.inbox[0].expect == "header":
                self.deliver(name)

    @rule(side=SIDES, texts=st.lists(st.text(max_size=20), min_size=1, max_size=8))
    def send_texts(self, side: str, texts: list[str]) -> None:
        for text in texts:
            self.send_frame(side, text, "text")

    @rule(
        side=SIDES,
        texts=st.lists(st.text(max_size=20), min_size=1, max_size=8),
        close=st.booleans(),
    )
    def send_batch(self, side: str, texts: list[str], close: bool) -> None:
        """Several frames in one channel message (CLOSE last), as PeerLink sends them."""
        me = self.sides[side]
        if not self.can_send(side) or not me.session.batching:
            return
        sealed, expect = [], []
        for text in texts:
            mid = bytes([(len(me.sent_events) + len(expect)) % 256]) * 16
            now = self.now()
            sealed.append(me.session.send_text(text, now, message_id=mid)[1])
            expect.append(MessageReceived(mid, now, text))
        if close:
            sealed.append(me.session.close(self.now()))
            expect.append(SessionClosed())
        self.push_wire(side, encode_batch(sealed), expect)

    @rule(side=SIDES, count=st.integers(1, 10))
    def deliver_some(self, side: str, count: int) -> None:
        for _ in range(count):
            self.deliver(side)

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def accepted_is_a_prefix_of_sent(self) -> None:
        for name, side in self.sides.items():
            sent = self.sides[self.other(name)].sent_events
            assert side.got_events == sent[: len(side.got_events)]

    def teardown(self) -> None:
        """Drain every channel: unless something was lost on purpose, all arrive."""
        if not self.sides:
            return
        for _ in range(2):  # twice: a header may wait for its receiver's answer
            for name in ("i", "r"):
                while self.sides[name].inbox and self.keyed(name):
                    self.deliver(name)
        for name, side in self.sides.items():
            if side.inbox:  # never keyed: nothing could be delivered
                assert not self.keyed(name)
                continue
            sent = self.sides[self.other(name)].sent_events
            if not (side.lost or side.poisoned):
                assert side.got_events == sent


SessionPair.TestCase.settings = MACHINES
test_session_pair = SessionPair.TestCase
