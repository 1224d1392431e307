"""Errors a user can act on. Front ends print ``str(error)`` as one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""

    exit_code = 1


class UsageError(UserError):
    """The command line itself is wrong."""

    exit_code = 2
