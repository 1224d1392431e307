"""What the modules around the core get from it: ``NodeCore``, and ``ConversationRef``.

core.py imports the modules (contacts, sending, guests; groups next) and hands each
the ``Node``; they see it only as this Protocol, so none imports core.py back
(tests/unit/test_node_imports.py keeps the package free of import cycles).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from p2pchat.crypto.identity import Identity
from p2pchat.node.config import NodeConfig
from p2pchat.node.delivery_marks import DeliveryMarks
from p2pchat.node.events import NodeEvent
from p2pchat.node.links import PeerLink
from p2pchat.protocol.events import Event
from p2pchat.store import Profile


@dataclass(frozen=True)
class ConversationRef:
    """Who a session is with, as stored and as shown."""

    conversation_id: str
    peer_label: str  # a contact's peer id, or "guest:<id>"
    name: str


class NodeCore(Protocol):
    """The core as a module sees it: the profile, the links, events out, tasks."""

    profile: Profile
    config: NodeConfig
    identity: Identity
    name: str
    links: dict[bytes, PeerLink]  # a contact's session, by its key (guests keep theirs)
    marks: DeliveryMarks

    @property
    def stopping(self) -> bool: ...

    def emit(self, event: NodeEvent) -> None:
        """Pass ``event`` to every subscriber (``watch``, the TUI)."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task the node cancels when it stops."""

    def on_session_event(self, link: PeerLink, event: Event, ref: ConversationRef) -> None:
        """What any session (a contact's or a guest's) tells us: stored and passed on."""

    def flush_outbox_soon(self, link: PeerLink, conversation: str) -> None:
        """Send what ``conversation``'s outbox holds that ``link`` has not sent yet."""
