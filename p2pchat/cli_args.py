"""argparse types with bounds, and a parser whose errors are one line.

Every number a user types has a range, checked when the command line is read, so a
bad one is a one-line usage error before any passphrase is asked or socket opened
(``--port 99999`` used to bind another port, ``--port -1`` a resolver error).
Only argparse is imported here: ``p2pchat --help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

MAX_PORT = 65535
# `history --limit`: SQLite integers are 64-bit; no one reads a billion messages.
MAX_LIMIT = 1_000_000_000


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser that reports a usage error in one line, not usage + error.

    A long command's usage alone wraps over several lines; the line says what is
    wrong and where the help is. Sub-parsers made by ``add_subparsers`` are of the
    same class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def bounded_int(low: int, high: int, *, what: str = "") -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, inclusive."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            noun = f"{what} " if what else ""
            raise argparse.ArgumentTypeError(
                f"must be a {noun}from {low} to {high}, not {_short(text)}"
            )
        return value

    parse.__name__ = what or "number"  # argparse names the type in some messages
    return parse


port_number = bounded_int(0, MAX_PORT, what="port number")
positive_int = bounded_int(1, MAX_LIMIT)


def invite_uses(text: str) -> int:
    from p2pchat.node.invites import MAX_USES  # only `invite` pays for the import

    return bounded_int(1, MAX_USES, what="number of guests")(text)


def link_duration(text: str) -> int:
    """``90s``, ``15m``, ``2h``, ``1d`` (or plain seconds) → seconds, within the bounds."""
    from p2pchat.node.invites import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"
