"""Pipelined sends stored in one commit (issue 11): each send keeps its own outcome,
and the order they came in, on a real profile, no network (every send is queued)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from p2pchat.control.api import SentView
from p2pchat.crypto.identity import peer_id
from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig
from p2pchat.store import (
    MAX_OUTBOX_PER_CONVERSATION,
    KdfLimits,
    Profile,
    contact_conversation_id,
    create_profile,
)
from p2pchat.store.records import Contact, TrustState

FAST = KdfLimits(opslimit=1, memlimit=8192)
CAROL, DAVE = b"\xcc" * 32, b"\xdd" * 32


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    profile: Profile = create_profile(
        tmp_path / "bob", "pw", name="bob", identity_seed=bytes(32), kdf_limits=FAST
    )
    with profile:
        for key, name in ((CAROL, "carol"), (DAVE, "dave")):
            profile.upsert_contact(Contact(key, name, TrustState.ACCEPTED, False, 0))
        yield Node(profile, NodeConfig(data_dir=tmp_path / "bob"))


async def test_sends_stored_together_keep_their_own_outcomes_and_order(node: Node) -> None:
    dave = contact_conversation_id(DAVE)
    for i in range(MAX_OUTBOX_PER_CONVERSATION):  # dave's outbox is full
        node.profile.enqueue_outbox(i.to_bytes(16, "big"), dave, "old", created_ms=i)
    results = await node.async_send_many(
        [
            ("carol", "one"),
            ("nobody", "lost"),
            ("dave", "no room"),
            (peer_id(CAROL), "two"),
            ("carol", ""),
            ("carol", "three"),
        ]
    )
    outcomes = [r.status if isinstance(r, SentView) else "error" for r in results]
    assert outcomes == ["queued", "error", "error", "queued", "error", "queued"]
    assert "waiting" in str(results[2])  # the full outbox says so, for that send only
    assert isinstance(results[4], UserError)
    carol = contact_conversation_id(CAROL)
    stored = [m.body for m in node.profile.messages(carol)]
    assert stored == ["one", "two", "three"]
    assert [e.body for e in node.profile.pending_outbox(carol)] == stored
    assert [m.body for m in node.profile.messages(dave)] == []
    assert [h.message.body for h in node.profile.search("two")] == ["two"]
