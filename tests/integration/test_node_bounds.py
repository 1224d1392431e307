"""The node's own bounds (issue 9, findings 2 and 5), on a real profile, no network:
subscriber queues that overflow, and the one replay guard all strangers share."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pchat.crypto.envelope import Direction, LanEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity
from p2pchat.node import MAX_SUBSCRIBER_BACKLOG, Node, NodeConfig
from p2pchat.node.events import EventsDropped, KeyChangeWarning, PeerLost
from p2pchat.protocol.handshake import EnvelopeKind
from p2pchat.store import KdfLimits, Profile, create_profile
from p2pchat.store.records import Contact, TrustState
from p2pchat.transport.lan_signaling import SignalingRefused

FAST = KdfLimits(opslimit=1, memlimit=8192)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    profile: Profile = create_profile(
        tmp_path / "bob", "pw", name="bob", identity_seed=bytes(32), kdf_limits=FAST
    )
    with profile:
        yield Node(profile, NodeConfig(data_dir=tmp_path / "bob"))


def envelope_from(stranger: Identity, to: Node, kind: EnvelopeKind, body: bytes = b"{}") -> bytes:
    envelopes = LanEnvelopes(stranger, to.identity.public_key, ReplayGuard())
    now = int(time.time() * 1000)
    return envelopes.seal(kind, Direction.INITIATOR, os.urandom(16), body, now)


async def test_a_subscriber_that_falls_behind_is_told_and_resynced(node: Node) -> None:
    events = node.subscribe()
    first = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)  # subscribed now, waiting for its first event
    for i in range(MAX_SUBSCRIBER_BACKLOG + 500):  # it does not run meanwhile: it overflows
        node.emit(PeerLost(f"p{i}", "x"))
    got = await asyncio.wait_for(first, 10)
    assert isinstance(got, EventsDropped)
    assert (
        got.missed == MAX_SUBSCRIBER_BACKLOG + 1
    )  # what the queue held, and the one that did not fit
    rest = [await asyncio.wait_for(events.__anext__(), 10) for _ in range(499)]
    assert [e.peer_id for e in rest if isinstance(e, PeerLost)] == [
        f"p{i}" for i in range(MAX_SUBSCRIBER_BACKLOG + 1, MAX_SUBSCRIBER_BACKLOG + 500)
    ]
    await events.aclose()


async def test_strangers_share_one_bounded_replay_guard(node: Node) -> None:
    strangers = [Identity(bytes(SigningKey.generate())) for _ in range(300)]
    for stranger in strangers:  # CONTACT_REJECTs from throwaway keys, as in the finding
        reply = await node._async_handle_envelope(
            envelope_from(stranger, node, EnvelopeKind.CONTACT_REJECT), "10.0.0.9"
        )
        assert reply is None
    assert len(node._stranger_guard) == 300  # all in the one guard (bounded: 65,536)
    assert node._contact_guards == {}


async def test_an_envelope_seen_from_a_stranger_stays_seen_once_it_is_a_contact(
    node: Node,
) -> None:
    carol = Identity(bytes(SigningKey.generate()))
    request = envelope_from(carol, node, EnvelopeKind.CONTACT_REQUEST, b'{"name": "carol"}')
    await node._async_handle_envelope(request, "10.0.0.9")
    node.profile.upsert_contact(
        Contact(carol.public_key, "carol", TrustState.ACCEPTED, verified=False, pinned_at_ms=0)
    )
    with pytest.raises(SignalingRefused, match="replay"):
        await node._async_handle_envelope(request, "10.0.0.9")
    assert carol.public_key in node._contact_guards


async def test_a_key_warning_missed_in_an_overflow_is_shown_again(node: Node) -> None:
    alice = Identity(bytes(SigningKey.generate()))
    node.profile.upsert_contact(
        Contact(alice.public_key, "alice", TrustState.ACCEPTED, verified=False, pinned_at_ms=0)
    )
    events = node.subscribe()
    first = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    impostor = Identity(bytes(SigningKey.generate()))
    node._warn_key_change(node.profile.get_contact(alice.public_key), impostor.public_key,  # type: ignore[arg-type]
                          "10.0.0.66", "advert")  # fmt: skip
    for i in range(MAX_SUBSCRIBER_BACKLOG + 5):  # the warning is lost in the overflow...
        node.emit(PeerLost(f"p{i}", "x"))
    got = [await asyncio.wait_for(first, 10)]
    while len(got) < 2:
        got.append(await asyncio.wait_for(events.__anext__(), 10))
    assert isinstance(got[0], EventsDropped)
    warning = got[1]  # ...and comes again right after the notice (no LAN peers here)
    assert isinstance(warning, KeyChangeWarning)
    assert (warning.name, warning.address, warning.count) == ("alice", "10.0.0.66", 1)
    await events.aclose()
