"""Hypothesis profiles for the long fuzz run (issue 6, part 4).

Two profiles, chosen with ``P2PCHAT_FUZZ`` (default ``ci``):

* ``ci``: derandomized (the seed is fixed, derived from each test's name), no example
  database, a few thousand examples per decoder and a few hundred random event
  sequences per state machine; the whole ``tests/fuzz`` run is time-boxed to about a
  minute on a 2-CPU runner (``pytest-timeout`` stops any single test at 300 s).
* ``full``: random seeds, the example database on, many more examples
  (``scripts/fuzz.sh``). ``P2PCHAT_FUZZ_SCALE`` multiplies the example counts.

The profiles are registered here under names of their own and applied by the tests
with ``@settings(parent=...)``, so loading this conftest never changes the Hypothesis
defaults of tests/unit (which run in the same pytest session).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("P2PCHAT_FUZZ", "ci").strip().lower() or "ci"
if PROFILE not in {"ci", "full"}:
    raise pytest.UsageError(f"P2PCHAT_FUZZ must be ci or full, not {PROFILE!r}")
SCALE = float(os.environ.get("P2PCHAT_FUZZ_SCALE", "1"))

_COMMON: dict[str, object] = {
    "deadline": None,  # timing belongs to bench/, not here
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
# (decoder examples, state-machine runs, steps per run)
_SIZES = {"ci": (2000, 500, 80), "full": (50_000, 10_000, 150)}
_decoders, _machines, _steps = _SIZES[PROFILE]

if PROFILE == "ci":
    _COMMON.update(derandomize=True, database=None)

settings.register_profile(
    "p2pchat-fuzz-decoders",
    max_examples=max(1, int(_decoders * SCALE)),
    **_COMMON,  # type: ignore[arg-type]
)
settings.register_profile(
    "p2pchat-fuzz-machines",
    max_examples=max(1, int(_machines * SCALE)),
    stateful_step_count=_steps,
    **_COMMON,  # type: ignore[arg-type]
)


def pytest_report_header() -> str:
    d = settings.get_profile("p2pchat-fuzz-decoders")
    m = settings.get_profile("p2pchat-fuzz-machines")
    return (
        f"p2pchat fuzz profile: {PROFILE} (decoders {d.max_examples} examples, "
        f"machines {m.max_examples} runs x {m.stateful_step_count} steps, "
        f"derandomize={d.derandomize})"
    )
