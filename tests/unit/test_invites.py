from __future__ import annotations

import random
import re

import pytest

from p2pchat.crypto.link import LinkSecret
from p2pchat.node.invites import Admission, Invite, parse_duration


def make(uses: int = 1, approve: bool = False) -> Invite:
    return Invite(LinkSecret.generate(), None, 0.0, 100.0, uses, approve)


def test_one_use_admits_one_guest_who_may_come_back() -> None:
    invite = make()
    assert invite.admission("g1", 1.0) is Admission.ADMIT
    invite.admit("g1")
    assert invite.admission("g1", 2.0) is Admission.READMIT
    assert invite.admission("g2", 2.0) is Admission.REFUSE_USED_UP
    assert not invite.is_open_to_new_guests(2.0)
    assert invite.accepts_connections(2.0)


def test_expiry_and_revocation() -> None:
    invite = make(uses=3)
    assert invite.admission("g", 100.0) is Admission.REFUSE_EXPIRED
    invite.revoked = True
    assert invite.admission("g", 1.0) is Admission.REFUSE_REVOKED
    assert not invite.accepts_connections(1.0)


def test_approve_asks_the_owner() -> None:
    assert make(approve=True).admission("g", 1.0) is Admission.ASK_OWNER


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("90s", 90), ("2h", 7200), ("1d", 86400), ("30", 30)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "-5m", "1.5h", "0", "99d", "5 weeks"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|lasts"):
        parse_duration(text)


def test_a_use_is_reserved_by_the_answer_and_consumed_by_the_open_session() -> None:
    invite = make()
    invite.reserve("g1")
    assert invite.uses_left == 0
    assert invite.admission("g2", 1.0) is Admission.REFUSE_USED_UP
    invite.release("g1")  # the answer never led to a session (e.g. a relay swallowed it)
    assert invite.uses_left == 1
    invite.reserve("g2")
    invite.admit("g2")
    assert invite.uses_left == 0
    assert invite.admitted == {"g2"}


def test_invite_ids_never_look_like_options() -> None:
    # One base64url id in 64 started with "-", which argparse takes for an option.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ids = [make_with(LinkSecret(rng.randbytes(32))).invite_id for _ in range(4096)]
    odd = [i for i in ids if not re.fullmatch(r"[a-z2-7]{8}", i)]
    assert not odd, f"seed {seed}: {odd[:5]}"


def make_with(secret: LinkSecret) -> Invite:
    return Invite(secret, None, 0.0, 100.0, 1, False)
