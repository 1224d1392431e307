"""Errors raised by the profile store.

Every error carries a one-line ``user_message`` that a front end can print as is;
``str(error)`` is the same line. Most are the user's situation (wrong passphrase, no
profile yet), not a bug: a CLI prints the line and exits non-zero, with no traceback.
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base class: something about the profile store that a user can read and act on."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class ProfileNotFound(StoreError):
    """There is no profile in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            f"no profile at {data_dir}: run `p2pchat init` to create one"
            " (or pass --data-dir / set P2PCHAT_HOME to use another)"
        )
        self.data_dir = data_dir


class ProfileExists(StoreError):
    """``create_profile`` was asked to create a profile where one already exists."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            f"a profile already exists at {data_dir}: open it, or pick another --data-dir"
        )
        self.data_dir = data_dir


class WrongPassphrase(StoreError):
    """The passphrase does not unlock the profile. The files were not touched."""

    def __init__(self, database: Path) -> None:
        super().__init__(
            f"wrong passphrase for profile at {database}: try again, or use --data-dir"
            " to open another profile"
        )
        self.database = database


class ProfileCorrupt(StoreError):
    """A profile file exists but is not something this program can open."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"cannot open profile file {path}: {problem}")
        self.path = path
        self.problem = problem


class ProfileTooNew(StoreError):
    """The profile was written by a newer p2pchat with a schema we do not know."""

    def __init__(self, database: Path, found: int, supported: int) -> None:
        super().__init__(
            f"profile at {database} has schema version {found}, this p2pchat supports"
            f" up to {supported}: upgrade p2pchat"
        )
        self.database = database


class InvalidSearchQuery(StoreError):
    """A full-text search query could not be understood."""

    def __init__(self, query: str, reason: str) -> None:
        super().__init__(f"cannot search for {query!r}: {reason}")
        self.query = query


class OutboxFull(StoreError):
    """Too many messages are already waiting for an offline contact."""

    def __init__(self, conversation_id: str, limit: int) -> None:
        super().__init__(
            f"{limit} messages are already waiting for {conversation_id}:"
            " wait until the contact is back online"
        )
        self.conversation_id = conversation_id


class TooManyGroups(StoreError):
    """The profile already holds the most groups it may (MAX_GROUPS)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this profile already holds {limit} groups, the most it can:"
            " delete a group you left or were removed from first"
        )
        self.limit = limit


class StaleGroupList(StoreError):
    """A member list that is not newer than the one held (epochs only grow)."""

    def __init__(self, name: str, held: int, offered: int) -> None:
        super().__init__(
            f"group {name!r}: the member list offered (epoch {offered}) is not newer"
            f" than the one held (epoch {held})"
        )
        self.held = held
        self.offered = offered


class DiskFull(StoreError):
    """The disk holding the profile is full: the write was not made (all or nothing)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            f"disk is full: nothing was written to the profile at {data_dir};"
            " free some space and try again"
        )
        self.data_dir = data_dir


class DataDirUnusable(StoreError):
    """The data directory cannot be trusted (another user may write into it) or made."""


class TooManyTransfers(StoreError):
    """Too many transfers with one peer are not finished yet (MAX_UNFINISHED_PER_PEER)."""

    def __init__(self, peer: str, limit: int) -> None:
        super().__init__(
            f"{limit} file transfers with {peer} are not finished yet:"
            " wait for some to end, or cancel some (`p2pchat files cancel ID`)"
        )
        self.peer = peer
        self.limit = limit
