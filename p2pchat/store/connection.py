"""Open a keyed SQLCipher connection, and say clearly why when we cannot.

"Wrong passphrase leaves the files untouched": SQLCipher checks the key when it
first reads page 1 (HMAC failure → SQLITE_NOTADB). But a normal connection opens
an existing -wal before that read, and closing it checkpoints and deletes the WAL
even though the key was wrong, rewriting profile.db. So the key is first tried
on an ``immutable=1`` connection, which never looks at -wal/-shm or writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlcipher3

from p2pchat.store.errors import ProfileCorrupt, WrongPassphrase
from p2pchat.store.keys import KEY_BYTES

Connection = Any  # sqlcipher3 has no stubs

_PLAIN_SQLITE_HEADER = b"SQLite format 3\x00"
_PAGE_SIZE = 4096  # SQLCipher 4 default; an encrypted profile is whole pages


def connect(database: Path, key: bytes, *, create: bool = False) -> Connection:
    """A connection to ``database`` unlocked with ``key``, in autocommit mode.

    Raises WrongPassphrase if the key does not decrypt it and ProfileCorrupt if
    the file is not an encrypted profile. ``create`` allows a new, empty file.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes")
    uri = database.absolute().as_uri()
    if create:
        return _open_keyed(f"{uri}?mode=rwc", key, database)
    _check_looks_encrypted(database)
    # Probe the key first on an immutable view of the file: no locks, no -wal or
    # -shm, no writes. A normal connection that finds a -wal (the node is running,
    # or crashed) opens it at once and checkpoints it on close, key or no key.
    try:
        _open_keyed(f"{uri}?immutable=1", key, database).close()
    except ProfileCorrupt:
        # The file alone may be mid-checkpoint (the node copies the WAL into it after
        # a pause, and a full disk can stop that half-way): only the WAL makes it
        # whole. A read-only connection reads through the WAL and can never
        # checkpoint (SQLite refuses to from a read-only handle), so it is as safe
        # a probe; without a WAL the file really is damaged.
        if not Path(f"{database}-wal").exists():
            raise
        _open_keyed(f"{uri}?mode=ro", key, database).close()
    return _open_keyed(f"{uri}?mode=rw", key, database)  # rw: never create a file


def open_keyed(database: Path, key: bytes) -> Connection:
    """A second connection to a database whose key is already known to be right."""
    conn = _open_keyed(f"{database.absolute().as_uri()}?mode=rw", key, database)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def configure(conn: Connection) -> None:
    """Per-connection settings, applied once the key is known to be right."""
    # WAL: readers (e.g. `p2pchat history` while the node runs) do not block the
    # writer. SQLCipher encrypts WAL frames like pages, so no plaintext WAL.
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode survives application crashes (kill -9) and never
    # corrupts; a power cut may lose the last commits. FULL would fsync each
    # message, which blocks the node's event loop for milliseconds per message.
    conn.execute("PRAGMA synchronous = NORMAL")
    # Temp tables (no-history outbox) and sort spills stay in RAM, never a file.
    conn.execute("PRAGMA temp_store = MEMORY")
    # Overwrite deleted rows (e.g. outbox bodies) instead of leaving free pages.
    conn.execute("PRAGMA secure_delete = ON")
    # Pinned rather than left to the driver build (2 MiB stdlib, 8 MiB SQLCipher):
    # 8 MiB keeps the FTS index of ~100k messages warm.
    conn.execute("PRAGMA cache_size = -8000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")


def _open_keyed(uri: str, key: bytes, database: Path) -> Connection:
    conn = sqlcipher3.connect(
        uri,
        uri=True,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # the owner serialises calls; see Profile
    )
    try:
        # SQLCipher logs a wrong key ("hmac check failed…") to stderr at its
        # default WARN level. The level is process-wide; we raise exceptions.
        conn.execute("PRAGMA cipher_log_level = NONE")
        # Hex digits only: nothing from the user is interpolated here.
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        # Pin the on-disk format so a future SQLCipher's new defaults cannot
        # make existing profiles unreadable.
        conn.execute("PRAGMA cipher_compatibility = 4")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as error:
        conn.close()
        if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise WrongPassphrase(database) from None
        raise ProfileCorrupt(database, str(error)) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _check_looks_encrypted(database: Path) -> None:
    try:
        with database.open("rb") as file:
            header = file.read(len(_PLAIN_SQLITE_HEADER))
        size = database.stat().st_size
    except OSError as error:
        raise ProfileCorrupt(database, error.strerror or str(error)) from None
    if header == _PLAIN_SQLITE_HEADER:
        raise ProfileCorrupt(database, "it is a plain, unencrypted SQLite database")
    if size == 0 or size % _PAGE_SIZE:
        raise ProfileCorrupt(database, f"its size ({size} bytes) is not whole database pages")
