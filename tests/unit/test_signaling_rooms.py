"""The pure room registry: ids, live/not live, expiry, bounds."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.rooms import (
    Room,
    RoomLimitError,
    RoomRegistry,
    RoomState,
    is_valid_room_id,
)

NOW = 1_700_000_000.0


def room_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


@given(st.binary(min_size=16, max_size=16))
def test_every_16_byte_room_id_is_valid(raw: bytes) -> None:
    assert is_valid_room_id(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "A" * 21,
        "A" * 23,
        "A" * 21 + "B",  # non-canonical last character (low bits set)
        "A" * 21 + "=",
        "A" * 20 + "+A",  # plain base64, not base64url
        "A" * 20 + "/A",
        "A" * 21 + "A\n",
        "../" + "A" * 19,
        "A" * 21 + "\u00c5",
    ],
)
def test_malformed_room_ids_are_refused(bad: str) -> None:
    assert not is_valid_room_id(bad)
    with pytest.raises(ValueError, match="room id"):
        RoomRegistry().open_room(bad, expires_at=NOW + 60, now=NOW)


def test_open_room_is_live_until_expiry() -> None:
    registry = RoomRegistry()
    rid = room_id()
    room = registry.open_room(rid, expires_at=NOW + 60, now=NOW)
    assert room == Room(rid, NOW + 60, RoomState.LIVE)
    assert registry.is_live(rid, NOW)
    assert registry.is_live(rid, NOW + 59.999)
    assert not registry.is_live(rid, NOW + 60)
    assert not registry.is_live(room_id(), NOW)


def test_close_and_revoke_end_liveness_but_keep_a_tombstone() -> None:
    registry = RoomRegistry()
    used, revoked = room_id(), room_id()
    registry.open_room(used, expires_at=NOW + 60, now=NOW)
    registry.open_room(revoked, expires_at=NOW + 60, now=NOW)
    assert registry.close(used)
    assert registry.revoke(revoked)
    assert not registry.is_live(used, NOW)
    assert not registry.is_live(revoked, NOW)
    assert registry.get(used) == Room(used, NOW + 60, RoomState.USED_UP)
    assert registry.get(revoked) == Room(revoked, NOW + 60, RoomState.REVOKED)
    assert not registry.close(room_id())
    assert not registry.revoke(room_id())
    assert registry.live_rooms(NOW) == []


def test_reopen_sets_a_new_expiry_and_state() -> None:
    registry = RoomRegistry()
    rid = room_id()
    registry.open_room(rid, expires_at=NOW + 1, now=NOW)
    registry.revoke(rid)
    registry.open_room(rid, expires_at=NOW + 100, now=NOW)
    assert registry.is_live(rid, NOW + 50)
    assert len(registry) == 1


def test_purge_drops_expired_rooms_only() -> None:
    registry = RoomRegistry()
    old, new = room_id(), room_id()
    registry.open_room(old, expires_at=NOW + 10, now=NOW)
    registry.open_room(new, expires_at=NOW + 100, now=NOW)
    registry.revoke(new)
    assert registry.purge(NOW + 10) == 1
    assert old not in registry
    assert new in registry
    assert registry.purge(NOW + 100) == 1
    assert len(registry) == 0


def test_registry_is_bounded_by_live_rooms() -> None:
    registry = RoomRegistry(max_rooms=3)
    ids = [room_id() for _ in range(3)]
    for rid in ids:
        registry.open_room(rid, expires_at=NOW + 60, now=NOW)
    with pytest.raises(RoomLimitError, match="too many open invites"):
        registry.open_room(room_id(), expires_at=NOW + 60, now=NOW)
    assert len(registry) == 3
    # Re-opening a room it holds needs no more room.
    registry.open_room(ids[0], expires_at=NOW + 120, now=NOW)


def test_full_registry_purges_expired_then_drops_tombstones() -> None:
    registry = RoomRegistry(max_rooms=3)
    short, used, live = room_id(), room_id(), room_id()
    registry.open_room(short, expires_at=NOW + 5, now=NOW)
    registry.open_room(used, expires_at=NOW + 60, now=NOW)
    registry.open_room(live, expires_at=NOW + 60, now=NOW)
    registry.close(used)
    first = room_id()
    registry.open_room(first, expires_at=NOW + 60, now=NOW + 10)  # purges `short`
    assert short not in registry
    assert used in registry
    second = room_id()
    registry.open_room(second, expires_at=NOW + 60, now=NOW + 10)  # drops the tombstone
    assert used not in registry
    assert {r.room_id for r in registry.live_rooms(NOW + 10)} == {live, first, second}
    with pytest.raises(RoomLimitError):
        registry.open_room(room_id(), expires_at=NOW + 60, now=NOW + 10)


def test_discard_forgets_a_room() -> None:
    registry = RoomRegistry()
    rid = room_id()
    registry.open_room(rid, expires_at=NOW + 60, now=NOW)
    assert registry.discard(rid)
    assert not registry.discard(rid)
    assert registry.get(rid) is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_times_must_be_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        RoomRegistry().open_room(room_id(), expires_at=bad, now=NOW)


def test_max_rooms_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rooms"):
        RoomRegistry(max_rooms=0)
