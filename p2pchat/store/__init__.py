"""Encrypted profile store: one SQLCipher database per profile.

Public API::

    create_profile(data_dir, passphrase, *, name, identity_seed, keep_history=True)
    open_profile(data_dir, passphrase)
    profile_exists(data_dir)
    resolve_data_dir(cli_value)

See profile.py for what no-history mode keeps and loses.

The names load on first use (PEP 562): ``p2pchat.store.paths`` or ``.errors`` alone
must not pull in SQLCipher and PyNaCl (~30 ms), which the TUI's first screen does
not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2pchat.store.conversation_id import (
        contact_conversation_id,
        contact_key_of,
        group_conversation_id,
        group_id_of,
        guest_conversation_id,
    )
    from p2pchat.store.errors import (
        DataDirUnusable,
        DiskFull,
        InvalidSearchQuery,
        OutboxFull,
        ProfileCorrupt,
        ProfileExists,
        ProfileNotFound,
        ProfileTooNew,
        StaleGroupList,
        StoreError,
        TooManyGroups,
        TooManyTransfers,
        WrongPassphrase,
    )
    from p2pchat.store.files import MAX_UNFINISHED_PER_PEER, FileStore
    from p2pchat.store.groups import MAX_GROUPS, GroupStore
    from p2pchat.store.keys import DEFAULT_KDF_LIMITS, KdfLimits
    from p2pchat.store.paths import ProfilePaths, resolve_data_dir
    from p2pchat.store.profile import (
        MAX_OUTBOX_PER_CONVERSATION,
        Profile,
        create_profile,
        open_profile,
        profile_exists,
    )
    from p2pchat.store.records import (
        ChainState,
        Contact,
        ConversationSummary,
        DeliveryState,
        Direction,
        GroupState,
        MessageKind,
        OutboxEntry,
        SearchHit,
        Settings,
        StoredGroup,
        StoredIdentity,
        StoredMessage,
        StoredTransfer,
        TransferDirection,
        TransferState,
        TrustState,
    )

_NAMES_IN = {
    "conversation_id": "contact_conversation_id contact_key_of group_conversation_id group_id_of"
    " guest_conversation_id",
    "errors": "DataDirUnusable DiskFull InvalidSearchQuery OutboxFull ProfileCorrupt"
    " ProfileExists ProfileNotFound ProfileTooNew StaleGroupList StoreError TooManyGroups"
    " TooManyTransfers WrongPassphrase",
    "files": "MAX_UNFINISHED_PER_PEER FileStore",
    "groups": "MAX_GROUPS GroupStore",
    "keys": "DEFAULT_KDF_LIMITS KdfLimits",
    "paths": "ProfilePaths resolve_data_dir",
    "profile": "MAX_OUTBOX_PER_CONVERSATION Profile create_profile open_profile profile_exists",
    "records": "ChainState Contact ConversationSummary DeliveryState Direction GroupState"
    " MessageKind OutboxEntry SearchHit Settings StoredGroup StoredIdentity StoredMessage"
    " StoredTransfer TransferDirection TransferState TrustState",
}
_MODULE_OF = {name: module for module, names in _NAMES_IN.items() for name in names.split()}


if not TYPE_CHECKING:  # mypy sees the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> object:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # once: later lookups skip this function
        return value


__all__ = [
    "DEFAULT_KDF_LIMITS",
    "MAX_GROUPS",
    "MAX_OUTBOX_PER_CONVERSATION",
    "MAX_UNFINISHED_PER_PEER",
    "ChainState",
    "Contact",
    "ConversationSummary",
    "DataDirUnusable",
    "DeliveryState",
    "Direction",
    "DiskFull",
    "FileStore",
    "GroupState",
    "GroupStore",
    "InvalidSearchQuery",
    "KdfLimits",
    "MessageKind",
    "OutboxEntry",
    "OutboxFull",
    "Profile",
    "ProfileCorrupt",
    "ProfileExists",
    "ProfileNotFound",
    "ProfilePaths",
    "ProfileTooNew",
    "SearchHit",
    "Settings",
    "StaleGroupList",
    "StoreError",
    "StoredGroup",
    "StoredIdentity",
    "StoredMessage",
    "StoredTransfer",
    "TooManyGroups",
    "TooManyTransfers",
    "TransferDirection",
    "TransferState",
    "TrustState",
    "WrongPassphrase",
    "contact_conversation_id",
    "contact_key_of",
    "create_profile",
    "group_conversation_id",
    "group_id_of",
    "guest_conversation_id",
    "open_profile",
    "profile_exists",
    "resolve_data_dir",
]
