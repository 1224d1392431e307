"""KeyWarnings: one open warning per contact, a flood folds into its count."""

from __future__ import annotations

from p2pchat.node.key_warnings import KeyWarnings

BOB, CAROL = b"b" * 32, b"c" * 32


def key(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_the_first_attempt_is_reported_at_once_the_rest_fold_into_a_count() -> None:
    warnings = KeyWarnings(update_interval_ms=5000)
    first = warnings.note(BOB, key(1), "10.0.0.9", "advert", now_ms=1000)
    assert first is not None
    assert (first.count, first.offending_key, first.address) == (1, key(1), "10.0.0.9")
    for i in range(2, 301):  # 299 more within the interval: nothing to report yet
        assert warnings.note(BOB, key(i), "10.0.0.7", "contact_request", now_ms=1000 + i) is None
    assert warnings.due(now_ms=5999) == []
    assert warnings.next_due_ms() == 6000
    (update,) = warnings.due(now_ms=6000)
    assert (update.count, update.offending_key, update.source) == (300, key(300), "contact_request")
    assert warnings.due(now_ms=20_000) == []  # nothing new since
    assert warnings.next_due_ms() is None


def test_an_attempt_after_the_interval_is_reported_at_once() -> None:
    warnings = KeyWarnings(update_interval_ms=5000)
    assert warnings.note(BOB, key(1), "", "advert", now_ms=0) is not None
    later = warnings.note(BOB, key(2), "", "advert", now_ms=5000)
    assert later is not None
    assert later.count == 2


def test_contacts_are_warned_about_separately_and_the_set_is_bounded() -> None:
    warnings = KeyWarnings(update_interval_ms=5000, max_contacts=3)
    assert warnings.note(BOB, key(1), "", "advert", now_ms=0) is not None
    assert warnings.note(CAROL, key(2), "", "advert", now_ms=0) is not None
    for i in range(1000):  # many contacts' worth: at most 3 kept
        warnings.note(key(1000 + i), key(i), "", "advert", now_ms=1)
    assert len(warnings._open) == 3
    # BOB was forgotten (least recently active): a new attempt opens a new warning.
    again = warnings.note(BOB, key(9), "", "advert", now_ms=2)
    assert again is not None
    assert again.count == 1
