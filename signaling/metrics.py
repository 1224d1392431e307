"""The signaling server's metrics, rendered in the Prometheus text format 0.0.4.

Hand-written (contract §0: no ``prometheus_client``): a few counters with one label
each, gauges read when scraped, the process's memory and open descriptors. Every
label value comes from a fixed set declared with its family, so a scrape has a
bounded size whatever clients do, and every series shows from the first scrape (at 0),
which is what ``rate()`` needs. Names: prefix ``p2pchat_signal_`` (contract §8).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

PREFIX: Final = "p2pchat_signal_"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

DIRECTIONS: Final = ("to_owner", "to_guest")
BUS_DIRECTIONS: Final = ("out", "in")
REFUSAL_REASONS: Final = (
    "link-not-valid", "owner-away", "room-full", "address-limit", "server-busy",
    "rate-limit", "origin", "owner-token", "claimed", "too-slow",
)  # fmt: skip

GaugeReader = Callable[[], float]


class Counter:
    """A monotonic count, with no label or with one label from a fixed set."""

    def __init__(
        self, name: str, help_text: str, label: str = "", values: Iterable[str] = ()
    ) -> None:
        self.name, self.help, self.label = name, help_text, label
        keys = tuple(values) if label else ("",)
        if label and not keys:
            raise ValueError(f"{name}: a labelled counter needs its label values")
        self._counts: dict[str, float] = dict.fromkeys(keys, 0)

    def inc(self, value: str = "", amount: float = 1) -> None:
        """Add ``amount`` (≥ 0) to the series ``value`` (``ValueError`` for a value
        outside the declared set: local misuse)."""
        if value not in self._counts:
            raise ValueError(f"{self.name}: no series {value!r}")
        if amount < 0:
            raise ValueError(f"{self.name}: a counter only goes up")
        self._counts[value] += amount

    def get(self, value: str = "") -> float:
        return self._counts[value]

    def follow(self, read: GaugeReader) -> None:
        """An unlabelled counter kept elsewhere (e.g. the Redis store's error count):
        read at scrape time instead of counted here."""
        self._read: GaugeReader | None = read

    def samples(self) -> list[tuple[str, float]]:
        read = getattr(self, "_read", None)
        if not self.label and read is not None:
            return [("", float(read()))]
        if not self.label:
            return [("", self._counts[""])]
        return [(f'{{{self.label}="{escape_label(v)}"}}', n) for v, n in self._counts.items()]


class Metrics:
    """The counters of one server (contract §8), its gauges, and :meth:`render`.

    The relay counts with :meth:`refused` and :meth:`relayed`; other parts use the
    counters directly (``bus_frames.inc("out")``). Gauges are read at scrape time
    from callables the parts register with :meth:`gauge` (no second bookkeeping of
    what the relay already counts).
    """

    def __init__(self, *, proc: Path = Path("/proc/self")) -> None:
        self._proc = proc
        self.relayed_messages = Counter(
            "relayed_messages_total", "Guest messages relayed, by direction.",
            "direction", DIRECTIONS,
        )  # fmt: skip
        self.relayed_bytes = Counter(
            "relayed_bytes_total", "Bytes of relayed guest messages, by direction.",
            "direction", DIRECTIONS,
        )  # fmt: skip
        self.bus_frames = Counter(
            "bus_frames_total", "Frames on the inter-instance bus, by direction.",
            "direction", BUS_DIRECTIONS,
        )  # fmt: skip
        self.bus_dropped = Counter(
            "bus_dropped_total", "Bus frames for an unknown room or guest, dropped."
        )
        self.refusals = Counter(
            "refusals_total", "Connections or requests refused, by reason.",
            "reason", REFUSAL_REASONS,
        )  # fmt: skip
        self.turn_credentials = Counter("turn_credentials_total", "TURN credentials minted.")
        self.redis_errors = Counter("redis_errors_total", "Failed Redis commands.")
        self.redis_restores = Counter(
            "redis_restores_total", "Times this instance restored its rooms in Redis."
        )
        self._counters = (
            self.relayed_messages, self.relayed_bytes, self.bus_frames, self.bus_dropped,
            self.refusals, self.turn_credentials, self.redis_errors, self.redis_restores,
        )  # fmt: skip
        self._gauges: dict[str, tuple[str, GaugeReader]] = {}

    def refused(self, reason: str) -> None:
        """One refusal (``reason`` from :data:`REFUSAL_REASONS`)."""
        self.refusals.inc(reason)

    def relayed(self, direction: str, size: int) -> None:
        """One relayed message of ``size`` bytes (``direction``: to_owner | to_guest)."""
        self.relayed_messages.inc(direction)
        self.relayed_bytes.inc(direction, size)

    def gauge(self, name: str, help_text: str, read: GaugeReader) -> None:
        """Register (or replace) the gauge ``name``, read by ``read()`` at each scrape."""
        self._gauges[name] = (help_text, read)

    def render(self) -> str:
        """Every family, in the text format 0.0.4 (one HELP/TYPE pair each)."""
        lines: list[str] = []
        for counter in self._counters:
            _family(lines, counter.name, counter.help, "counter", counter.samples())
        gauges = dict(self._gauges)
        gauges.setdefault(
            "process_resident_memory_bytes",
            ("Resident memory of this process, bytes.", self._resident_bytes),
        )
        gauges.setdefault("open_fds", ("Open file descriptors of this process.", self._open_fds))
        for name, (help_text, read) in gauges.items():
            _family(lines, name, help_text, "gauge", [("", float(read()))])
        return "\n".join(lines) + "\n"

    def _resident_bytes(self) -> float:
        try:
            pages = int((self._proc / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return math.nan
        return float(pages * os.sysconf("SC_PAGE_SIZE"))

    def _open_fds(self) -> float:
        try:
            return float(len(os.listdir(self._proc / "fd")))
        except OSError:
            return math.nan


def escape_label(value: str) -> str:
    """A label value as the text format wants it: ``\\``, ``"`` and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text: ``\\`` and newline escaped (quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without ``.0``; ``+Inf``, ``-Inf``, ``NaN`` spelled so."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _family(
    lines: list[str], name: str, help_text: str, kind: str, samples: list[tuple[str, float]]
) -> None:
    full = PREFIX + name
    lines.append(f"# HELP {full} {escape_help(help_text)}")
    lines.append(f"# TYPE {full} {kind}")
    lines.extend(f"{full}{labels} {format_value(value)}" for labels, value in samples)
