"""Which path a guest's session is on, as the node tells it (``GuestJoined.path``,
``GuestPath``), and the repair that lets aioice follow a pair the browser nominates
after ICE completed (tests/browser/test_wan_guest.py proves both through real NATs)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from aioice import Candidate, Connection
from aioice.ice import CandidatePair

from p2pchat.node.guests import joined_path
from p2pchat.node.links import GuestLink
from p2pchat.transport.webrtc import DataChannelLink


def _link(path: str | None, selected: str | None = None, direct: bool = True) -> GuestLink:
    channel = SimpleNamespace(selected_path=selected) if direct else None
    return cast(GuestLink, SimpleNamespace(path=path, direct=channel))


def test_joined_path_tells_turn_apart_from_direct() -> None:
    assert joined_path(_link("direct", "direct")) == "direct"
    assert joined_path(_link("direct", "turn")) == "turn"
    assert joined_path(_link("direct", None)) == "direct"  # no pair seen: still WebRTC
    assert joined_path(_link("direct", direct=False)) == "direct"
    assert joined_path(_link("relay", direct=False)) == "relay"
    assert joined_path(_link(None, direct=False)) == ""


def _pair(connection: Connection, port: int, state: CandidatePair.State) -> CandidatePair:
    remote = Candidate(
        foundation=f"f{port}", component=1, transport="udp", priority=1,
        host="192.0.2.1", port=port, type="srflx",
    )  # fmt: skip
    protocol = SimpleNamespace(local_candidate=SimpleNamespace(component=1, foundation="l"))
    pair = CandidatePair(cast(Any, protocol), remote)
    pair.state = state
    connection._check_list.append(pair)
    return pair


async def test_a_pair_nominated_after_ice_completed_is_checked_again() -> None:
    connection = Connection(ice_controlling=False)
    started: list[CandidatePair] = []
    connection.check_start_task = started.append  # type: ignore[method-assign]
    cancelled = asyncio.get_running_loop().create_future()
    cancelled.cancel()  # what aioice's connect() leaves on a check still running
    late = _pair(connection, 1001, CandidatePair.State.IN_PROGRESS)
    late.remote_nominated = True
    late.task = cast(Any, cancelled)
    not_nominated = _pair(connection, 1002, CandidatePair.State.IN_PROGRESS)
    not_nominated.task = cast(Any, cancelled)
    running = _pair(connection, 1003, CandidatePair.State.IN_PROGRESS)
    running.remote_nominated = True
    running.task = cast(Any, asyncio.get_running_loop().create_future())  # still checking
    done = _pair(connection, 1004, CandidatePair.State.SUCCEEDED)
    done.remote_nominated = True

    link = DataChannelLink.__new__(DataChannelLink)
    transport = SimpleNamespace(transport=SimpleNamespace(_connection=connection))
    link._pc = cast(Any, SimpleNamespace(sctp=SimpleNamespace(transport=transport)))
    link.take_late_nomination()

    assert started == [late]
    assert late.state is CandidatePair.State.WAITING
    assert late.task is None
    assert not_nominated.state is running.state is CandidatePair.State.IN_PROGRESS
    assert done.state is CandidatePair.State.SUCCEEDED


def test_no_connection_yet_is_no_error() -> None:
    link = DataChannelLink.__new__(DataChannelLink)
    link._pc = cast(Any, SimpleNamespace(sctp=None))
    link.take_late_nomination()
