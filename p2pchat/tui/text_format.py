"""Text from the network, made safe and short for the terminal.

Names and messages come from other people: they go into ``rich.text.Text``
objects (never markup, so ``[bold]`` stays literal) and through ``terminal_safe``
(no escape sequences, bidi overrides or stray newlines).
"""

from __future__ import annotations

from datetime import datetime

from p2pchat.commands.history_cmd import terminal_safe

__all__ = ["clock_time", "day_and_time", "one_line", "terminal_safe"]


def one_line(text: str, limit: int = 80) -> str:
    """A single safe line, cut with an ellipsis past ``limit`` characters."""
    flat = terminal_safe(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def clock_time(timestamp_ms: int) -> str:
    """``14:05`` in local time."""
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000).strftime("%H:%M")
    except (OverflowError, OSError, ValueError):
        return "--:--"


def day_and_time(timestamp_ms: int) -> str:
    """``2026-11-23 14:05`` in local time."""
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "????-??-?? --:--"
