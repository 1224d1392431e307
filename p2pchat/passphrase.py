"""Where the profile passphrase comes from: a file, the environment, or a prompt."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from p2pchat.errors import UserError

PASSPHRASE_ENV = "P2PCHAT_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
MAX_PASSPHRASE_CHARS = 1024


def read_passphrase(passphrase_file: str | None, *, confirm: bool = False) -> str:
    """``--passphrase-file`` first, then ``$P2PCHAT_PASSPHRASE``, then a prompt."""
    if passphrase_file is not None:
        return _checked(_read_file(Path(passphrase_file)), f"file {passphrase_file}")
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return _checked(from_env, f"${PASSPHRASE_ENV}")
    if not sys.stdin.isatty():
        raise UserError(
            "no passphrase: set P2PCHAT_PASSPHRASE, pass --passphrase-file FILE,"
            " or run p2pchat in a terminal"
        )
    first = _prompt("Profile passphrase: ")
    if confirm and _prompt("Same passphrase again: ") != first:
        raise UserError("the two passphrases differ: run the command again")
    return _checked(first, "the prompt")


def _prompt(question: str) -> str:
    try:
        return getpass.getpass(question)
    except EOFError:  # Ctrl-D: as clean as Ctrl-C
        print(file=sys.stderr)  # the prompt line has no newline of its own
        raise UserError(
            "no passphrase entered (Ctrl-D): run the command again and type it,"
            f" or set {PASSPHRASE_ENV} or --passphrase-file FILE"
        ) from None


def _read_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"passphrase file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read passphrase file {path}: {exc}") from None
    # One trailing newline is what editors and `echo` add; it is not part of it.
    return text.removesuffix("\n").removesuffix("\r")


def _checked(passphrase: str, source: str) -> str:
    if not passphrase:
        raise UserError(f"the passphrase from {source} is empty: choose a non-empty one")
    if len(passphrase) > MAX_PASSPHRASE_CHARS:
        raise UserError(f"the passphrase from {source} is over {MAX_PASSPHRASE_CHARS} characters")
    return passphrase
