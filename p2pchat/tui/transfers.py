"""File transfers as the TUI shows them: the state of each, and its line's text.

The node's views (``async_files``) give every transfer's state when the screen
comes up; its events (offered, progress, done, failed, cancelled) move them on.
A transfer is also a history row (kind "file"), so it has a place among the
messages; this module says what that line reads: ↑/↓, the name, the size, then
a progress bar, rate and time left while it moves, or its state when not.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from rich.text import Text

from p2pchat.control.api import FileView
from p2pchat.node.events import FileCancelled, FileDone, FileFailed, FileOffered, FileProgress
from p2pchat.tui.text_format import one_line

FileEvent = FileOffered | FileProgress | FileDone | FileFailed | FileCancelled

#: Transfers kept in memory (the node keeps them all; the oldest are finished ones).
MAX_TRANSFERS = 2000
NAME_WIDTH = 40
BAR_CELLS = 12

#: Where bytes move (a bar); finished (never again changed by progress).
MOVING = frozenset({"accepted", "sending", "receiving"})
FINISHED = frozenset({"done", "failed", "cancelled", "declined"})


@dataclass(frozen=True)
class Transfer:
    transfer_id: str  # hex
    direction: str  # "in" | "out"
    name: str
    size: int
    # FileView's states, and the node's passing ones: "hashing", "verifying".
    state: str
    bytes_done: int = 0
    rate: int = 0  # bytes/s; 0: unknown
    eta_s: int | None = None
    path: str | None = None  # in, done: where the file is; out: the source
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class Transfers:
    """Every transfer this screen knows of, by id (bounded)."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, Transfer] = OrderedDict()

    def get(self, transfer_id: str) -> Transfer | None:
        return self._by_id.get(transfer_id)

    def as_dict(self) -> dict[str, Transfer]:
        return dict(self._by_id)

    def set_view(self, view: FileView) -> Transfer:
        return self._put(
            Transfer(view.transfer_id, view.direction, view.name, view.size, view.state,
                     view.bytes_done, path=view.path, error=view.error)
        )  # fmt: skip

    def apply(self, event: FileEvent) -> Transfer:
        old = self._by_id.get(event.transfer_id)
        size = getattr(event, "size", old.size if old else 0)
        direction = "in" if isinstance(event, FileOffered) else event.direction
        base = old or Transfer(event.transfer_id, direction, event.name, size, "queued")
        if old is not None and old.finished and isinstance(event, FileProgress | FileCancelled):
            return old  # late: the node's view (after a cancel) has said how it ended
        if isinstance(event, FileOffered):
            new = replace(base, state="offered", size=event.size)
        elif isinstance(event, FileProgress):
            new = replace(base, state=event.state, size=event.size, bytes_done=event.bytes_done,
                          rate=event.rate, eta_s=event.eta_s)  # fmt: skip
        elif isinstance(event, FileDone):
            new = replace(base, state="done", size=event.size, bytes_done=event.size,
                          path=event.path, rate=0, eta_s=None)  # fmt: skip
        elif isinstance(event, FileFailed):
            new = replace(base, state="failed", error=event.reason)
        else:
            # Before it started, a cancel is a decline: mine of an offer, theirs of mine.
            declined = base.state == ("offered" if event.by == "me" else "queued")
            state = "declined" if declined else "cancelled"
            by = "you" if event.by == "me" else "them"
            reason = f": {event.reason}" if event.reason else ""
            new = replace(base, state=state, error=f"{state} by {by}{reason}")
        return self._put(new)

    def _put(self, transfer: Transfer) -> Transfer:
        self._by_id[transfer.transfer_id] = transfer
        self._by_id.move_to_end(transfer.transfer_id)
        while len(self._by_id) > MAX_TRANSFERS:
            self._by_id.popitem(last=False)
        return transfer


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def duration_text(seconds: int) -> str:
    minutes, secs = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def percent(done: int, size: int) -> int:
    return 100 if size <= 0 or done >= size else 100 * max(done, 0) // size


def render_transfer(name: str, direction: str, transfer: Transfer | None) -> Text:
    """``↑ report.pdf  2.1 MB  ████░░░░ 45%  1.2 MB/s  0:12 left`` (or the state)."""
    arrow = "↑ " if direction == "out" else "↓ "
    text = Text(arrow, style="bold")
    text.append(one_line(name, NAME_WIDTH), style="bold")
    if transfer is None:  # a history row whose transfer the node no longer lists
        return text
    text.append(f"  {size_text(transfer.size)}  ", style="dim")
    state = transfer.state
    if state in MOVING:
        cent = percent(transfer.bytes_done, transfer.size)
        filled = cent * BAR_CELLS // 100
        text.append("█" * filled, style="cyan")
        text.append("░" * (BAR_CELLS - filled), style="dim")
        text.append(f" {cent}%")
        if transfer.rate > 0:
            text.append(f"  {size_text(transfer.rate)}/s", style="dim")
        if transfer.eta_s is not None:
            text.append(f"  {duration_text(transfer.eta_s)} left", style="dim")
    elif state == "offered":
        text.append("waiting for you: A accepts, X declines", style="bold yellow")
    elif state == "queued":
        text.append("queued: waiting for them to accept", style="yellow")
    elif state == "hashing":
        text.append("preparing (hashing)…", style="dim")
    elif state == "verifying":
        text.append("verifying…", style="dim")
    elif state == "done":
        text.append("done ✓", style="green")
        if direction == "in":
            text.append("  (o: open the folder)", style="dim")
    elif state == "failed":
        text.append(f"failed: {one_line(transfer.error or 'unknown reason', 80)}", style="red")
    elif state in ("cancelled", "declined"):
        error = one_line(transfer.error or "", 60)
        said = error if error.startswith(state) else f"{state} ({error})" if error else state
        text.append(said, style="yellow")
    else:
        text.append(one_line(state, 20), style="dim")
    return text
