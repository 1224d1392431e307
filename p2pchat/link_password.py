"""Where ``invite --password`` gets the link password: two prompts, or a file.

The password goes to the node over the control socket and stays in its memory
with the invite: never logged, never stored.
"""

from __future__ import annotations

import getpass
import sys
import unicodedata
from pathlib import Path

from p2pchat.crypto.cpace import MAX_PASSWORD_BYTES, normalize_password
from p2pchat.errors import UserError

MIN_PASSWORD_CHARS = 4
MAX_PASSWORD_FILE_BYTES = 4096


def read_link_password(password_file: str | None) -> str:
    """``--password-file FILE`` (its first line), else ask twice at the terminal."""
    if password_file is not None:
        return checked_link_password(_first_line(Path(password_file)), f"file {password_file}")
    if not sys.stdin.isatty():
        raise UserError("--password asks at a terminal: use --password-file FILE instead")
    first = _prompt("Link password (the guest types it): ")
    if _prompt("Same password again: ") != first:
        raise UserError("the two passwords differ: run the command again")
    return checked_link_password(first, "the prompt")


def checked_link_password(text: str, source: str) -> str:
    """At least 4 characters and at most 128 bytes once normalised (NFKC, stripped)."""
    try:
        data = normalize_password(text)
    except ValueError:
        data = b""
    if len(unicodedata.normalize("NFKC", text).strip().encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise UserError(
            f"the password from {source} is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )
    if len(data.decode("utf-8")) < MIN_PASSWORD_CHARS:
        raise UserError(
            f"the password from {source} is too short: use {MIN_PASSWORD_CHARS} characters"
            f" or more (at most {MAX_PASSWORD_BYTES} bytes)"
        )
    return text


def _prompt(question: str) -> str:
    try:
        return getpass.getpass(question)
    except EOFError:  # Ctrl-D: as clean as Ctrl-C
        print(file=sys.stderr)
        raise UserError("no password entered (Ctrl-D): run the command again") from None


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_PASSWORD_FILE_BYTES)
        return raw.decode("utf-8").splitlines()[0] if raw.strip() else ""
    except FileNotFoundError:
        raise UserError(f"password file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read password file {path}: {exc}") from None
