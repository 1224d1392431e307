"""The running node, as a package: a small core (``core.py``) and modules around it.

``from p2pchat.node import Node, NodeConfig`` works as it always did, but the core
(aiortc, PyNaCl, the store) loads only when one of those names is first used: the
front ends import ``p2pchat.node.events`` (and the CLI ``peer_match``, ``invites``)
without paying for the node. See docs/architecture.md for the modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2pchat.node.config import NodeConfig
    from p2pchat.node.core import MAX_SUBSCRIBER_BACKLOG, Node
    from p2pchat.node.core_protocol import ConversationRef

__all__ = ["MAX_SUBSCRIBER_BACKLOG", "ConversationRef", "Node", "NodeConfig"]

_WHERE = {
    "MAX_SUBSCRIBER_BACKLOG": "p2pchat.node.core",
    "Node": "p2pchat.node.core",
    "NodeConfig": "p2pchat.node.config",
    "ConversationRef": "p2pchat.node.core_protocol",
}


def __getattr__(name: str) -> Any:  # PEP 562: the public names, loaded on first use
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
