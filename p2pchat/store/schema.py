"""The database schema, as an ordered list of migrations.

``PRAGMA user_version`` is the number of migrations applied. Opening a profile runs
the missing ones, each in its own transaction with its version bump, so a crash
leaves the profile at the last complete version. A released migration is never
edited: change the schema by appending one.

The TEMP tables at the end are not part of the file: they live in memory
(``temp_store=MEMORY``) for one connection and hold what must not touch the disk
when history is off (see profile.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# sqlcipher3 has no stubs; a Connection is "Any" to mypy.
Connection = Any

# Each migration is one SQL script. (Scripts, not functions: the driver's
# executescript() commits first, so the transaction has to be inside the script.)
_V1_CORE_TABLES = """
        CREATE TABLE identity (
            id INTEGER PRIMARY KEY CHECK (id = 1),  -- exactly one row
            seed BLOB NOT NULL CHECK (length(seed) = 32),
            display_name TEXT NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL  -- JSON
        ) WITHOUT ROWID;
        CREATE TABLE contacts (
            public_key BLOB PRIMARY KEY CHECK (length(public_key) = 32),
            display_name TEXT NOT NULL,
            trust TEXT NOT NULL,
            verified INTEGER NOT NULL CHECK (verified IN (0, 1)),
            pinned_at_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,  -- rowid: insertion order, and the FTS rowid
            message_id BLOB NOT NULL UNIQUE CHECK (length(message_id) = 16),
            conversation_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            sender TEXT NOT NULL,
            timestamp_ms INTEGER NOT NULL,
            body TEXT NOT NULL,
            delivery TEXT NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, timestamp_ms, id);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,  -- tie-break for equal created_ms: FIFO
            message_id BLOB NOT NULL UNIQUE CHECK (length(message_id) = 16),
            conversation_id TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL
        );
        CREATE INDEX outbox_by_conversation ON outbox (conversation_id, created_ms, id);
"""

# External-content FTS5: the index holds tokens only, the text stays in
# `messages`; triggers keep the two in step. `rebuild` indexes existing rows.
_V2_FULL_TEXT_SEARCH = """
        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            body,
            content = 'messages',
            content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, body)
                VALUES ('delete', old.id, old.body);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, body)
                VALUES ('delete', old.id, old.body);
            INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
        END;
        INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
"""

# FTS indexing deferred: a row is indexed a few ms after its commit, many rows in one
# statement (Profile.index_pending), not by a trigger inside each message's commit.
# `fts_indexed.up_to` is the watermark: every row with id <= up_to is in the index,
# none above it. It is in the database, so a crash in between (a SIGKILL) leaves
# rows that the next open indexes. Deleting or editing a row above it must not touch
# the index (an external-content 'delete' of a row never inserted corrupts it). A
# deleted largest rowid is given again by SQLite to the next insert: the watermark
# comes down with it, so a new row never reads as already indexed.
_V3_DEFERRED_FTS = """
        DROP TRIGGER messages_fts_insert;
        DROP TRIGGER messages_fts_delete;
        DROP TRIGGER messages_fts_update;
        CREATE TABLE fts_indexed (
            id INTEGER PRIMARY KEY CHECK (id = 1),  -- exactly one row
            up_to INTEGER NOT NULL
        );
        INSERT INTO fts_indexed (id, up_to) SELECT 1, coalesce(max(id), 0) FROM messages;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, body)
                SELECT 'delete', old.id, old.body
                WHERE old.id <= (SELECT up_to FROM fts_indexed);
            UPDATE fts_indexed SET up_to = (SELECT coalesce(max(id), 0) FROM messages)
                WHERE up_to > (SELECT coalesce(max(id), 0) FROM messages);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
            WHEN old.id <= (SELECT up_to FROM fts_indexed) BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, body)
                VALUES ('delete', old.id, old.body);
            INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
        END;
