"""TUI tests: the LAN fixtures (for the real-node flow) are tests/lan's."""

from __future__ import annotations

from tests.lan.conftest import make_lan

__all__ = ["make_lan"]
