"""A real p2pchat daemon that plays one from before groups: its sessions do not
announce ``groups=1`` (``Session(groups=False)``), so peers send it no group frame.

Started by tests/lan/test_group_delivery.py as
``python -c "from tests.lan.old_p2pchat import main; main()" --data-dir … daemon …``.
"""

from __future__ import annotations

import sys
from typing import Any

import p2pchat.node.contacts as contacts
from p2pchat.protocol.session import Session


def main() -> None:
    def before_groups(*args: Any, **kwargs: Any) -> Session:
        kwargs["groups"] = False
        return Session(*args, **kwargs)

    contacts.Session = before_groups  # type: ignore[misc,assignment]
    from p2pchat.cli import main as cli_main

    raise SystemExit(cli_main(sys.argv[1:]))


def main_before_files() -> None:
    """One from after groups but before files: no ``files=1``, so no file frames."""

    def before_files(*args: Any, **kwargs: Any) -> Session:
        kwargs["files"] = False
        return Session(*args, **kwargs)

    contacts.Session = before_files  # type: ignore[misc,assignment]
    from p2pchat.cli import main as cli_main

    raise SystemExit(cli_main(sys.argv[1:]))
