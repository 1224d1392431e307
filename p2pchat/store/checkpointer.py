"""WAL checkpoints on a connection of their own, in a thread of their own.

SQLite's default checkpoints inside the commit that grows the WAL past 1000 pages:
that commit, on the node's event loop, then copies the WAL into the database file
and fsyncs it (2-3 ms here, every ~300 messages: the LAN RTT's p99). The node's
connection turns that off; this thread runs ``wal_checkpoint(PASSIVE)`` from a
second connection instead. PASSIVE never waits for the writer, and the writer never
waits for it (SQLite's WAL lets one checkpointer run beside one writer); the driver
releases the GIL while SQLite works, so the loop keeps running on the other core.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import sqlcipher3

from p2pchat.store.connection import Connection, open_keyed

_log = logging.getLogger(__name__)

# How often the thread looks at the WAL. A PASSIVE checkpoint of a WAL that did not
# change is skipped, so an idle node does one stat() per period.
CHECK_PERIOD_S = 0.2


class BackgroundCheckpointer:
    """Checkpoints ``database``'s WAL every ``CHECK_PERIOD_S`` while it grows."""

    def __init__(self, database: Path, key: bytes) -> None:
        self._wal = Path(f"{database}-wal")
        self._conn: Connection = open_keyed(database, key)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="p2pchat-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after its current checkpoint) and close its connection."""
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        seen: tuple[int, int] | None = None
        while not self._stop.wait(CHECK_PERIOD_S):
            try:
                stat = os.stat(self._wal)
            except FileNotFoundError:
                continue
            now = (stat.st_mtime_ns, stat.st_size)
            if now == seen:
                continue
            seen = now
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlcipher3.Error as error:
                # A full disk or a busy file: the WAL just grows until the next try;
                # nothing is lost (the WAL is the data until it is copied).
                _log.debug("WAL checkpoint failed: %s", error)
