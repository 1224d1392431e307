"""The per-invite password gate: one pending attempt, five failures, no counting twice."""

from __future__ import annotations

import random

from p2pchat.node.password_gate import MAX_PASSWORD_FAILURES, PasswordGate


def test_one_pending_attempt_at_a_time() -> None:
    gate = PasswordGate()
    assert gate.begin(0.0)
    assert not gate.begin(1.0)
    gate.confirmed()
    assert gate.begin(2.0)
    assert gate.failures == 0


def test_failures_count_down_then_exhaust() -> None:
    gate = PasswordGate()
    for left in range(MAX_PASSWORD_FAILURES - 1, -1, -1):
        assert gate.begin(0.0)
        assert gate.failed() == left
    assert gate.exhausted
    assert not gate.begin(0.0)


def test_failed_without_a_pending_attempt_counts_nothing() -> None:
    gate = PasswordGate()
    assert gate.failed() == MAX_PASSWORD_FAILURES
    assert gate.begin(0.0)
    gate.abandon()
    assert gate.failed() == MAX_PASSWORD_FAILURES
    assert gate.begin(0.0)
    gate.confirmed()
    assert gate.failed() == MAX_PASSWORD_FAILURES


def test_random_sequences_keep_the_bounds() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    gate, failures, pending = PasswordGate(), 0, False
    for step in range(500):
        action = rng.choice(["begin", "confirmed", "failed", "abandon"])
        if action == "begin":
            assert gate.begin(float(step)) == (not pending and failures < MAX_PASSWORD_FAILURES), (
                seed
            )
            pending = pending or failures < MAX_PASSWORD_FAILURES
        elif action == "failed":
            failures += pending
            pending = False
            assert gate.failed() == MAX_PASSWORD_FAILURES - failures, seed
        else:
            getattr(gate, action)()
            pending = False
        assert gate.failures == failures <= MAX_PASSWORD_FAILURES, seed
