"""File transfers in the profile: each transfer's state, for progress and resume.

Reached as ``Profile.files``. A transfer row exists from the offer until it ends,
with history on or off: it is what the node resumes after a restart. With history
on, ``add`` also stores the transfer's history row (a ``messages`` row with the
transfer's id, the file name as body, kind FILE) in the same transaction, so
``history``, export and search find it by name, and the row stays after the
transfer ends. With history off there is no history row, and
``delete_finished_without_history`` drops the row once the transfer has ended.

The file key is secret: it is only ever in this (SQLCipher) database, and
``set_state`` sets it to NULL when the transfer ends.

Each method is one transaction; inside ``Profile.batch()`` they join the caller's
(the node stores a transfer, its history row and its outbox entry in one commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from p2pchat.store.errors import TooManyTransfers
from p2pchat.store.records import (
    FILE_HASH_BYTES,
    FILE_KEY_BYTES,
    MESSAGE_ID_BYTES,
    PUBLIC_KEY_BYTES,
    DeliveryState,
    Direction,
    MessageKind,
    StoredMessage,
    StoredTransfer,
    TransferState,
)

Connection = Any  # sqlcipher3 has no stubs

MAX_UNFINISHED_PER_PEER = 64  # transfers with one peer, both ways, not yet ended
MAX_FILE_BYTES = 2**40  # 1 TiB, the protocol's bound
MIN_BLOCK_BYTES = 64 * 1024
MAX_BLOCK_BYTES = 1024 * 1024
MAX_NAME_BYTES = 255  # the wire's bound (received names are sanitized to 200)
MAX_MIME_BYTES = 255
MAX_ERROR_CHARS = 500  # a one-line reason, not a log
MAX_PATH_BYTES = 4096
_IDS_PER_QUERY = 500  # under SQLite's bound on parameters per statement

_FINISHED_VALUES = tuple(state.value for state in TransferState if state.finished)
_NOT_FINISHED = f"state NOT IN ({', '.join(repr(value) for value in _FINISHED_VALUES)})"
_COLUMNS = (
    "transfer_id, conversation, peer_key, direction, name, size, block_bytes, file_hash,"
    " file_key, mime, state, verified_blocks, source_path, partial_path, final_path, error,"
    " created_ms, updated_ms, source_stamp"
)


class FileStore:
    """The transfers API of one open profile (``Profile.files``)."""

    def __init__(
        self,
        conn: Connection,
        transaction: Callable[[], AbstractContextManager[None]],
        add_message: Callable[[StoredMessage], bool],
        keeps_history: Callable[[], bool],
    ) -> None:
        self._conn = conn
        self._transaction = transaction
        self._add_message = add_message  # Profile.add_message: knows about no-history mode
        self._keeps_history = keeps_history

    def add(
        self,
        transfer: StoredTransfer,
        *,
        sender: str,
        sender_key: bytes | None = None,
        history: bool = True,
    ) -> bool:
        """Store a new transfer and (history on) its history row, in one transaction.

        ``sender`` is the history row's sender label (as for a message), ``sender_key``
        its key (a group member's file). ``history=False``: no row of its own (a
        member's copy of a file I send to a group: the group's one row is stored by
        the caller, in the same batch). Returns
        False, and changes nothing, for a transfer id seen before (a repeated
        offer). Raises TooManyTransfers past MAX_UNFINISHED_PER_PEER unfinished
        transfers with this peer, ValueError for out-of-bound fields.
        """
        _check_transfer(transfer)
        with self._transaction():
            if self.get(transfer.transfer_id) is not None:
                return False
            if self.count_unfinished_for(transfer.peer_key) >= MAX_UNFINISHED_PER_PEER:
                raise TooManyTransfers(self._peer_label(transfer), MAX_UNFINISHED_PER_PEER)
            message = StoredMessage(
                message_id=transfer.transfer_id,
                conversation_id=transfer.conversation,
                direction=transfer.direction,
                sender=sender,
                timestamp_ms=transfer.created_ms,
                body=transfer.name,
                # An offer goes out through the outbox like a text; one that came is delivered.
                delivery=DeliveryState.PENDING
                if transfer.direction is Direction.OUT
                else DeliveryState.DELIVERED,
                kind=MessageKind.FILE,
                sender_key=sender_key,
            )
            if history and not self._add_message(message):  # the id is a message's already
                return False
            self._conn.execute(
                f"INSERT INTO transfers ({_COLUMNS})"  # noqa: S608 - fixed columns
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row_of(transfer),
            )
        return True

    def get(self, transfer_id: bytes) -> StoredTransfer | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM transfers WHERE transfer_id = ?",  # noqa: S608
            (transfer_id,),
        ).fetchone()
        return None if row is None else _transfer_from_row(row)

    def get_many(self, transfer_ids: Iterable[bytes]) -> dict[bytes, StoredTransfer]:
        """The held transfers among ``transfer_ids``, by id (a history view's file rows:
        their size and state)."""
        ids = list(dict.fromkeys(transfer_ids))
        found: dict[bytes, StoredTransfer] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM transfers"  # noqa: S608 - only placeholders
                f" WHERE transfer_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ).fetchall()
            found.update((held.transfer_id, held) for held in map(_transfer_from_row, rows))
        return found

    def update_progress(self, transfer_id: bytes, blocks: int, *, now_ms: int) -> bool:
        """Set ``verified_blocks`` (it may go down: a receiver can resume from an
        earlier block). False if unknown or already ended. ValueError past the
        transfer's block count."""
        with self._transaction():
            held = self.get(transfer_id)
            if held is None or held.state.finished:
                return False
            if not 0 <= blocks <= held.block_count:
                raise ValueError(f"blocks must be 0..{held.block_count}, got {blocks}")
            self._conn.execute(
                "UPDATE transfers SET verified_blocks = ?, updated_ms = ? WHERE transfer_id = ?",
                (blocks, now_ms, transfer_id),
            )
        return True

    def set_file_hash(self, transfer_id: bytes, file_hash: bytes, *, now_ms: int) -> bool:
        """An outgoing transfer's whole-file hash, once ``send-file`` has read the file
        (stored before, with a zero hash and no offer queued). False if unknown or ended."""
        _check_length("file hash", file_hash, FILE_HASH_BYTES)
        cursor = self._conn.execute(
            "UPDATE transfers SET file_hash = ?, updated_ms = ?"  # noqa: S608 - fixed SQL
            f" WHERE transfer_id = ? AND direction = 'out' AND {_NOT_FINISHED}",
            (file_hash, now_ms, transfer_id),
        )
        return bool(cursor.rowcount)

    def set_partial_path(self, transfer_id: bytes, path: Path, *, now_ms: int) -> bool:
        """Where an incoming transfer's partial data lives (set when it is accepted: the
        directory chosen then is where the file lands). False if unknown or ended."""
        _check_path("partial path", path)
        cursor = self._conn.execute(
            "UPDATE transfers SET partial_path = ?, updated_ms = ?"  # noqa: S608 - fixed SQL
            f" WHERE transfer_id = ? AND {_NOT_FINISHED}",
            (str(path), now_ms, transfer_id),
        )
        return bool(cursor.rowcount)

    def set_state(
        self,
        transfer_id: bytes,
        state: TransferState,
        *,
        now_ms: int,
        error: str | None = None,
        final_path: Path | None = None,
    ) -> bool:
        """Move a transfer to ``state``; False if unknown or already ended (an ended
        transfer never changes). Ending it (done/failed/cancelled/declined) wipes its
        key. ``error`` (≤ MAX_ERROR_CHARS, one line) and ``final_path`` are kept
        when given."""
        if error is not None and (len(error) > MAX_ERROR_CHARS or "\n" in error):
            raise ValueError(f"an error must be one line of at most {MAX_ERROR_CHARS} characters")
        if final_path is not None:
            _check_path("final path", final_path)
        cursor = self._conn.execute(
            "UPDATE transfers SET state = ?, updated_ms = ?,"  # noqa: S608 - fixed SQL
            " error = coalesce(?, error), final_path = coalesce(?, final_path),"
            " file_key = CASE WHEN ? THEN NULL ELSE file_key END"
            f" WHERE transfer_id = ? AND {_NOT_FINISHED}",
            (
                state.value,
                now_ms,
                error,
                None if final_path is None else str(final_path),
                state.finished,
                transfer_id,
            ),
        )
        return bool(cursor.rowcount)

    def active_for(self, peer_key: bytes) -> list[StoredTransfer]:
        """The transfers with this peer that have not ended, oldest first (what a
        session with it resumes or re-offers)."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM transfers"  # noqa: S608 - fixed SQL
            f" WHERE peer_key = ? AND {_NOT_FINISHED} ORDER BY created_ms, transfer_id",
            (peer_key,),
        ).fetchall()
        return [_transfer_from_row(row) for row in rows]

    def unfinished(self) -> list[StoredTransfer]:
        """Every transfer that has not ended, oldest first: what the node resumes
        at start. At most MAX_UNFINISHED_PER_PEER per peer."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM transfers"  # noqa: S608 - fixed SQL
            f" WHERE {_NOT_FINISHED} ORDER BY created_ms, transfer_id"
        ).fetchall()
        return [_transfer_from_row(row) for row in rows]

    def all(self, limit: int = 100, offset: int = 0) -> list[StoredTransfer]:
        """Transfers, newest first (the ``files`` listing), a page at a time."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM transfers"  # noqa: S608 - fixed SQL
            " ORDER BY created_ms DESC, transfer_id DESC LIMIT ? OFFSET ?",
            (max(limit, 0), max(offset, 0)),
        ).fetchall()
        return [_transfer_from_row(row) for row in rows]

    def count_unfinished_for(self, peer_key: bytes) -> int:
        (count,) = self._conn.execute(
            f"SELECT count(*) FROM transfers WHERE peer_key = ? AND {_NOT_FINISHED}",  # noqa: S608
            (peer_key,),
        ).fetchone()
        return int(count)

    def delete_finished_without_history(self) -> int:
        """History off: drop the rows of ended transfers (nothing of them is kept);
        how many. With history on: nothing (their rows are history)."""
        if not self._keeps_history():
            cursor = self._conn.execute(
                f"DELETE FROM transfers WHERE NOT ({_NOT_FINISHED})"  # noqa: S608
            )
            return int(cursor.rowcount)
        return 0

    # -- private -------------------------------------------------------------

    def _peer_label(self, transfer: StoredTransfer) -> str:
        row = self._conn.execute(
            "SELECT display_name FROM contacts WHERE public_key = ?", (transfer.peer_key,)
        ).fetchone()
        return transfer.conversation if row is None else str(row[0])


def _check_transfer(transfer: StoredTransfer) -> None:
    _check_length("transfer id", transfer.transfer_id, MESSAGE_ID_BYTES)
    _check_length("peer key", transfer.peer_key, PUBLIC_KEY_BYTES)
    _check_length("file hash", transfer.file_hash, FILE_HASH_BYTES)
    if transfer.file_key is None:
        raise ValueError("a new transfer needs its file key")
    _check_length("file key", transfer.file_key, FILE_KEY_BYTES)
    if transfer.state.finished:
        raise ValueError("a new transfer cannot have ended already")
    if not 0 <= transfer.size <= MAX_FILE_BYTES:
        raise ValueError(f"a file's size must be 0..{MAX_FILE_BYTES} bytes")
    block = transfer.block_bytes
    if not MIN_BLOCK_BYTES <= block <= MAX_BLOCK_BYTES or block & (block - 1):
        raise ValueError("a block must be a power of two from 64 KiB to 1 MiB")
    if not 0 <= transfer.verified_blocks <= transfer.block_count:
        raise ValueError(f"verified blocks must be 0..{transfer.block_count}")
    if not transfer.name or len(transfer.name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"a file name must be 1..{MAX_NAME_BYTES} UTF-8 bytes")
    if len(transfer.mime.encode()) > MAX_MIME_BYTES:
        raise ValueError(f"a MIME type must be at most {MAX_MIME_BYTES} bytes")
    for what, path in (
        ("source path", transfer.source_path),
        ("partial path", transfer.partial_path),
        ("final path", transfer.final_path),
    ):
        if path is not None:
            _check_path(what, path)


def _check_path(what: str, path: Path) -> None:
    text = str(path)
    if "\0" in text or len(text.encode(errors="surrogateescape")) > MAX_PATH_BYTES:
        raise ValueError(f"{what} must be at most {MAX_PATH_BYTES} bytes, without NUL")


def _check_length(what: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise ValueError(f"{what} must be {length} bytes, got {len(value)}")


def _path_text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _row_of(transfer: StoredTransfer) -> tuple[object, ...]:
    return (
        transfer.transfer_id,
        transfer.conversation,
        transfer.peer_key,
        transfer.direction.value,
        transfer.name,
        transfer.size,
        transfer.block_bytes,
        transfer.file_hash,
        transfer.file_key,
        transfer.mime,
        transfer.state.value,
        transfer.verified_blocks,
        _path_text(transfer.source_path),
        _path_text(transfer.partial_path),
        _path_text(transfer.final_path),
        transfer.error,
        transfer.created_ms,
        transfer.updated_ms,
        _stamp_text(transfer.source_stamp),
    )


def _stamp_text(stamp: tuple[int, int, int, int] | None) -> str | None:
    return None if stamp is None else " ".join(str(int(part)) for part in stamp)


def _stamp_of(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    dev, ino, mtime_ns, size = (int(part) for part in text.split())
    return dev, ino, mtime_ns, size


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _transfer_from_row(row: tuple[Any, ...]) -> StoredTransfer:
    return StoredTransfer(
        transfer_id=bytes(row[0]),
        conversation=row[1],
        peer_key=bytes(row[2]),
        direction=Direction(row[3]),
        name=row[4],
        size=row[5],
        block_bytes=row[6],
        file_hash=bytes(row[7]),
        file_key=None if row[8] is None else bytes(row[8]),
        mime=row[9],
        state=TransferState(row[10]),
        verified_blocks=row[11],
        source_path=_optional_path(row[12]),
        partial_path=_optional_path(row[13]),
        final_path=_optional_path(row[14]),
        error=row[15],
        created_ms=row[16],
        updated_ms=row[17],
        source_stamp=_stamp_of(row[18]),
    )
