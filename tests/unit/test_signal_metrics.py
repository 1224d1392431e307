"""signaling/metrics.py: the text format 0.0.4, read back by a strict parser."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.metrics import (
    DIRECTIONS,
    PREFIX,
    REFUSAL_REASONS,
    Counter,
    Metrics,
    escape_label,
    format_value,
)
from tests.metrics_text import parse, unescape, value

FAMILIES = {
    "relayed_messages_total": "counter",
    "relayed_bytes_total": "counter",
    "bus_frames_total": "counter",
    "bus_dropped_total": "counter",
    "refusals_total": "counter",
    "turn_credentials_total": "counter",
    "redis_errors_total": "counter",
    "redis_restores_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "open_fds": "gauge",
}


def test_a_fresh_server_shows_every_family_once_and_every_series_at_zero() -> None:
    samples, families = parse(Metrics().render())
    assert {name: kind for name, (kind, _help) in families.items()} == {
        PREFIX + name: kind for name, kind in FAMILIES.items()
    }
    assert all(help_text for _kind, help_text in families.values())
    for reason in REFUSAL_REASONS:
        assert value(samples, PREFIX + "refusals_total", reason=reason) == 0
    for direction in DIRECTIONS:
        assert value(samples, PREFIX + "relayed_bytes_total", direction=direction) == 0
    assert value(samples, PREFIX + "bus_dropped_total") == 0


def test_counts_and_gauges_read_back() -> None:
    metrics = Metrics()
    metrics.refused("room-full")
    metrics.refused("room-full")
    metrics.relayed("to_owner", 200)
    metrics.relayed("to_guest", 7)
    metrics.relayed("to_guest", 3)
    metrics.bus_frames.inc("in", 4)
    guests = [5]
    metrics.gauge("guest_connections", "Guest sockets here.", lambda: guests[0])
    guests[0] = 6  # read at scrape time
    samples, families = parse(metrics.render())
    assert value(samples, PREFIX + "refusals_total", reason="room-full") == 2
    assert value(samples, PREFIX + "refusals_total", reason="origin") == 0
    assert value(samples, PREFIX + "relayed_messages_total", direction="to_guest") == 2
    assert value(samples, PREFIX + "relayed_bytes_total", direction="to_guest") == 10
    assert value(samples, PREFIX + "relayed_bytes_total", direction="to_owner") == 200
    assert value(samples, PREFIX + "bus_frames_total", direction="in") == 4
    assert value(samples, PREFIX + "guest_connections") == 6
    assert families[PREFIX + "guest_connections"] == ("gauge", "Guest sockets here.")


def test_process_gauges_come_from_proc() -> None:
    samples, _ = parse(Metrics().render())
    rss = value(samples, PREFIX + "process_resident_memory_bytes")
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    # The same process, a moment apart: within a few MiB of each other.
    assert abs(rss - pages * os.sysconf("SC_PAGE_SIZE")) < 64 * 1024 * 1024
    assert value(samples, PREFIX + "open_fds") >= 3


def test_without_proc_the_process_gauges_are_nan_not_an_error(tmp_path: Path) -> None:
    samples, _ = parse(Metrics(proc=tmp_path / "missing").render())
    assert math.isnan(value(samples, PREFIX + "open_fds"))
    assert math.isnan(value(samples, PREFIX + "process_resident_memory_bytes"))


def test_misuse_is_refused() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="no series"):
        metrics.refused("because")  # not a declared reason: cardinality stays bounded
    with pytest.raises(ValueError, match="only goes up"):
        metrics.relayed_bytes.inc("to_owner", -1)
    with pytest.raises(ValueError, match="label values"):
        Counter("x_total", "x", "reason")


@given(st.text(max_size=40))
def test_label_values_escape_and_read_back(text: str) -> None:
    counter = Counter("x_total", "x", "v", [text])
    counter.inc(text, 3)
    lines = ["# HELP p_x_total x", "# TYPE p_x_total counter"]
    lines += [f"p_x_total{labels} {format_value(n)}" for labels, n in counter.samples()]
    samples, _ = parse("\n".join(lines) + "\n")
    assert samples == {("p_x_total", (("v", text),)): 3}
    assert unescape(escape_label(text)) == text
    assert "\n" not in escape_label(text)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (3.0, "3"),
        (0.5, "0.5"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_values_are_spelled_as_the_format_wants(number: float, text: str) -> None:
    assert format_value(number) == text
