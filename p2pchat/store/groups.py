"""Groups in the profile: each group's latest member list, and per-sender hash chains.

Reached as ``Profile.groups``. The store does not decode member lists or group
messages (the protocol does): it keeps the encoded signed list exactly as it came,
beside the few fields it needs to find and order groups, and it refuses what would
break the protocol's guarantees even if a caller got it wrong: a list that is not
newer (epochs only grow), another admin, a chain that goes back (replays).

Each method is one transaction; inside ``Profile.batch()`` they join the caller's,
so sending a group message (take the next seq, store the message, advance my
chain, queue one copy per member) commits all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from p2pchat.store.conversation_id import group_conversation_id
from p2pchat.store.errors import StaleGroupList, TooManyGroups
from p2pchat.store.records import (
    CHAIN_HASH_BYTES,
    GROUP_ID_BYTES,
    PUBLIC_KEY_BYTES,
    TEXT_FRAME_TYPE,
    ChainState,
    Contact,
    GroupState,
    StoredGroup,
    TrustState,
)

Connection = Any  # sqlcipher3 has no stubs

MAX_GROUPS = 100  # per profile, whatever their state (a left group still has a row)
MAX_GROUP_NAME_BYTES = 64
MAX_PAYLOAD_BYTES = 64 * 1024  # a list or a message travels in one 1:1 frame (64 KiB)
MAX_CHAIN_SEQ = 2**63 - 1  # SQLite integers are signed 64-bit
NO_PREVIOUS_HASH = bytes(CHAIN_HASH_BYTES)  # prev_hash of a sender's first message

_GROUP_COLUMNS = "group_id, name, admin_key, epoch, list, joined_epoch, state, created_ms"


class GroupStore:
    """The groups API of one open profile (``Profile.groups``)."""

    def __init__(
        self, conn: Connection, transaction: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._conn = conn
        self._transaction = transaction

    # -- groups --------------------------------------------------------------

    def save(self, group: StoredGroup) -> bool:
        """Store a new group, or a newer member list of a held one.

        Returns False (nothing written) for the list already held, byte for byte.
        Raises StaleGroupList if the epoch does not grow, TooManyGroups past
        MAX_GROUPS, ValueError for another admin or out-of-bound fields. Of an
        existing row, ``created_ms`` is kept; every other field is the given one.
        """
        _check_group(group)
        with self._transaction():
            held = self.get(group.group_id)
            if held is None:
                (count,) = self._conn.execute("SELECT count(*) FROM groups").fetchone()
                if count >= MAX_GROUPS:
                    raise TooManyGroups(MAX_GROUPS)
                self._conn.execute(
                    f"INSERT INTO groups ({_GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        group.group_id,
                        group.name,
                        group.admin_key,
                        group.epoch,
                        group.member_list,
                        group.joined_epoch,
                        group.state.value,
                        group.created_ms,
                    ),
                )
                return True
            if held.admin_key != group.admin_key:
                raise ValueError("a group's admin never changes")
            if group.epoch == held.epoch and group.member_list == held.member_list:
                return False  # a harmless duplicate
            if group.epoch <= held.epoch:
                raise StaleGroupList(held.name, held.epoch, group.epoch)
            self._conn.execute(
                "UPDATE groups SET name = ?, epoch = ?, list = ?, joined_epoch = ?, state = ?"
                " WHERE group_id = ?",
                (
                    group.name,
                    group.epoch,
                    group.member_list,
                    group.joined_epoch,
                    group.state.value,
                    group.group_id,
                ),
            )
            return True

    def get(self, group_id: bytes) -> StoredGroup | None:
        row = self._conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM groups WHERE group_id = ?",  # noqa: S608
            (group_id,),
        ).fetchone()
        return None if row is None else _group_from_row(row)

    def all(self) -> list[StoredGroup]:
        """Every group, by name (then id: names are not unique)."""
        rows = self._conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM groups"  # noqa: S608
            " ORDER BY name COLLATE NOCASE, group_id"
        ).fetchall()
        return [_group_from_row(row) for row in rows]

    def find_by_name(self, name: str) -> list[StoredGroup]:
        """The groups called ``name`` (case ignored), by id: maybe several."""
        wanted = name.casefold()
        return [group for group in self.all() if group.name.casefold() == wanted]

    def set_state(self, group_id: bytes, state: GroupState) -> bool:
        """Returns False if there is no such group."""
        cursor = self._conn.execute(
            "UPDATE groups SET state = ? WHERE group_id = ?", (state.value, group_id)
        )
        return bool(cursor.rowcount)

    def delete(self, group_id: bytes) -> bool:
        """Forget a group and its chains; its messages stay in history.

        Returns False if there is no such group.
        """
        with self._transaction():
            # Explicit rather than trusting ON DELETE CASCADE alone: foreign keys are
            # a per-connection setting.
            self._conn.execute("DELETE FROM group_chains WHERE group_id = ?", (group_id,))
            cursor = self._conn.execute("DELETE FROM groups WHERE group_id = ?", (group_id,))
        return bool(cursor.rowcount)

    def names_by_conversation(self) -> dict[str, str]:
        """Each group's conversation id → its name (for conversation listings)."""
        return {
            group_conversation_id(bytes(group_id)): name
            for group_id, name in self._conn.execute("SELECT group_id, name FROM groups")
        }

    # -- chains --------------------------------------------------------------

    def chain(self, group_id: bytes, sender_key: bytes) -> ChainState | None:
        """Where ``sender_key``'s chain in the group stands; None before its first message."""
        row = self._conn.execute(
            "SELECT last_seq, last_hash FROM group_chains WHERE group_id = ? AND sender_key = ?",
            (group_id, sender_key),
        ).fetchone()
        return None if row is None else ChainState(last_seq=row[0], last_hash=bytes(row[1]))

    def set_chain(
        self, group_id: bytes, sender_key: bytes, last_seq: int, last_hash: bytes
    ) -> bool:
        """Record ``sender_key``'s latest message in the group (received, or my own sent).

        Only forwards: False (nothing changed) if ``last_seq`` is not above the held
        one, so a replay can never move a chain back. ValueError for an unknown
        group or out-of-bound values.
        """
        _check_length("sender key", sender_key, PUBLIC_KEY_BYTES)
        _check_length("chain hash", last_hash, CHAIN_HASH_BYTES)
        if not 1 <= last_seq <= MAX_CHAIN_SEQ:
            raise ValueError(f"chain seq must be 1..{MAX_CHAIN_SEQ}, got {last_seq}")
        with self._transaction():
            if (
                self._conn.execute(
                    "SELECT 1 FROM groups WHERE group_id = ?", (group_id,)
                ).fetchone()
                is None
            ):
                raise ValueError("no such group")
            cursor = self._conn.execute(
                "INSERT INTO group_chains (group_id, sender_key, last_seq, last_hash)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (group_id, sender_key) DO UPDATE"
                " SET last_seq = excluded.last_seq, last_hash = excluded.last_hash"
                " WHERE excluded.last_seq > group_chains.last_seq",
                (group_id, sender_key, last_seq, last_hash),
            )
        return bool(cursor.rowcount)

    def chains(self, group_id: bytes) -> dict[bytes, ChainState]:
        """Every chain held for the group, by sender key: members on the list or not (a
        removed member's is kept, so its old messages stay refused if it is added again)."""
        rows = self._conn.execute(
            "SELECT sender_key, last_seq, last_hash FROM group_chains WHERE group_id = ?",
            (group_id,),
        ).fetchall()
        return {bytes(r[0]): ChainState(last_seq=r[1], last_hash=bytes(r[2])) for r in rows}

    def next_link(self, group_id: bytes, sender_key: bytes) -> tuple[int, bytes]:
        """The seq and prev_hash of ``sender_key``'s next message (mine, to send):
        (1, 32 zero bytes) for the first. Call ``set_chain`` in the same batch."""
        held = self.chain(group_id, sender_key)
        if held is None:
            return 1, NO_PREVIOUS_HASH
        if held.last_seq >= MAX_CHAIN_SEQ:
            raise ValueError("this group's chain is at its last seq")
        return held.last_seq + 1, held.last_hash

    # -- per-member delivery of my messages ------------------------------------

    def add_delivery(self, message_id: bytes, member_key: bytes) -> bool:
        """``member_key`` has my group message ``message_id`` (its copy's receipt came).

        Only for a message I sent that history holds: False (nothing written) otherwise,
        or if this member was counted already.
        """
        _check_length("message id", message_id, 16)
        _check_length("member key", member_key, PUBLIC_KEY_BYTES)
        cursor = self._conn.execute(
            "INSERT INTO group_deliveries (message_id, member_key) SELECT ?, ?"
            " WHERE EXISTS (SELECT 1 FROM messages WHERE message_id = ? AND direction = 'out'"
            " AND conversation_id LIKE 'group:%') ON CONFLICT DO NOTHING",
            (message_id, member_key, message_id),
        )
        return bool(cursor.rowcount)

    def deliveries(self, conversation_id: str) -> dict[bytes, list[bytes]]:
        """Of my messages in a group conversation: message id → the member keys that have it."""
        rows = self._conn.execute(
            "SELECT d.message_id, d.member_key FROM group_deliveries AS d"
            " JOIN messages AS m ON m.message_id = d.message_id"
            " WHERE m.conversation_id = ? ORDER BY d.message_id, d.member_key",
            (conversation_id,),
        ).fetchall()
        held: dict[bytes, list[bytes]] = {}
        for message_id, key in rows:
            held.setdefault(bytes(message_id), []).append(bytes(key))
        return held

    # -- member pins ---------------------------------------------------------

    def pin_member(self, public_key: bytes, display_name: str, *, pinned_at_ms: int) -> Contact:
        """Pin a key named by a member list (trust ``member``) unless it is pinned already.

        A key in any other state (a contact, a request, a blocked key) keeps its
        state and name; a ``member`` pin takes the list's name. Returns the row as
        it now is, so the caller sees what the key already was.
        """
        _check_length("public key", public_key, PUBLIC_KEY_BYTES)
        with self._transaction():
            self._conn.execute(
                "INSERT INTO contacts (public_key, display_name, trust, verified, pinned_at_ms)"
                " VALUES (?, ?, ?, 0, ?) ON CONFLICT (public_key) DO UPDATE"
                " SET display_name = excluded.display_name WHERE trust = excluded.trust",
                (public_key, display_name, TrustState.MEMBER.value, pinned_at_ms),
            )
            row = self._conn.execute(
                "SELECT display_name, trust, verified, pinned_at_ms FROM contacts"
                " WHERE public_key = ?",
                (public_key,),
            ).fetchone()
        return Contact(
            public_key=public_key,
            display_name=row[0],
            trust=TrustState(row[1]),
            verified=bool(row[2]),
            pinned_at_ms=row[3],
        )


