"""The node as ``p2pchat daemon`` runs it: Node + ControlServer, under the NodeLock.

The TUI hosts the very same node on its own event loop, with the control socket,
so ``p2pchat peers``, ``send``, ``watch``... work beside it. ``events`` is
subscribed before the node starts (event_feed.py). The lock is taken
before the profile is unlocked (``launch.py``), or right after a first-run
profile is created: a second TUI or daemon for the profile gets NodeLock's error.
"""

from __future__ import annotations

from pathlib import Path

from p2pchat.control.server import ControlServer
from p2pchat.control.socket_path import control_socket_path
from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig
from p2pchat.store import Profile
from p2pchat.tui.event_feed import EventFeed


class NodeHost:
    def __init__(self, profile: Profile, config: NodeConfig) -> None:
        self.node = Node(profile, config)
        self.events = EventFeed(self.node.subscribe())
        self._control: ControlServer | None = None

    @property
    def data_dir(self) -> Path:
        return self.node.config.data_dir

    async def async_start(self) -> None:
        await self.events.async_start()
        try:
            await self.node.async_start()
        except (OSError, ValueError) as exc:  # as daemon.py: a port, an interface
            await self.events.async_stop()
            await self.node.async_stop()
            raise UserError(f"cannot start the node: {exc}") from None
        self._control = ControlServer(self.node, control_socket_path(self.data_dir))
        try:
            await self._control.async_start()
        except OSError as exc:
            self._control = None
            await self.events.async_stop()
            await self.node.async_stop()
            raise UserError(f"cannot open the control socket: {exc}") from None

    async def async_stop(self) -> None:
        if self._control is not None:
            await self._control.async_stop()
            self._control = None
        await self.events.async_stop()
        await self.node.async_stop()
