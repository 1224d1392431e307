"""Project-wide test policy.

* In CI (``CI`` set to true/1/yes), a skip is a failure: every skipped test (or
  collection skip, e.g. ``pytest.importorskip``) is reported as FAILED with its skip
  reason. ``xfail`` is left alone: it is an expected failure, not a skip.
* Outside CI, skips stay skips; ``-ra`` (scripts/test.sh passes it) prints the reasons.
* Tests marked ``lan`` need root, ``ip`` and ``nft``; tests marked ``browser`` need
  Debian's chromium. Without them they skip (outside CI) with the reason, via the
  ``require_*`` helpers below, which tests may also call directly.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Test helpers are imported as `tests.lan.netns`, `tests.browser.chromium`: make the
# repo root importable however pytest was started (the editable install maps only the
# packages, and tests/ has no __init__.py).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CHROMIUM = "/usr/bin/chromium"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def require_root() -> None:
    """Skip (a failure in CI) unless running as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces); run as root, e.g. in CI")


def require_command(name: str) -> None:
    """Skip (a failure in CI) unless ``name`` is on PATH."""
    if shutil.which(name) is None:
        pytest.skip(f"needs `{name}`; install it with: bash scripts/install.sh --with-system")


def require_netns() -> None:
    """Everything tests/lan/netns.py needs: root, ``ip`` (iproute2), ``nft``."""
    require_root()
    require_command("ip")
    require_command("nft")


def require_chromium() -> None:
    """Skip (a failure in CI) unless Debian's chromium is installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs {CHROMIUM}; install it with: bash scripts/install.sh --with-system")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("lan") is not None:
        require_netns()
        require_command("ping")
    if item.get_closest_marker("browser") is not None:
        require_chromium()


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, message = longrepr
        return f"{message} ({path}:{lineno})"
    return str(longrepr)


def _fail_skip_in_ci(report: pytest.TestReport) -> None:
    if not in_ci() or not report.skipped or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = f"{CI_SKIP_MESSAGE}: {_skip_reason(report)}"


CI_SKIP_MESSAGE = "skipped in CI, which counts as a failure (CI is set)"
_ci_collection_skips: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_skip_in_ci(report)
    return report


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module skipped at collection (pytest.importorskip, module-level skip): turning
    # the report into an error would interrupt the whole session, so the module stays
    # skipped and the session fails at the end instead.
    if in_ci() and report.skipped:
        _ci_collection_skips.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _ci_collection_skips:
        terminalreporter.section(CI_SKIP_MESSAGE, red=True)
        for line in _ci_collection_skips:
            terminalreporter.line(f"FAILED {line}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _ci_collection_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
