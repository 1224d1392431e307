"""Telling the user about a message they are not looking at.

The terminal bell, the app title and the terminal window title (``(3) p2pchat``),
and a desktop notification when ``notify-send`` exists. The desktop one names
the sender only, never the text: notification daemons log and show on lock
screens. Never blocks: ``notify-send`` runs as a child the event loop reaps.
The ``notifications`` setting (``n`` in the TUI) turns all of it off; the
unread counts in the sidebar stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections import deque
from collections.abc import Callable

from textual.app import App

from p2pchat.tui.text_format import one_line

NOTIFY_SEND_TIMEOUT_S = 10.0


class Notifier:
    def __init__(self, app: App[object], base_title: str, *, enabled: Callable[[], bool]) -> None:
        self._app = app
        self._base_title = base_title
        self._enabled = enabled
        self._desktop = shutil.which("notify-send")
        self._children: set[asyncio.Task[None]] = set()
        # The last few desktop notifications (title, body), for tests and the curious.
        self.sent: deque[tuple[str, str]] = deque(maxlen=20)

    def unseen_message(self, sender: str, unread_total: int) -> None:
        self.show_unread(unread_total)
        if not self._enabled():
            return
        self._app.bell()
        self._send_desktop(f"p2pchat: {one_line(sender, 40)}", "sent you a message")

    def attention(self, summary: str) -> None:
        """Something else that waits for the user (a contact request, a guest at the door)."""
        if not self._enabled():
            return
        self._app.bell()
        self._send_desktop("p2pchat", one_line(summary, 120))

    def show_unread(self, unread_total: int) -> None:
        title = self._base_title
        if unread_total and self._enabled():
            title = f"({unread_total}) {self._base_title}"
        if self._app.title != title:
            self._app.title = title
            self._set_terminal_title(title)

    def _set_terminal_title(self, title: str) -> None:
        # Textual keeps App.title inside its header; the window title is an OSC 2
        # sequence written through the driver (there is no public API for it).
        driver = getattr(self._app, "_driver", None)
        if driver is not None and not self._app.is_headless:
            driver.write(f"\x1b]2;{one_line(title, 60)}\x07")

    def _send_desktop(self, title: str, body: str) -> None:
        self.sent.append((title, body))
        if self._desktop is None:
            return
        task = asyncio.get_running_loop().create_task(self._async_notify_send(title, body))
        self._children.add(task)
        task.add_done_callback(self._children.discard)

    async def _async_notify_send(self, title: str, body: str) -> None:
        assert self._desktop is not None
        with contextlib.suppress(OSError):
            child = await asyncio.create_subprocess_exec(
                self._desktop, "--app-name=p2pchat", title, body,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await asyncio.wait_for(child.wait(), NOTIFY_SEND_TIMEOUT_S)
            except TimeoutError:
                child.kill()
                await child.wait()
