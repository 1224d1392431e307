"""``p2pchat`` with no command: create the profile on first run, then start."""

from __future__ import annotations

import argparse

from p2pchat.commands.profile import run_id, run_init
from p2pchat.store import profile_exists
from p2pchat.store.paths import resolve_data_dir


def run_default(args: argparse.Namespace) -> int:
    if not profile_exists(resolve_data_dir(args.data_dir)):
        print("Welcome to p2pchat. First, your profile:")
        code = run_init(argparse.Namespace(**vars(args), name=None, no_history=False))
        if code:
            return code
    return run_id(argparse.Namespace(**vars(args), json=False))
