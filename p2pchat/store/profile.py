"""The encrypted profile: identity, settings, contacts, messages, outbox, search.

One SQLCipher database per profile (see paths.py for the files), unlocked with a
key derived from the passphrase (keys.py). Callers pass ``now`` values
(``timestamp_ms``, ``created_ms``…) in; the store never reads the clock.

No-history mode (``keep_history=False``) — message bodies never reach the disk:

- ``add_message`` writes nothing to the file. It remembers only the message id,
  in an in-memory TEMP table, so de-duplication still works for this session
  (a repeat returns False). ``messages``, ``search`` and ``conversations`` show
  what was stored while history was on, and nothing from this mode.
- The outbox lives in an in-memory TEMP table (``temp_store=MEMORY``): messages
  queued for an offline contact are LOST when the profile is closed (the node
  stops). Turning history off moves queued entries from the file into memory
  (deleted from the file with ``secure_delete``); turning it on moves them back.
- Contacts, identity and settings are still stored: they are not conversation.
  So are groups and their chains (``Profile.groups``, groups.py); a group's fan-out
  copies wait in the in-memory outbox like any other entry.

Threading: a Profile is one connection. Any thread may use it, one at a time
(the node owns it and serialises calls).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlcipher3

from p2pchat.store.checkpointer import BackgroundCheckpointer
from p2pchat.store.connection import configure, connect
from p2pchat.store.conversation_id import GUEST_PREFIX, contact_key_of
from p2pchat.store.data_dir import check_writable, make_data_dir
from p2pchat.store.errors import (
    DataDirUnusable,
    DiskFull,
    InvalidSearchQuery,
    OutboxFull,
    ProfileCorrupt,
    ProfileExists,
    ProfileNotFound,
    ProfileTooNew,
    StoreError,
)
from p2pchat.store.files import MAX_PATH_BYTES, FileStore
from p2pchat.store.fts_query import to_match_expression
from p2pchat.store.groups import GroupStore, check_outbox_frame
from p2pchat.store.keys import DEFAULT_KDF_LIMITS, SALT_BYTES, KdfLimits, derive_key, new_salt
from p2pchat.store.paths import ProfilePaths
from p2pchat.store.records import (
    DEFAULT_AUTO_ACCEPT_BYTES,
    MESSAGE_ID_BYTES,
    PUBLIC_KEY_BYTES,
    SEED_BYTES,
    TEXT_FRAME_TYPE,
    Contact,
    ConversationSummary,
    DeliveryState,
    Direction,
    MessageKind,
    OutboxEntry,
    SearchHit,
    Settings,
    StoredIdentity,
    StoredMessage,
    TrustState,
)
from p2pchat.store.schema import SCHEMA_VERSION, create_session_tables, migrate, schema_version

Connection = Any  # sqlcipher3 has no stubs

# A bound on the queue for one offline contact (every queue has a bound).
MAX_OUTBOX_PER_CONVERSATION = 1000
MAX_AUTO_ACCEPT_BYTES = 2**40  # the largest file the protocol carries
MAX_INVITE_SERVER_CHARS = 256  # the URL and the owner token, each

_MESSAGE_COLUMNS = (
    "m.message_id, m.conversation_id, m.direction, m.sender, m.timestamp_ms, m.body, m.delivery,"
    " m.sender_key, m.kind"
)
_OUTBOX_COLUMNS = "message_id, conversation_id, created_ms, attempts, body, frame_type, payload"


def profile_exists(data_dir: Path) -> bool:
    return ProfilePaths(Path(data_dir)).database.exists()


def create_profile(
    data_dir: Path,
    passphrase: str,
    *,
    name: str,
    identity_seed: bytes,
    keep_history: bool = True,
    kdf_limits: KdfLimits = DEFAULT_KDF_LIMITS,
) -> Profile:
    """Create a new profile in ``data_dir`` and return it open.

    The database is built under a temporary name and moved into place only when
    complete, so a crash never leaves a half-made ``profile.db``.
    """
    if len(identity_seed) != SEED_BYTES:
        raise ValueError(f"identity seed must be {SEED_BYTES} bytes")
    paths = ProfilePaths(Path(data_dir))
    if profile_exists(paths.data_dir):
        raise ProfileExists(paths.data_dir)
    make_data_dir(paths.data_dir)

    salt = new_salt()
    key = derive_key(passphrase, salt, kdf_limits)
    staging = paths.data_dir / "profile.db.creating"
    try:
        _remove_database_files(staging)  # leftovers of an interrupted create
        _create_private_file(staging)  # 0600 before SQLite opens it; -wal/-shm inherit it
        _build_database(staging, key, name, identity_seed, keep_history)
        _write_private_file(paths.salt, salt)  # the salt must exist before the database
        _publish(staging, paths.database)
        _fsync_directory(paths.data_dir)
    except (sqlcipher3.OperationalError, OSError) as error:
        # A full disk, a quota, an I/O error: nothing half made stays behind.
        with suppress(OSError):
            _remove_database_files(staging)
        raise _not_created(paths.data_dir, error) from None
    return _open_with_key(paths, key)


def _build_database(
    staging: Path, key: bytes, name: str, identity_seed: bytes, keep_history: bool
) -> None:
    conn = connect(staging, key, create=True)
    try:
        configure(conn)
        migrate(conn)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO identity (id, seed, display_name) VALUES (1, ?, ?)",
            (identity_seed, name),
        )
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('keep_history', ?)",
            (json.dumps(keep_history),),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()  # last close checkpoints and removes the staging -wal/-shm


def _not_created(data_dir: Path, error: Exception) -> StoreError:
    if getattr(error, "sqlite_errorname", "") == "SQLITE_FULL" or getattr(error, "errno", None) in (
        errno.ENOSPC,
        errno.EDQUOT,
    ):
        return DiskFull(data_dir)
    problem = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return DataDirUnusable(
        f"cannot create the profile in {data_dir}: {problem}; check that disk (is it full?)"
        " or use another --data-dir"
    )


def open_profile(
    data_dir: Path, passphrase: str, *, kdf_limits: KdfLimits = DEFAULT_KDF_LIMITS
) -> Profile:
    """Unlock the profile in ``data_dir``.

    Raises ProfileNotFound, WrongPassphrase (files untouched), ProfileCorrupt or
    ProfileTooNew. ``kdf_limits`` must be the ones the profile was created with.
    """
    paths = ProfilePaths(Path(data_dir))
    if not paths.database.exists():
        raise ProfileNotFound(paths.data_dir)
    try:
        salt = paths.salt.read_bytes()
    except FileNotFoundError:
        raise ProfileCorrupt(
            paths.salt, "the salt file is missing, and the profile cannot be unlocked without it"
        ) from None
    if len(salt) != SALT_BYTES:
        raise ProfileCorrupt(paths.salt, f"expected {SALT_BYTES} bytes, found {len(salt)}")
    check_writable(paths.data_dir)  # WAL mode writes beside the database, even to read
    return _open_with_key(paths, derive_key(passphrase, salt, kdf_limits))


class Profile:
    """An open profile. Get one from ``create_profile`` or ``open_profile``."""

    def __init__(self, conn: Connection, paths: ProfilePaths, key: bytes | None = None) -> None:
        self._conn = _DiskFullGuard(conn, paths.data_dir)
        self._key = key
        self._paths = paths
        self._transaction_depth = 0
        row = conn.execute("SELECT seed, display_name FROM identity WHERE id = 1").fetchone()
        if row is None:
            raise ProfileCorrupt(paths.database, "it has no identity")
        self._identity = StoredIdentity(seed=bytes(row[0]), name=row[1])
        self._settings = self._read_settings()
        self.groups = GroupStore(self._conn, self._transaction)  # groups.py
        self.files = FileStore(  # files.py
            self._conn, self._transaction, self.add_message, lambda: self._settings.keep_history
        )

    # -- lifecycle -----------------------------------------------------------

    @property
    def paths(self) -> ProfilePaths:
        return self._paths

    def close(self) -> None:
        """Close the database. In no-history mode this drops the in-memory outbox."""
        self._conn.close()

    def __enter__(self) -> Profile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group writes into one transaction (one commit instead of one each).

        All or nothing: an exception leaving the block rolls back all of it.
        """
        with self._transaction():
            yield

    def start_background_checkpoints(self) -> BackgroundCheckpointer:
        """Move WAL checkpoints off this connection's commits onto a thread (see
        checkpointer.py). The caller stops it before closing the profile."""
        if self._key is None:  # bench baselines build a Profile over an unkeyed connection
            raise ValueError("an unkeyed Profile cannot open a second connection")
        checkpointer = BackgroundCheckpointer(self._paths.database, self._key)
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        return checkpointer

    # -- identity and settings -------------------------------------------------

    @property
    def identity(self) -> StoredIdentity:
        return self._identity

    def set_name(self, name: str) -> None:
        self._conn.execute("UPDATE identity SET display_name = ? WHERE id = 1", (name,))
        self._identity = StoredIdentity(seed=self._identity.seed, name=name)

    @property
    def settings(self) -> Settings:
        return self._settings

    def set_keep_history(self, keep_history: bool) -> None:
        """Switch history logging; moves the outbox between the file and memory.

        Not inside ``batch()``: a rollback there could not undo the switch.
        """
        if self._transaction_depth:
            raise RuntimeError("set_keep_history() cannot run inside batch()")
        if keep_history == self._settings.keep_history:
            return
        source, target = ("temp.session_outbox", "outbox")
        if not keep_history:
            source, target = target, source
        with self._transaction():
            self._write_setting("keep_history", keep_history)
            self._conn.execute(
                f"INSERT INTO {target} ({_OUTBOX_COLUMNS})"  # noqa: S608 - fixed table names
                f" SELECT {_OUTBOX_COLUMNS} FROM {source} ORDER BY created_ms, id"
            )
            self._conn.execute(f"DELETE FROM {source}")  # noqa: S608 - fixed table names
        self._settings = replace(self._settings, keep_history=keep_history)
        if not keep_history:
            # Fold the WAL frames that still hold the moved bodies into the
            # (secure-deleted) database file now rather than at some later point.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def set_auto_accept_bytes(self, limit: int) -> None:
        """Files from an accepted contact up to ``limit`` bytes are accepted without
        asking (0: ask for every file). ValueError outside 0..MAX_AUTO_ACCEPT_BYTES."""
        if isinstance(limit, bool) or not 0 <= limit <= MAX_AUTO_ACCEPT_BYTES:
            raise ValueError(f"auto-accept size must be 0..{MAX_AUTO_ACCEPT_BYTES} bytes")
        self._write_setting("auto_accept_bytes", limit)
        self._settings = replace(self._settings, auto_accept_bytes=limit)

    def set_downloads_dir(self, directory: Path | None) -> None:
        """Where received files go; None: the platform's downloads folder. The path
        must be absolute (a relative one would depend on where the node started)."""
        if directory is not None:
            text = str(directory)
            if not Path(text).is_absolute() or "\0" in text:
                raise ValueError(f"downloads directory must be an absolute path: {text!r}")
            if len(text.encode(errors="surrogateescape")) > MAX_PATH_BYTES:
                raise ValueError(f"downloads directory must be at most {MAX_PATH_BYTES} bytes")
        self._write_setting("downloads_dir", None if directory is None else str(directory))
        self._settings = replace(self._settings, downloads_dir=directory)

    def set_invite_server(self, url: str | None, token: str | None) -> None:
        """The default remote invite server and its owner token (None, None: the LAN).
        The caller checks the URL's form; here only the bounds."""
        for value in (url, token):
            if value is not None and not 0 < len(value) <= MAX_INVITE_SERVER_CHARS:
                raise ValueError(f"invite server settings are 1..{MAX_INVITE_SERVER_CHARS} chars")
        with self._transaction():
            self._write_setting("invite_server", url)
            self._write_setting("invite_server_token", token)
        self._settings = replace(self._settings, invite_server=url, invite_server_token=token)

    # -- contacts ------------------------------------------------------------

    def upsert_contact(self, contact: Contact) -> None:
        """Add a contact, or update name/trust/verified of the one with this key.

        A contact is its key: a new key is a new contact, never a replacement,
        and ``pinned_at_ms`` keeps the time the key was first pinned.
        """
        _check_length("public key", contact.public_key, PUBLIC_KEY_BYTES)
        self._conn.execute(
            "INSERT INTO contacts (public_key, display_name, trust, verified, pinned_at_ms)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (public_key) DO UPDATE SET display_name = excluded.display_name,"
            " trust = excluded.trust, verified = excluded.verified",
            (
                contact.public_key,
                contact.display_name,
                contact.trust.value,
                int(contact.verified),
                contact.pinned_at_ms,
            ),
        )

    def get_contact(self, public_key: bytes) -> Contact | None:
        row = self._conn.execute(
            "SELECT public_key, display_name, trust, verified, pinned_at_ms FROM contacts"
            " WHERE public_key = ?",
            (public_key,),
        ).fetchone()
        return None if row is None else _contact_from_row(row)

    def contacts(self, *, include_members: bool = False) -> list[Contact]:
        """All contacts, by display name; keys pinned only by a group's member list
        (``TrustState.MEMBER``) with ``include_members``."""
        rows = self._conn.execute(
            "SELECT public_key, display_name, trust, verified, pinned_at_ms FROM contacts"
            " WHERE ? OR trust != ? ORDER BY display_name COLLATE NOCASE, public_key",
            (include_members, TrustState.MEMBER.value),
        ).fetchall()
        return [_contact_from_row(row) for row in rows]

    def set_trust(self, public_key: bytes, trust: TrustState) -> bool:
        """Returns False if there is no such contact."""
        cursor = self._conn.execute(
            "UPDATE contacts SET trust = ? WHERE public_key = ?", (trust.value, public_key)
        )
        return bool(cursor.rowcount)

    def set_verified(self, public_key: bytes, verified: bool) -> bool:
        """Returns False if there is no such contact."""
        cursor = self._conn.execute(
            "UPDATE contacts SET verified = ? WHERE public_key = ?", (int(verified), public_key)
        )
        return bool(cursor.rowcount)

    # -- messages ------------------------------------------------------------

    def add_message(self, message: StoredMessage) -> bool:
        """Store a message; False (and nothing changed) if its id was seen before.

        In no-history mode only the id is remembered, in memory (see module doc).
        """
        _check_length("message id", message.message_id, MESSAGE_ID_BYTES)
        if message.sender_key is not None:
            _check_length("sender key", message.sender_key, PUBLIC_KEY_BYTES)
        if not self._settings.keep_history:
            cursor = self._conn.execute(
                "INSERT INTO temp.session_seen_messages (message_id) SELECT ?"
                " WHERE NOT EXISTS (SELECT 1 FROM messages WHERE message_id = ?)"
                " ON CONFLICT DO NOTHING",
                (message.message_id, message.message_id),
            )
            return bool(cursor.rowcount)
        cursor = self._conn.execute(
            "INSERT INTO messages (message_id, conversation_id, direction, sender,"
            " timestamp_ms, body, delivery, sender_key, kind) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE NOT EXISTS"
            " (SELECT 1 FROM temp.session_seen_messages WHERE message_id = ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            (
                message.message_id,
                message.conversation_id,
                message.direction.value,
                message.sender,
                message.timestamp_ms,
                message.body,
                message.delivery.value,
                message.sender_key,
                message.kind.value,
                message.message_id,
            ),
        )
        return bool(cursor.rowcount)

    def get_message(self, message_id: bytes) -> StoredMessage | None:
        row = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.message_id = ?",  # noqa: S608
            (message_id,),
        ).fetchone()
        return None if row is None else _message_from_row(row)

    def messages(
        self,
        conversation_id: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[StoredMessage]:
        """Messages of a conversation, oldest first.

        ``since_ms`` is inclusive, ``until_ms`` exclusive. With ``limit``, the
        most recent ``limit`` messages of that range (what a chat view scrolls to).
        """
        where = ["m.conversation_id = ?"]
        params: list[object] = [conversation_id]
        if since_ms is not None:
            where.append("m.timestamp_ms >= ?")
            params.append(since_ms)
        if until_ms is not None:
            where.append("m.timestamp_ms < ?")
            params.append(until_ms)
        params.append(-1 if limit is None else max(limit, 0))  # LIMIT -1: no limit
        rows = self._conn.execute(
            f"SELECT * FROM (SELECT {_MESSAGE_COLUMNS}, m.id FROM messages AS m"  # noqa: S608
            f" WHERE {' AND '.join(where)} ORDER BY m.timestamp_ms DESC, m.id DESC LIMIT ?)"
            " ORDER BY timestamp_ms, id",
            params,
        ).fetchall()
        return [_message_from_row(row) for row in rows]

    def mark_sent(self, message_id: bytes, conversation_id: str | None = None) -> bool:
        """PENDING → SENT. False if unknown or already further along.

        With ``conversation_id``, only a message of that conversation (as for
        ``remove_outbox``: one peer's receipt must not touch another's message).
        """
        return self._advance_delivery(
            message_id, conversation_id, DeliveryState.SENT, (DeliveryState.PENDING,)
        )

    def mark_delivered(self, message_id: bytes, conversation_id: str | None = None) -> bool:
        """PENDING/SENT → DELIVERED. False if unknown or already delivered.

        Pass the receipt's ``conversation_id`` so a receipt from one peer cannot
        mark another peer's message.
        """
        return self._advance_delivery(
            message_id,
            conversation_id,
            DeliveryState.DELIVERED,
            (DeliveryState.PENDING, DeliveryState.SENT),
        )

    def index_pending(self) -> None:
        """Add the messages stored since the last call to the full-text index.

        Message writes leave indexing to this (see schema.py, _V3_DEFERRED_FTS): many
        rows in one statement, off the path of each message's commit. ``search``
        calls it first, so it always sees every stored message; the node calls it a
        few ms after storing; opening a profile calls it (rows a crash left behind).
        """
        if not self._conn.execute(_ANY_UNINDEXED).fetchone()[0]:
            return
        with self._transaction():  # the watermark is read again inside: one indexer wins
            (up_to,) = self._conn.execute("SELECT up_to FROM fts_indexed").fetchone()
            self._conn.execute(
                "INSERT INTO messages_fts (rowid, body)"
                " SELECT id, body FROM messages WHERE id > ? ORDER BY id",
                (up_to,),
            )
            self._conn.execute(
                "UPDATE fts_indexed SET up_to = (SELECT coalesce(max(id), 0) FROM messages)"
            )

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        conversation_id: str | None = None,
        marks: tuple[str, str] = ("[", "]"),
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[SearchHit]:
        """Full-text search over stored message bodies, newest (last stored) first.

        Ordered by arrival (the FTS rowid) rather than timestamp_ms: FTS5 walks
        its index backwards and stops at ``limit``, so a word found in half of
        100k messages costs under a millisecond instead of a sort of all hits.

        Every word must match; ``word*`` matches a prefix. ``marks`` wrap the
        matched words in the snippet. ``since_ms`` (inclusive) and ``until_ms``
        (exclusive) keep hits within a time range. Raises InvalidSearchQuery if
        the query cannot be run (it is quoted first, so ordinary text always can).
        """
        expression = to_match_expression(query)
        if expression is None:
            return []
        self.index_pending()
        filters, filter_params = _search_filters(conversation_id, since_ms, until_ms)
        sql = (
            f"SELECT {_MESSAGE_COLUMNS},"  # noqa: S608 - only fixed SQL is interpolated
            " snippet(messages_fts, 0, ?, ?, '…', 12)"
            " FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
            f" WHERE messages_fts MATCH ?{filters}"
            " ORDER BY messages_fts.rowid DESC LIMIT ?"
        )
        params = [marks[0], marks[1], expression, *filter_params, max(limit, 0)]
        try:
            rows = self._conn.execute(sql, params).fetchall()
        except sqlcipher3.OperationalError as error:
            raise InvalidSearchQuery(query, str(error)) from None
        return [SearchHit(message=_message_from_row(row), snippet=row[9]) for row in rows]

    def search_count(
        self,
        query: str,
        *,
        conversation_id: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> int:
        """How many messages ``search`` would find with no limit (same arguments).

        Costs a walk of every hit's index entry (``search`` stops at its limit):
        ~4 ms per 100k hits (bench_history). Raises InvalidSearchQuery like ``search``.
        """
        expression = to_match_expression(query)
        if expression is None:
            return 0
        self.index_pending()
        filters, filter_params = _search_filters(conversation_id, since_ms, until_ms)
        if filters:
            sql = (
                "SELECT count(*) FROM messages_fts"  # noqa: S608 - fixed SQL only
                " JOIN messages AS m ON m.id = messages_fts.rowid"
                f" WHERE messages_fts MATCH ?{filters}"
            )
        else:  # the index alone: no row of `messages` is read
            sql = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?"
        try:
            (count,) = self._conn.execute(sql, [expression, *filter_params]).fetchone()
        except sqlcipher3.OperationalError as error:
            raise InvalidSearchQuery(query, str(error)) from None
        return int(count)

    def conversations(self) -> list[ConversationSummary]:
        """One summary per conversation with stored messages, most recent first.

        One pass over the (covering) conversation index. The latest sender's name
        is looked up only where there is no contact name: that search walks back
        over our own messages, and for a contact who never answers would read the
        whole conversation.
        """
        rows = self._conn.execute(
            "SELECT conversation_id, max(timestamp_ms), count(*)"
            " FROM messages GROUP BY conversation_id ORDER BY 2 DESC, 1"
        ).fetchall()
        contact_names = {
            bytes(key): name
            for key, name in self._conn.execute("SELECT public_key, display_name FROM contacts")
        }
        group_names = self.groups.names_by_conversation()
        summaries = []
        for conversation_id, last_ms, count in rows:
            name = contact_names.get(contact_key_of(conversation_id) or b"")
            name = name or group_names.get(conversation_id)
            if not name:
                name = self._last_sender(conversation_id)
            summaries.append(
                ConversationSummary(
                    conversation_id=conversation_id,
                    name=name or conversation_id,
                    last_message_ms=last_ms,
                    message_count=count,
                )
            )
        return summaries

    # -- outbox --------------------------------------------------------------

    def enqueue_outbox(
        self,
        message_id: bytes,
        conversation_id: str,
        body: str,
        *,
        created_ms: int,
        frame_type: int = TEXT_FRAME_TYPE,
        payload: bytes | None = None,
    ) -> bool:
        """Queue a message for an offline contact; False if already queued.

        A text message has ``body``; any other frame (a group message's fan-out
        copy, a member list) has its ``frame_type``, its frame body as ``payload``
        and ``body`` ''. Raises OutboxFull past MAX_OUTBOX_PER_CONVERSATION entries.
        """
        _check_length("message id", message_id, MESSAGE_ID_BYTES)
        check_outbox_frame(frame_type, body, payload)
        table = self._outbox_table()
        with self._transaction():
            (queued,) = self._conn.execute(
                f"SELECT count(*) FROM {table} WHERE conversation_id = ?",  # noqa: S608
                (conversation_id,),
            ).fetchone()
            if queued >= MAX_OUTBOX_PER_CONVERSATION:
                raise OutboxFull(conversation_id, MAX_OUTBOX_PER_CONVERSATION)
            cursor = self._conn.execute(
                f"INSERT INTO {table} ({_OUTBOX_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (message_id, conversation_id, created_ms, body, frame_type, payload),
            )
        return bool(cursor.rowcount)

    def pending_outbox(self, conversation_id: str) -> list[OutboxEntry]:
        """Queued messages for a conversation, in the order they were queued."""
        rows = self._conn.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM {self._outbox_table()}"  # noqa: S608
            " WHERE conversation_id = ? ORDER BY created_ms, id",
            (conversation_id,),
        ).fetchall()
        return [
            OutboxEntry(
                message_id=bytes(row[0]),
                conversation_id=row[1],
                created_ms=row[2],
                attempts=row[3],
                body=row[4],
                frame_type=row[5],
                payload=None if row[6] is None else bytes(row[6]),
            )
            for row in rows
        ]

    def in_outbox(self, message_id: bytes, conversation_id: str) -> bool:
        """Whether ``message_id`` is queued for ``conversation_id`` (a read, no write)."""
        row = self._conn.execute(
            f"SELECT 1 FROM {self._outbox_table()}"  # noqa: S608
            " WHERE message_id = ? AND conversation_id = ?",
            (message_id, conversation_id),
        ).fetchone()
        return row is not None

    def outbox_frame(
        self, message_id: bytes, conversation_id: str
    ) -> tuple[int, bytes | None] | None:
        """``in_outbox``, telling what is queued: (frame type, payload), or None."""
        row = self._conn.execute(
            f"SELECT frame_type, payload FROM {self._outbox_table()}"  # noqa: S608
            " WHERE message_id = ? AND conversation_id = ?",
            (message_id, conversation_id),
        ).fetchone()
        return None if row is None else (int(row[0]), None if row[1] is None else bytes(row[1]))

    def remove_outbox(self, message_id: bytes, conversation_id: str | None = None) -> bool:
        """Drop a queued message (sent, or given up); False if it was not queued.

        With ``conversation_id``, only if it was queued for that conversation: a
        receipt from one contact must not touch another contact's messages.
        """
        if conversation_id is None:
            cursor = self._conn.execute(
                f"DELETE FROM {self._outbox_table()} WHERE message_id = ?",  # noqa: S608
                (message_id,),
            )
        else:
            cursor = self._conn.execute(
                f"DELETE FROM {self._outbox_table()}"  # noqa: S608
                " WHERE message_id = ? AND conversation_id = ?",
                (message_id, conversation_id),
            )
        return bool(cursor.rowcount)

    def drop_guest_group_frames(self) -> int:
        """Drop every group frame queued for a browser guest (kept guests of a run that
        ended: their links died with it); how many. A guest's 1:1 texts stay."""
        cursor = self._conn.execute(
            f"DELETE FROM {self._outbox_table()}"  # noqa: S608
            " WHERE substr(conversation_id, 1, ?) = ? AND frame_type != ?",
            (len(GUEST_PREFIX), GUEST_PREFIX, TEXT_FRAME_TYPE),
        )
        return int(cursor.rowcount)

    def bump_outbox_attempts(self, message_id: bytes) -> int | None:
        """Count one more delivery attempt; returns the new count, None if not queued."""
        row = self._conn.execute(
            f"UPDATE {self._outbox_table()} SET attempts = attempts + 1"  # noqa: S608
            " WHERE message_id = ? RETURNING attempts",
            (message_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    # -- private -------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # Re-entrant: an inner block joins the outer transaction.
        if self._transaction_depth:
            self._transaction_depth += 1
            try:
                yield
            finally:
                self._transaction_depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._transaction_depth = 1
        try:
            yield
            self._transaction_depth = 0
            self._conn.execute("COMMIT")
        except BaseException:
            self._transaction_depth = 0
            # SQLite may have rolled back already (a full disk at COMMIT does):
            # a second ROLLBACK would fail and hide the real error.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _last_sender(self, conversation_id: str) -> str | None:
        """The name on the latest incoming message of a conversation."""
        row = self._conn.execute(
            "SELECT sender FROM messages WHERE conversation_id = ? AND direction = 'in'"
            " ORDER BY timestamp_ms DESC, id DESC LIMIT 1",
            (conversation_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def _outbox_table(self) -> str:
        return "outbox" if self._settings.keep_history else "temp.session_outbox"

    def _advance_delivery(
        self,
        message_id: bytes,
        conversation_id: str | None,
        state: DeliveryState,
        allowed_from: tuple[DeliveryState, ...],
    ) -> bool:
        placeholders = ", ".join("?" for _ in allowed_from)
        sql = (
            "UPDATE messages SET delivery = ?"  # noqa: S608 - only placeholders interpolated
            f" WHERE message_id = ? AND delivery IN ({placeholders})"
        )
        params: list[object] = [state.value, message_id, *(s.value for s in allowed_from)]
        if conversation_id is not None:
            sql += " AND conversation_id = ?"
            params.append(conversation_id)
        return bool(self._conn.execute(sql, params).rowcount)

    def _read_settings(self) -> Settings:
        # A value a newer or broken writer left in a form we do not take: the default.
        values = {
            key: json.loads(value) for key, value in self._conn.execute("SELECT * FROM settings")
        }
        auto_accept = values.get("auto_accept_bytes")
        if not (isinstance(auto_accept, int) and 0 <= auto_accept <= MAX_AUTO_ACCEPT_BYTES):
            auto_accept = DEFAULT_AUTO_ACCEPT_BYTES
        downloads = values.get("downloads_dir")
        server, token = values.get("invite_server"), values.get("invite_server_token")
        return Settings(
            invite_server=server if isinstance(server, str) and server else None,
            invite_server_token=token if isinstance(token, str) and token else None,
            keep_history=bool(values.get("keep_history", True)),
            auto_accept_bytes=int(auto_accept),
            downloads_dir=Path(downloads) if isinstance(downloads, str) else None,
        )

    def _write_setting(self, key: str, value: object) -> None:
        self._conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )


class _DiskFullGuard:
    """The connection, with SQLITE_FULL raised as DiskFull (a StoreError a front end
    can show) instead of a bare ``OperationalError``."""

    def __init__(self, conn: Connection, data_dir: Path) -> None:
        self._conn = conn
        self._data_dir = data_dir

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        try:
            return self._conn.execute(sql, parameters)
        except sqlcipher3.OperationalError as error:
            if getattr(error, "sqlite_errorname", "") == "SQLITE_FULL":
                raise DiskFull(self._data_dir) from None
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


_ANY_UNINDEXED = (
    "SELECT (SELECT coalesce(max(id), 0) FROM messages) > (SELECT up_to FROM fts_indexed)"
)


def _open_with_key(paths: ProfilePaths, key: bytes) -> Profile:
    conn = connect(paths.database, key)
    try:
        found = schema_version(conn)
        if found > SCHEMA_VERSION:  # checked before anything writes
            raise ProfileTooNew(paths.database, found, SCHEMA_VERSION)
        configure(conn)
        migrate(conn)
        create_session_tables(conn)
        profile = Profile(conn, paths, key)
        # What a crash left unindexed. Not a reason to refuse the open (a full disk
        # must not stop `history` from reading): search tries again, and says why.
        with suppress(DiskFull):
            profile.index_pending()
        return profile
    except BaseException:
        conn.close()
        raise


def _search_filters(
    conversation_id: str | None, since_ms: int | None, until_ms: int | None
) -> tuple[str, list[object]]:
    """The ``AND …`` conditions on ``m`` (messages) for a search, and their parameters."""
    sql = ""
    params: list[object] = []
    if conversation_id is not None:
        sql += " AND m.conversation_id = ?"
        params.append(conversation_id)
    if since_ms is not None:
        sql += " AND m.timestamp_ms >= ?"
        params.append(since_ms)
    if until_ms is not None:
        sql += " AND m.timestamp_ms < ?"
        params.append(until_ms)
    return sql, params


def _contact_from_row(row: tuple[Any, ...]) -> Contact:
    return Contact(
        public_key=bytes(row[0]),
        display_name=row[1],
        trust=TrustState(row[2]),
        verified=bool(row[3]),
        pinned_at_ms=row[4],
    )


def _message_from_row(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(
        message_id=bytes(row[0]),
        conversation_id=row[1],
        direction=Direction(row[2]),
        sender=row[3],
        timestamp_ms=row[4],
        body=row[5],
        delivery=DeliveryState(row[6]),
        sender_key=None if row[7] is None else bytes(row[7]),
        kind=MessageKind(row[8]),
    )


def _check_length(what: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise ValueError(f"{what} must be {length} bytes, got {len(value)}")


def _create_private_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _publish(staging: Path, database: Path) -> None:
    """Move the finished database into place without overwriting another one."""
    with open(staging, "rb") as file:
        os.fsync(file.fileno())
    try:
        os.link(staging, database)  # fails if a profile appeared meanwhile
    except FileExistsError:
        staging.unlink()
        raise ProfileExists(database.parent) from None
    except OSError:  # a filesystem without hard links (FAT on a USB stick)
        os.replace(staging, database)
    else:
        staging.unlink()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_database_files(database: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
