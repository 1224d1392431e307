"""``p2pchat`` with no command: the terminal UI (first run creates the profile there)."""

from __future__ import annotations

import argparse


def run_default(args: argparse.Namespace) -> int:
    from p2pchat.tui.launch import run_tui

    return run_tui(args)
