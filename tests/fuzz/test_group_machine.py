"""Stateful fuzzing of a group as one member (Bob) sees it (protocol/group_state.py).

The admin (Alice) adds and removes members (Carol, Dave, Eve); every member in the
group sends; what travels to Bob (lists and messages) is delivered late, out of order,
twice, or never, and junk and forgeries come in too. Invariants, on every step:

* per sender, the messages Bob accepts have strictly increasing seqs;
* Bob accepts nothing twice, and nothing from a key not in the list he holds at that
  moment (a removed member's messages after the removal: refused), nothing from an
  epoch above his held one, nor from before he joined;
* a gap is reported exactly: ``missing`` is the seqs skipped since the last accepted;
* what Bob holds (pending messages) stays under its bound, and his list is the admin's.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from nacl.signing import SigningKey

from p2pchat.protocol import group_state as gs
from p2pchat.protocol.group_members import Member, MemberKind, decode_member_list
from p2pchat.protocol.group_messages import MessageKind, make_group_message
from p2pchat.protocol.group_state import GroupState, Status, Verdict

MACHINES = settings.get_profile("p2pchat-fuzz-machines")
GID = bytes([7] * 16)


def _key(n: int) -> SigningKey:
    return SigningKey(bytes([n]) * 32)


ALICE, BOB = _key(1), _key(2)
OTHERS = {"carol": _key(3), "dave": _key(4), "eve": _key(5)}
KEYS = {"alice": ALICE, **OTHERS}
SENDERS = st.sampled_from(sorted(KEYS))
OTHER_NAMES = st.sampled_from(sorted(OTHERS))
BOB_KEY = bytes(BOB.verify_key)


def pk(sk: SigningKey) -> bytes:
    return bytes(sk.verify_key)


@dataclass
class Accepted:
    seq: int


class GroupAsBobSeesIt(RuleBasedStateMachine):
    @initialize(with_carol=st.booleans())
    def start(self, with_carol: bool) -> None:
        first = [Member(MemberKind.LAN, BOB_KEY, "Bob")]
        if with_carol:
            first.append(Member(MemberKind.LAN, pk(OTHERS["carol"]), "carol"))
        created = gs.create(ALICE, "Alice", "Team", first, group_id=GID)
        self.admin = created.state
        self.members_at = {1: created.state.members.keys}  # epoch -> keys (the admin's truth)
        joined = gs.join(created.encoded, BOB_KEY, pk(ALICE))
        assert joined.state is not None
        self.bob: GroupState = joined.state
        self.senders: dict[str, GroupState] = {"alice": self.admin}
        if with_carol:
            carol = gs.join(created.encoded, pk(OTHERS["carol"]), pk(ALICE)).state
            assert carol is not None
            self.senders["carol"] = carol
        self.in_flight: list[bytes] = []  # to Bob, in sending order
        self.last_seq: dict[bytes, int] = {}  # per sender: the last seq Bob accepted
        self.accepted_ids: set[bytes] = set()
        self.clock = 1_767_225_600_000

    # -- the admin's list changes (members other than Bob adopt them at once) --------

    def publish(self, sent: gs.Sent) -> None:
        self.admin = sent.state
        self.senders["alice"] = self.admin
        self.members_at[self.admin.epoch] = self.admin.members.keys
        self.in_flight.append(sent.encoded)
        for name, sk in OTHERS.items():
            state = self.senders.get(name)
            if state is not None:
                adopted = gs.receive_list(state, sent.encoded)
                assert adopted.verdict is Verdict.ADOPTED
                assert adopted.state is not None
                self.senders[name] = adopted.state
            elif pk(sk) in self.admin.members.keys:
                joined = gs.join(sent.encoded, pk(sk), pk(ALICE)).state
                assert joined is not None
                self.senders[name] = joined

    @rule(name=OTHER_NAMES)
    def add(self, name: str) -> None:
        if pk(OTHERS[name]) in self.admin.members.keys:
            return
        self.publish(
            gs.add_member(self.admin, ALICE, Member(MemberKind.LAN, pk(OTHERS[name]), name))
        )

    @rule(name=OTHER_NAMES)
    def remove(self, name: str) -> None:
        if pk(OTHERS[name]) not in self.admin.members.keys:
            return
        self.publish(gs.remove_member(self.admin, ALICE, pk(OTHERS[name])))

    # -- members send ------------------------------------------------------------------------

    @rule(name=SENDERS, text=st.text(max_size=8))
    def send(self, name: str, text: str) -> None:
        state = self.senders.get(name)
        if state is None or state.status is not Status.ACTIVE:
            return
        self.clock += 1
        sent = gs.next_message(state, KEYS[name], text, self.clock)
        self.senders[name] = sent.state
        self.in_flight.append(sent.encoded)

    @rule(name=SENDERS, seq=st.integers(1, 30))
    def forge(self, name: str, seq: int) -> None:
        """A message signed by a member but not from its chain (a fork), or by a stranger."""
        sk = KEYS[name] if seq % 3 else _key(99)
        msg = make_group_message(
            GID, self.admin.epoch, sk, seq, bytes(32) if seq == 1 else bytes([seq]) * 32,
            self.clock, MessageKind.TEXT, b"forged",
        )  # fmt: skip
        self.in_flight.append(msg.encoded)

    @rule(junk=st.binary(max_size=200))
    def junk(self, junk: bytes) -> None:
        self.deliver_bytes(junk)

    # -- the network to Bob -----------------------------------------------------------------

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), keep=st.booleans())
    def deliver(self, data: st.DataObject, keep: bool) -> None:
        """Deliver one item in flight (any of them: reorders), maybe keeping it (a duplicate)."""
        index = data.draw(st.integers(0, len(self.in_flight) - 1))
        item = self.in_flight[index] if keep else self.in_flight.pop(index)
        self.deliver_bytes(item)

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))

    @precondition(lambda self: self.in_flight)
    @rule()
    def deliver_all_in_order(self) -> None:
        while self.in_flight:
            self.deliver_bytes(self.in_flight.pop(0))

    def deliver_bytes(self, data: bytes) -> None:
        before = self.bob
        try:
            is_list = decode_member_list(data) is not None
        except Exception:
            is_list = False
        if is_list:
            outcome = gs.receive_list(self.bob, data)
            if outcome.verdict is Verdict.REFUSED:
                assert outcome.state == before
                return
            assert outcome.state is not None
            self.bob = outcome.state
            for released in outcome.released:
                self.check(released)
            return
        message = gs.receive_message(self.bob, data)
        if message.verdict is not Verdict.ACCEPTED:
            assert message.verdict is Verdict.ACCEPTED or message.state.chains == before.chains
        self.bob = message.state
        self.check(message)

    def check(self, outcome: gs.MessageOutcome) -> None:
        if outcome.verdict is not Verdict.ACCEPTED:
            assert outcome.verdict in (Verdict.REFUSED, Verdict.HELD, Verdict.DUPLICATE)
            assert outcome.verdict is Verdict.REFUSED or outcome.code == ""
            return
        msg = outcome.message
        assert msg is not None
        held = self.bob.epoch
        assert self.bob.joined_epoch <= msg.epoch <= held
        assert msg.sender_key in self.members_at[held], "accepted from a non-member"
        assert msg.sender_key != BOB_KEY
        assert msg.message_id not in self.accepted_ids, "accepted twice"
        self.accepted_ids.add(msg.message_id)
        last = self.last_seq.get(msg.sender_key)
        if last is not None:
            assert msg.seq > last, "seq not increasing"
            assert outcome.missing == msg.seq - last - 1
        self.last_seq[msg.sender_key] = msg.seq

    @invariant()
    def bob_is_consistent(self) -> None:
        if not hasattr(self, "bob"):
            return
        assert len(self.bob.pending) <= gs.MAX_PENDING_PER_GROUP
        assert self.bob.members.keys == self.members_at[self.bob.epoch]
        assert self.bob.status is Status.ACTIVE  # Bob is never removed here


GroupAsBobSeesIt.TestCase.settings = settings(MACHINES)
test_group_as_bob_sees_it = GroupAsBobSeesIt.TestCase
