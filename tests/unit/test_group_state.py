"""The group state machine: joining, list changes, the per-sender chains, held messages."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from p2pchat.protocol import group_state as gs
from p2pchat.protocol.group_members import Member, MemberKind, make_member_list
from p2pchat.protocol.group_messages import (
    ZERO_HASH,
    MessageKind,
    decode_group_message,
    make_group_message,
)
from p2pchat.protocol.group_state import GroupState, Status, Verdict
from p2pchat.protocol.group_wire import MAX_LAN_MEMBERS, LocalGroupError

GID = bytes(range(16))
T = 1_767_225_600_000


def key(n: int) -> SigningKey:
    return SigningKey(bytes((n + i) % 256 for i in range(32)))


ALICE, BOB, CAROL, DAVE = key(1), key(2), key(3), key(4)  # Alice is the admin


def pk(sk: SigningKey) -> bytes:
    return bytes(sk.verify_key)


def lan(sk: SigningKey, name: str) -> Member:
    return Member(MemberKind.LAN, pk(sk), name)


def group() -> tuple[GroupState, GroupState, GroupState]:
    """Alice's group with Bob and Carol; each one's state after joining."""
    created = gs.create(
        ALICE, "Alice", "Team", [lan(BOB, "Bob"), lan(CAROL, "Carol")], group_id=GID
    )
    states = [created.state]
    for sk in (BOB, CAROL):
        joined = gs.join(created.encoded, pk(sk), pk(ALICE))
        assert joined.verdict is Verdict.ADOPTED
        assert joined.state is not None
        states.append(joined.state)
    return states[0], states[1], states[2]


def send(state: GroupState, sk: SigningKey, n: int) -> tuple[GroupState, list[bytes]]:
    out = []
    for i in range(n):
        sent = gs.next_message(state, sk, f"m{i}", T + i)
        state = sent.state
        out.append(sent.encoded)
    return state, out


def test_join_only_from_the_admin_and_only_if_listed() -> None:
    created = gs.create(ALICE, "Alice", "Team", [lan(BOB, "Bob")], group_id=GID)
    ok = gs.join(created.encoded, pk(BOB), pk(ALICE))
    assert ok.state is not None
    assert ok.state.joined_epoch == 1
    assert not ok.state.is_admin
    assert [m.name for m in ok.added] == ["Alice"]
    assert gs.join(created.encoded, pk(BOB), pk(CAROL)).code == "group-join-not-admin"
    assert gs.join(created.encoded, pk(CAROL), pk(ALICE)).code == "group-join-not-listed"
    assert gs.join(created.encoded[:-1], pk(BOB), pk(ALICE)).code == "group-truncated"


def test_chain_accepts_in_order_and_reports_gaps() -> None:
    alice, bob, _ = group()
    bob, sent = send(bob, BOB, 6)
    outcomes = []
    for data in (sent[0], sent[1], sent[4], sent[5]):  # 2 and 3 lost on the way
        outcome = gs.receive_message(alice, data)
        alice = outcome.state
        outcomes.append(outcome)
    assert [o.verdict for o in outcomes] == [Verdict.ACCEPTED] * 4
    assert [o.missing for o in outcomes] == [0, 0, 2, 0]
    assert outcomes[2].message is not None
    assert outcomes[2].message.text == "m4"
    assert alice.chains[pk(BOB)].last_seq == 6


def test_first_message_seen_starts_the_chain_whatever_its_seq() -> None:
    alice, bob, _ = group()
    bob, sent = send(bob, BOB, 3)
    outcome = gs.receive_message(alice, sent[2])
    assert outcome.verdict is Verdict.ACCEPTED
    assert outcome.missing == 0


@pytest.mark.parametrize("which", ["replay", "reorder"])
def test_replayed_and_reordered_messages_are_refused(which: str) -> None:
    alice, bob, _ = group()
    bob, sent = send(bob, BOB, 2)
    order = [sent[0], sent[0]] if which == "replay" else [sent[1], sent[0]]
    alice = gs.receive_message(alice, order[0]).state
    outcome = gs.receive_message(alice, order[1])
    assert (outcome.verdict, outcome.code) == (Verdict.REFUSED, "group-replay")
    assert outcome.state == alice


def test_broken_chain_is_refused() -> None:
    alice, bob, _ = group()
    bob, sent = send(bob, BOB, 1)
    alice = gs.receive_message(alice, sent[0]).state
    fork = make_group_message(GID, 1, BOB, 2, b"\1" * 32, T, MessageKind.TEXT, b"fork").encoded
    assert gs.receive_message(alice, fork).code == "group-broken-chain"


def test_forged_and_altered_messages_are_refused() -> None:
    alice, bob, _ = group()
    bob, sent = send(bob, BOB, 1)
    altered = bytearray(sent[0])
    altered[-65] ^= 1  # the last byte of the text
    assert gs.receive_message(alice, bytes(altered)).code == "group-bad-signature"
    forged = sent[0][:-64] + CAROL.sign(b"p2pchat/group-message/v1\0" + sent[0][:-64]).signature
    assert gs.receive_message(alice, forged).code == "group-bad-signature"


def test_non_member_and_self_and_other_group() -> None:
    alice, _, _ = group()
    outsider = make_group_message(GID, 1, DAVE, 1, ZERO_HASH, T, MessageKind.TEXT, b"x").encoded
    assert gs.receive_message(alice, outsider).code == "group-not-member"
    mine = gs.next_message(alice, ALICE, "me", T).encoded
    assert gs.receive_message(alice, mine).code == "group-from-self"
    other = make_group_message(bytes(16), 1, BOB, 1, ZERO_HASH, T, MessageKind.TEXT, b"x")
    assert gs.receive_message(alice, other.encoded).code == gs.UNKNOWN_GROUP


def test_removed_member_is_refused_once_the_removal_is_held() -> None:
    alice, bob, carol = group()
    bob, sent = send(bob, BOB, 2)
    carol = gs.receive_message(carol, sent[0]).state
    removal = gs.remove_member(alice, ALICE, pk(BOB))
    adopted = gs.receive_list(carol, removal.encoded)
    assert adopted.verdict is Verdict.ADOPTED
    assert [m.name for m in adopted.removed] == ["Bob"]
    assert adopted.state is not None
    assert gs.receive_message(adopted.state, sent[1]).code == "group-not-member"
    # Bob holds the removal too: he is out and cannot send.
    bob_out = gs.receive_list(bob, removal.encoded).state
    assert bob_out is not None
    assert bob_out.status is Status.REMOVED
    with pytest.raises(LocalGroupError) as info:
        gs.next_message(bob_out, BOB, "still here?", T)
    assert info.value.code == "group-inactive"


def test_list_adoption_rules() -> None:
    alice, bob, _ = group()
    v2 = gs.add_member(alice, ALICE, lan(DAVE, "Dave"))
    v3 = gs.remove_member(v2.state, ALICE, pk(CAROL))
    assert gs.receive_list(bob, v2.encoded).added[0].name == "Dave"
    bob3 = gs.receive_list(gs.receive_list(bob, v2.encoded).state or bob, v3.encoded).state
    assert bob3 is not None
    assert bob3.epoch == 3
    assert gs.receive_list(bob3, v3.encoded).verdict is Verdict.DUPLICATE
    assert gs.receive_list(bob3, v2.encoded).code == "group-stale-list"
    # Same group, same epoch, a different list: the admin signed two (a fork).
    other3 = gs.add_member(v2.state, ALICE, lan(key(9), "Eve"))
    assert gs.receive_list(bob3, other3.encoded).code == "group-fork"
    # A list for this group signed by a member, not the admin.
    by_bob = make_member_list(GID, 9, "Team", [lan(BOB, "Bob"), lan(ALICE, "A")], BOB)
    assert gs.receive_list(bob3, by_bob.encoded).code == "group-wrong-admin"
    assert gs.receive_list(bob3, v3.encoded[:-3]).code == "group-truncated"
    elsewhere = make_member_list(bytes(16), 9, "Other", [lan(ALICE, "A"), lan(BOB, "B")], ALICE)
    assert gs.receive_list(bob3, elsewhere.encoded).code == gs.UNKNOWN_GROUP


def test_newer_epoch_is_held_then_released_in_order() -> None:
    alice, bob, carol = group()
    v2 = gs.add_member(alice, ALICE, lan(DAVE, "Dave"))
    bob = gs.receive_list(bob, v2.encoded).state or bob
    dave = gs.join(v2.encoded, pk(DAVE), pk(ALICE)).state
    assert dave is not None
    bob, from_bob = send(bob, BOB, 2)
    dave, from_dave = send(dave, DAVE, 1)
    for data in (from_bob[0], from_dave[0], from_bob[1]):
        outcome = gs.receive_message(carol, data)
        assert outcome.verdict is Verdict.HELD
        carol = outcome.state
    assert gs.receive_message(carol, from_bob[0]).verdict is Verdict.DUPLICATE
    assert len(carol.pending) == 3
    adopted = gs.receive_list(carol, v2.encoded)
    assert adopted.state is not None
    assert adopted.state.pending == ()
    released = [(o.verdict, o.message.sender_key if o.message else b"") for o in adopted.released]
    assert released == [
        (Verdict.ACCEPTED, pk(BOB)),
        (Verdict.ACCEPTED, pk(DAVE)),
        (Verdict.ACCEPTED, pk(BOB)),
    ]


def test_held_messages_are_bounded() -> None:
    alice, bob, carol = group()
    v2 = gs.add_member(alice, ALICE, lan(DAVE, "Dave"))
    bob = gs.receive_list(bob, v2.encoded).state or bob
    bob, sent = send(bob, BOB, gs.MAX_PENDING_PER_GROUP + 1)
    for data in sent[:-1]:
        carol = gs.receive_message(carol, data).state
    assert gs.receive_message(carol, sent[-1]).code == "group-pending-full"


def test_messages_from_before_i_joined_are_refused() -> None:
    alice, bob, _ = group()
    bob, old = send(bob, BOB, 1)  # epoch 1
    v2 = gs.add_member(alice, ALICE, lan(DAVE, "Dave"))
    dave = gs.join(v2.encoded, pk(DAVE), pk(ALICE)).state
    assert dave is not None
    assert gs.receive_message(dave, old[0]).code == "group-before-join"


def test_leave() -> None:
    alice, bob, _ = group()
    with pytest.raises(LocalGroupError, match="remove them first") as info:
        gs.leave(alice, ALICE, T)
    assert info.value.code == "group-admin-leave"
    sent = gs.leave(bob, BOB, T)
    assert sent.state.status is Status.LEFT
    msg = decode_group_message(sent.encoded)
    assert (msg.kind, msg.body, msg.seq) == (MessageKind.LEAVE, b"", 1)
    outcome = gs.receive_message(alice, sent.encoded)
    assert outcome.verdict is Verdict.ACCEPTED
    assert outcome.message is not None
    assert outcome.message.kind is MessageKind.LEAVE
    with pytest.raises(LocalGroupError):
        gs.next_message(sent.state, BOB, "after leaving", T)
    # Alone, the admin may leave (nobody to tell).
    lonely = gs.create(ALICE, "Alice", "Solo").state
    assert gs.leave(lonely, ALICE, T).state.status is Status.LEFT


def test_admin_changes_and_their_bounds() -> None:
    alice, bob, _ = group()
    with pytest.raises(LocalGroupError) as info:
        gs.add_member(bob, BOB, lan(DAVE, "Dave"))
    assert info.value.code == "group-not-admin"
    with pytest.raises(LocalGroupError) as info:
        gs.remove_member(alice, ALICE, pk(ALICE))
    assert info.value.code == "group-admin-leave"
    with pytest.raises(LocalGroupError) as info:
        gs.remove_member(alice, ALICE, pk(DAVE))
    assert info.value.code == "group-not-member"
    with pytest.raises(LocalGroupError) as info:
        gs.add_member(alice, ALICE, lan(BOB, "Bob again"))
    assert info.value.code == "group-duplicate-key"
    state = alice
    for i in range(MAX_LAN_MEMBERS - 3):
        state = gs.add_member(state, ALICE, lan(key(20 + i), f"m{i}")).state
    assert len(state.members.lan_members) == MAX_LAN_MEMBERS
    with pytest.raises(LocalGroupError, match="at most 32") as info:
        gs.add_member(state, ALICE, lan(key(99), "one too many"))
    assert info.value.code == "group-too-many-members"
    with pytest.raises(LocalGroupError) as info:
        gs.create(ALICE, "Alice", "\x1b[31mred")
    assert info.value.code == "group-bad-name"
    for text, code in [("\udcff", "group-bad-body"), ("x" * 65_343, "group-too-large")]:
        with pytest.raises(LocalGroupError) as info:
            gs.next_message(alice, ALICE, text, T)
        assert info.value.code == code


def test_removing_a_host_removes_its_guests_and_restore_round_trips() -> None:
    alice, _, _ = group()
    guest = Member(MemberKind.GUEST, pk(DAVE), "Guest", pk(BOB))
    alice = gs.add_member(alice, ALICE, guest).state
    assert alice.members.member(pk(DAVE)) == guest
    alice = gs.remove_member(alice, ALICE, pk(BOB)).state
    assert alice.members.member(pk(DAVE)) is None
    assert alice.epoch == 3
    alice = gs.next_message(alice, ALICE, "hello", T).state
    back = gs.restore(
        alice.members.encoded,
        alice.joined_epoch,
        alice.my_key,
        alice.own,
        alice.chains,
        alice.status,
    )
    assert back == alice


def test_readded_after_removal_becomes_active_again() -> None:
    alice, bob, _ = group()
    removal = gs.remove_member(alice, ALICE, pk(BOB))
    bob = gs.receive_list(bob, removal.encoded).state or bob
    assert bob.status is Status.REMOVED
    back = gs.add_member(removal.state, ALICE, lan(BOB, "Bob"))
    bob = gs.receive_list(bob, back.encoded).state or bob
    assert (bob.status, bob.joined_epoch) == (Status.ACTIVE, 3)


def test_a_member_removed_and_added_again_cannot_replay_its_old_messages() -> None:
    # Found by tests/fuzz/test_group_machine.py: dropping a removed member's chain let
    # its old messages be accepted a second time once it was added back.
    alice, bob, carol = group()
    carol, sent = send(carol, CAROL, 2)
    for data in sent:
        bob = gs.receive_message(bob, data).state
    removal = gs.remove_member(alice, ALICE, pk(CAROL))
    back = gs.add_member(removal.state, ALICE, lan(CAROL, "Carol"))
    for change in (removal, back):
        bob = gs.receive_list(bob, change.encoded).state or bob
        carol = gs.receive_list(carol, change.encoded).state or carol
    assert carol.status is Status.ACTIVE
    assert gs.receive_message(bob, sent[0]).code == "group-replay"
    carol, more = send(carol, CAROL, 1)  # her chain goes on where it was
    outcome = gs.receive_message(bob, more[0])
    assert outcome.verdict is Verdict.ACCEPTED
    assert outcome.missing == 0


def test_restore_keeps_the_chains_of_members_no_longer_listed() -> None:
    # What a node restores at start: every chain it stored for the group, a removed
    # member's too, so that member's old messages stay refused once it is added back.
    alice, bob, carol = group()
    carol, sent = send(carol, CAROL, 2)
    for data in sent:
        bob = gs.receive_message(bob, data).state
    removal = gs.remove_member(alice, ALICE, pk(CAROL))
    bob = gs.receive_list(bob, removal.encoded).state or bob
    assert pk(CAROL) not in bob.members.keys
    restarted = gs.restore(
        bob.members.encoded, bob.joined_epoch, pk(BOB), bob.own, dict(bob.chains), bob.status
    )
    assert restarted.chains[pk(CAROL)] == bob.chains[pk(CAROL)]
    back = gs.add_member(removal.state, ALICE, lan(CAROL, "Carol"))
    restarted = gs.receive_list(restarted, back.encoded).state or restarted
    assert [gs.receive_message(restarted, data).code for data in sent] == ["group-replay"] * 2
