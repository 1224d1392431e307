"""``p2pchat`` with no command: the terminal UI, hosting the node.

The lock comes first (before any passphrase is asked), so a second instance
for the same profile stops at once with the same message as ``p2pchat daemon``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from p2pchat.errors import UserError
from p2pchat.node_lock import NodeLock
from p2pchat.passphrase import PASSPHRASE_ENV, read_passphrase
from p2pchat.store.paths import ProfilePaths, resolve_data_dir

NO_TERMINAL = (
    "p2pchat with no command opens the terminal UI, which needs a terminal:"
    " run `p2pchat daemon` for a node without one"
)


def run_tui(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    interfaces = getattr(args, "tui_interfaces", None)
    if interfaces:  # a typo is news before the screen is taken over
        from p2pchat.discovery.interfaces import check_interface_names

        check_interface_names(interfaces)
    lock = NodeLock(data_dir)
    exists = ProfilePaths(data_dir).database.exists()  # store.profile_exists, without SQLCipher
    if exists:
        lock.acquire()  # first: "already running" is the news, whatever else is wrong
    try:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UserError(NO_TERMINAL)
        passphrase = None
        if exists and (args.passphrase_file is not None or PASSPHRASE_ENV in os.environ):
            passphrase = read_passphrase(args.passphrase_file)
        from textual.logging import TextualHandler

        from p2pchat.tui.app import ChatApp  # Textual and the node load only now

        # Log records must not scribble over the screen: they go to Textual's devtools.
        logging.basicConfig(level=logging.WARNING, handlers=[TextualHandler()], force=True)
        app = ChatApp(
            data_dir, lock, lock_held=exists, passphrase=passphrase,
            interfaces=interfaces, port=getattr(args, "tui_port", 0),
        )  # fmt: skip
        app.run()
        if app.error is not None:
            raise app.error
        return app.return_code or 0
    finally:
        lock.release()
