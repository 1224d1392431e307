"""ChatApp: the first-run or unlock screen, then the node and the main screen.

The app owns what ``p2pchat daemon`` owns (NodeHost: node + control socket,
under the NodeLock) and stops it when it exits. A failure to start (the lock
is held, a port is taken, a wrong ``P2PCHAT_PASSPHRASE``) ends the app with
``error`` set; ``launch.py`` hands it to the CLI, which prints the usual line.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.screen import Screen

from p2pchat.errors import UserError
from p2pchat.node_lock import NodeLock
from p2pchat.store.errors import StoreError
from p2pchat.store.paths import ProfilePaths
from p2pchat.tui.profile_opened import ProfileOpened
from p2pchat.tui.unlock_screen import UnlockScreen, open_profile_in_thread

if TYPE_CHECKING:
    from p2pchat.store import KdfLimits, Profile
    from p2pchat.tui.main_screen import MainScreen
    from p2pchat.tui.node_host import NodeHost

# Only a file's existence decides the first screen. The store (SQLCipher, PyNaCl:
# ~30 ms) and the node (aiortc, aiohttp, zeroconf: ~0.45 s of imports) are imported
# in a thread while the user types the passphrase, the store first.
_BEHIND_FIRST_SCREEN = (
    "p2pchat.store.profile",
    "p2pchat.crypto.identity",
    "p2pchat.tui.node_host",
    "p2pchat.tui.main_screen",
)


class ChatApp(App[None]):
    TITLE = "p2pchat"

    def __init__(
        self,
        data_dir: Path,
        lock: NodeLock,
        *,
        lock_held: bool,
        passphrase: str | None = None,
        interfaces: Sequence[str] | None = None,
        port: int = 0,
        kdf_limits: KdfLimits | None = None,  # None: the store's default
    ) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.error: UserError | StoreError | None = None
        self.host: NodeHost | None = None
        self.profile: Profile | None = None
        self._lock = lock
        self._lock_held = lock_held
        self._passphrase = passphrase
        self._interfaces = interfaces
        self._port = port
        self._kdf_limits = kdf_limits
        self._unlock_at_mount = False

    @property
    def main_screen(self) -> MainScreen | None:
        from p2pchat.tui.main_screen import MainScreen

        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def get_default_screen(self) -> Screen[Any]:
        # The first screen is the default one, not pushed over it: a screen less to
        # style and draw before the first paint (~5 ms). Only a file's existence decides.
        if not ProfilePaths(self.data_dir).database.exists():  # as store.profile_exists
            from p2pchat.tui.create_profile_screen import CreateProfileScreen

            return CreateProfileScreen(self.data_dir, kdf_limits=self._kdf_limits)
        if self._passphrase is None:
            return UnlockScreen(self.data_dir, kdf_limits=self._kdf_limits)
        self._unlock_at_mount = True  # P2PCHAT_PASSPHRASE: no screen to ask for it
        return super().get_default_screen()

    def on_mount(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit)
        if self._unlock_at_mount and self._passphrase is not None:
            self._unlock_with(self._passphrase)
        self.call_after_refresh(self._load_the_node)

    @work(exclusive=True, group="load", thread=True)
    def _load_the_node(self) -> None:
        for module in _BEHIND_FIRST_SCREEN:
            importlib.import_module(module)

    async def on_unmount(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        if self.host is not None:
            await self.host.async_stop()
            self.host = None
        if self.profile is not None:
            self.profile.close()
            self.profile = None

    @work(exclusive=True, group="start")
    async def _unlock_with(self, passphrase: str) -> None:
        try:
            profile = await asyncio.to_thread(
                open_profile_in_thread, self.data_dir, passphrase, self._kdf_limits
            )
        except StoreError as exc:
            self.fail(exc)
            return
        self._unlocked(profile)

    def on_profile_opened(self, message: ProfileOpened) -> None:
        message.stop()
        self._unlocked(message.profile)

    def _unlocked(self, profile: Profile) -> None:
        self.profile = profile
        self._start_node(profile)

    @work(exclusive=True, group="start")
    async def _start_node(self, profile: Profile) -> None:
        from p2pchat.node import NodeConfig
        from p2pchat.tui.history import ProfileHistory
        from p2pchat.tui.main_screen import MainScreen
        from p2pchat.tui.node_host import NodeHost

        try:
            if not self._lock_held:  # first run: the directory exists only now
                self._lock.acquire()
                self._lock_held = True
            config = NodeConfig(
                data_dir=self.data_dir, interfaces=self._interfaces, port=self._port
            )
            host = NodeHost(profile, config)
            await host.async_start()
        except UserError as exc:
            self.fail(exc)
            return
        self.host = host
        status = await host.node.async_status()
        # Over the create / unlock screen, which stays below (the default screen cannot go).
        main = MainScreen(
            host.node, ProfileHistory(profile), status, data_dir=self.data_dir,
            events=host.events.events(),
        )  # fmt: skip
        await self.push_screen(main)

    def fail(self, error: UserError | StoreError) -> None:
        self.error = error
        self.exit(return_code=1)
