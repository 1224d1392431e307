"""resolve_peer: one candidate, or a one-line error listing them; never a guess."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node.peer_match import MAX_SHOWN, resolve_peer


@dataclass(frozen=True)
class Peer:
    name: str
    pid: str


ALICE = Peer("Alice", "abcd-efgh-ijkl-mnop")
ALAN = Peer("alan", "abzz-qqqq-rrrr-ssss")
BOB = Peer("bob", "wxyz-2345-6767-abab")
PEERS = [ALICE, ALAN, BOB]


def resolve(query: str, peers: list[Peer] = PEERS) -> Peer:
    return resolve_peer(query, peers, name_of=lambda p: p.name, key_of=lambda p: p.pid)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Alice", ALICE),
        ("alice", ALICE),  # names ignore case
        ("  bob ", BOB),
        ("abcd", ALICE),  # a peer-id prefix
        ("ABCD-EF", ALICE),  # case and dashes ignored
        ("abcdefghijklmnop", ALICE),
        ("wxyz2345", BOB),
    ],
)
def test_resolves(query: str, expected: Peer) -> None:
    assert resolve(query) is expected


def test_ambiguous_lists_the_matches() -> None:
    twins = [Peer("sam", "aaaa-bbbb-cccc-dddd"), Peer("Sam", "eeee-ffff-gggg-hhhh")]
    with pytest.raises(UserError) as caught:
        resolve("sam", twins)
    message = str(caught.value)
    assert '"sam" matches 2 peers' in message
    assert "aaaa-bbbb-cccc-dddd" in message
    assert "eeee-ffff-gggg-hhhh" in message


def test_name_and_id_prefix_of_different_peers_is_ambiguous() -> None:
    # "abcd" is someone's name and another's id prefix: refuse rather than pick one.
    peers = [Peer("abcd", "zzzz-zzzz-zzzz-zzzz"), ALICE]
    with pytest.raises(UserError, match="matches 2 peers"):
        resolve("abcd", peers)


def test_whole_peer_id_wins_over_names() -> None:
    impostor = Peer("abcd-efgh-ijkl-mnop", "qqqq-qqqq-qqqq-qqqq")
    assert resolve("abcd-efgh-ijkl-mnop", [impostor, ALICE]) is ALICE


def test_short_prefixes_do_not_match() -> None:
    with pytest.raises(UserError, match="4\\+ characters"):
        resolve("abc")


def test_unknown_lists_candidates_bounded() -> None:
    many = [Peer(f"p{i}", f"{i:04d}-aaaa-bbbb-cccc") for i in range(25)]
    with pytest.raises(UserError) as caught:
        resolve_peer(
            "nobody", many, name_of=lambda p: p.name, key_of=lambda p: p.pid, kind="contact"
        )
    message = str(caught.value)
    assert message.startswith('no contact matches "nobody"; contacts: p0 (0000-aaaa-bbbb-cccc)')
    assert f"p{MAX_SHOWN - 1} " in message
    assert f"p{MAX_SHOWN} " not in message
    assert "and 15 more" in message


def test_no_candidates_and_empty_query() -> None:
    with pytest.raises(UserError, match="there are no peers yet"):
        resolve("alice", [])
    with pytest.raises(UserError, match="no peer given"):
        resolve("  ")


def test_public_keys_as_keys() -> None:
    keys = [bytes([i]) * 32 for i in range(3)]
    pid = peer_id(keys[1])
    found = resolve_peer(pid[:9], keys, name_of=lambda k: k.hex()[:6], key_of=lambda k: k)
    assert found == keys[1]


def test_error_messages_stay_on_one_line() -> None:
    evil = [Peer("x\n\x1b[2Jy", "aaaa-aaaa-aaaa-aaaa")]
    with pytest.raises(UserError) as caught:
        resolve("zzzz\nzz", evil)
    assert "\n" not in str(caught.value)
    assert "\x1b" not in str(caught.value)


@given(
    st.text(max_size=12),
    st.lists(
        st.builds(Peer, st.text(max_size=8), st.text("abcdefgh234-", min_size=1, max_size=19)),
        max_size=6,
    ),
)
def test_result_is_a_candidate_or_user_error(query: str, peers: list[Peer]) -> None:
    try:
        found = resolve(query, peers)
    except UserError as exc:
        error = str(exc)
    else:
        assert any(found is p for p in peers)
        return
    assert "\n" not in error


def test_past_candidates_yield_to_a_current_one_but_are_never_guessed_between() -> None:
    danas = [Peer("Dana", "guest:aaaa"), Peer("Dana", "guest:bbbb"), Peer("Dana", "guest:cccc")]
    left = {"guest:aaaa", "guest:bbbb"}

    def pick(peers: list[Peer]) -> Peer:
        return resolve_peer(
            "dana", peers, name_of=lambda p: p.name, key_of=lambda p: p.pid,
            kind="guest", past=lambda p: p.pid in left,
        )  # fmt: skip

    assert pick(danas) == danas[2]  # the one here now
    assert pick(danas[:1]) == danas[0]  # a past one alone is still found
    with pytest.raises(UserError, match='"dana" matches 2 guests') as both_past:
        pick(danas[:2])
    assert "guest:aaaa" in str(both_past.value)
    assert "guest:bbbb" in str(both_past.value)
    left.discard("guest:bbbb")  # two here now: an error, never a guess
    with pytest.raises(UserError, match='"dana" matches 2 guests'):
        pick(danas)