def check_outbox_frame(frame_type: int, body: str, payload: bytes | None) -> None:
    """An outbox entry is text (a body, no payload) or a group frame (a payload, no body)."""
    if frame_type == TEXT_FRAME_TYPE:
        if payload is not None:
            raise ValueError("a text outbox entry has a body, not a payload")
        return
    if not 1 < frame_type <= 255:
        raise ValueError(f"frame type must be 1..255, got {frame_type}")
    if payload is None or not 0 < len(payload) <= MAX_PAYLOAD_BYTES or body:
        raise ValueError(
            f"a non-text outbox entry needs a payload of 1..{MAX_PAYLOAD_BYTES} bytes"
            " and an empty body"
        )


def _check_group(group: StoredGroup) -> None:
    _check_length("group id", group.group_id, GROUP_ID_BYTES)
    _check_length("admin key", group.admin_key, PUBLIC_KEY_BYTES)
    if not 1 <= len(group.name.encode()) <= MAX_GROUP_NAME_BYTES:
        raise ValueError(f"a group name must be 1..{MAX_GROUP_NAME_BYTES} bytes of UTF-8")
    if not 1 <= group.joined_epoch <= group.epoch <= 2**32 - 1:
        raise ValueError("epochs must be 1 <= joined_epoch <= epoch < 2**32")
    if not 0 < len(group.member_list) <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"a member list must be 1..{MAX_PAYLOAD_BYTES} bytes")


def _check_length(what: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise ValueError(f"{what} must be {length} bytes, got {len(value)}")


def _group_from_row(row: tuple[Any, ...]) -> StoredGroup:
    return StoredGroup(
        group_id=bytes(row[0]),
        name=row[1],
        admin_key=bytes(row[2]),
        epoch=row[3],
        member_list=bytes(row[4]),
        joined_epoch=row[5],
        state=GroupState(row[6]),
        created_ms=row[7],
    )