"""

# Groups (issue 12). A group's messages are ordinary `messages` rows (conversation
# "group:<hex>"), so history, search and export take them unchanged; `sender_key`
# says who sent one (names in a group are not unique). Adding a column leaves the
# FTS index alone: it holds `body` by rowid only. An outbox row that is not text
# (a fan-out copy of a group message, a member list) has `frame_type` != 1, its
# frame body in `payload` and '' in `body`. `group_chains` holds, per group and
# sender (me included), the last seq and hash seen: constant size per sender.
# `trust = 'member'` in contacts needs no change here (trust has no CHECK).
_V4_GROUPS = """
        CREATE TABLE groups (
            group_id BLOB PRIMARY KEY CHECK (length(group_id) = 16),
            name TEXT NOT NULL,
            admin_key BLOB NOT NULL CHECK (length(admin_key) = 32),
            epoch INTEGER NOT NULL CHECK (epoch >= 1),
            list BLOB NOT NULL,  -- the encoded signed MemberList, as it came
            joined_epoch INTEGER NOT NULL CHECK (joined_epoch BETWEEN 1 AND epoch),
            state TEXT NOT NULL CHECK (state IN ('active', 'left', 'removed')),
            created_ms INTEGER NOT NULL
        );
        CREATE TABLE group_chains (
            group_id BLOB NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
            sender_key BLOB NOT NULL CHECK (length(sender_key) = 32),
            last_seq INTEGER NOT NULL CHECK (last_seq >= 1),
            last_hash BLOB NOT NULL CHECK (length(last_hash) = 32),
            PRIMARY KEY (group_id, sender_key)
        ) WITHOUT ROWID;
        ALTER TABLE outbox ADD COLUMN frame_type INTEGER NOT NULL DEFAULT 1
            CHECK (frame_type BETWEEN 1 AND 255);
        ALTER TABLE outbox ADD COLUMN payload BLOB;
        ALTER TABLE messages ADD COLUMN sender_key BLOB
            CHECK (sender_key IS NULL OR length(sender_key) = 32);
"""

# Per-member delivery of my group messages: a row per (message, member) whose receipt
# for its copy came. Only for a stored message (with history off there is no row to
# count for, and nothing is kept); a message's rows go with it.
_V5_GROUP_DELIVERIES = """
        CREATE TABLE group_deliveries (
            message_id BLOB NOT NULL CHECK (length(message_id) = 16),
            member_key BLOB NOT NULL CHECK (length(member_key) = 32),
            PRIMARY KEY (message_id, member_key)
        ) WITHOUT ROWID;
        CREATE TRIGGER group_deliveries_delete AFTER DELETE ON messages BEGIN
            DELETE FROM group_deliveries WHERE message_id = old.message_id;
        END;
"""

# Files (issue 13). A transfer's state lives in `transfers` (needed to resume after a
# restart, with history on or off); with history on it also has a `messages` row
# (message_id = transfer_id, body = the file name, kind 'file') so history, search
# and export find it by name. `file_key` is secret: the store sets it to NULL once
# the transfer ends. Deleting a conversation's 'file' history rows deletes its
# transfers (the trigger). Sizes: at most 2^40 bytes, blocks 64 KiB..1 MiB.
_V6_FILES = """
        CREATE TABLE transfers (
            transfer_id BLOB PRIMARY KEY CHECK (length(transfer_id) = 16),
            conversation TEXT NOT NULL,
            peer_key BLOB NOT NULL CHECK (length(peer_key) = 32),
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            name TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size BETWEEN 0 AND 1099511627776),
            block_bytes INTEGER NOT NULL CHECK (block_bytes BETWEEN 65536 AND 1048576),
            file_hash BLOB NOT NULL CHECK (length(file_hash) = 32),
            file_key BLOB CHECK (file_key IS NULL OR length(file_key) = 32),
            mime TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'offered', 'accepted', 'sending',
                'receiving', 'done', 'failed', 'cancelled', 'declined')),
            verified_blocks INTEGER NOT NULL DEFAULT 0 CHECK (verified_blocks >= 0),
            source_path TEXT,
            source_stamp TEXT CHECK (source_stamp IS NULL OR length(source_stamp) <= 100),
            partial_path TEXT,
            final_path TEXT,
            error TEXT,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE INDEX transfers_by_peer_state ON transfers (peer_key, state);
        CREATE INDEX transfers_by_created ON transfers (created_ms, transfer_id);
        ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text'
            CHECK (kind IN ('text', 'file'));
        CREATE TRIGGER transfers_delete AFTER DELETE ON messages
            WHEN old.kind = 'file' BEGIN
            DELETE FROM transfers WHERE transfer_id = old.message_id;
        END;
"""

MIGRATIONS: Sequence[str] = (
    _V1_CORE_TABLES,
    _V2_FULL_TEXT_SEARCH,
    _V3_DEFERRED_FTS,
    _V4_GROUPS,
    _V5_GROUP_DELIVERIES,
    _V6_FILES,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: Connection, target: int = SCHEMA_VERSION) -> None:
    """Apply the migrations after the database's version, up to ``target``.

    Each step is one transaction, version bump included.
    """
    for version in range(schema_version(conn), target):
        script = MIGRATIONS[version]
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version + 1:d};\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def create_session_tables(conn: Connection) -> None:
    """Per-connection, in-memory tables for no-history mode."""
    conn.executescript(
        """
        CREATE TEMP TABLE session_outbox (
            id INTEGER PRIMARY KEY,
            message_id BLOB NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL,
            frame_type INTEGER NOT NULL DEFAULT 1,  -- as in `outbox` (schema v4)
            payload BLOB
        );
        CREATE TEMP TABLE session_seen_messages (
            message_id BLOB PRIMARY KEY
        ) WITHOUT ROWID;
        """
    )
