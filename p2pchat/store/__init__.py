"""Encrypted profile store: one SQLCipher database per profile.

Public API::

    create_profile(data_dir, passphrase, *, name, identity_seed, keep_history=True)
    open_profile(data_dir, passphrase)
    profile_exists(data_dir)
    resolve_data_dir(cli_value)

See profile.py for what no-history mode keeps and loses.
"""

from p2pchat.store.conversation_id import (
    contact_conversation_id,
    contact_key_of,
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
    StoreError,
    WrongPassphrase,
)
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
    Contact,
    ConversationSummary,
    DeliveryState,
    Direction,
    OutboxEntry,
    SearchHit,
    Settings,
    StoredIdentity,
    StoredMessage,
    TrustState,
)

__all__ = [
    "DEFAULT_KDF_LIMITS",
    "MAX_OUTBOX_PER_CONVERSATION",
    "Contact",
    "ConversationSummary",
    "DataDirUnusable",
    "DeliveryState",
    "Direction",
    "DiskFull",
    "InvalidSearchQuery",
    "KdfLimits",
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
    "StoreError",
    "StoredIdentity",
    "StoredMessage",
    "TrustState",
    "WrongPassphrase",
    "contact_conversation_id",
    "contact_key_of",
    "create_profile",
    "guest_conversation_id",
    "open_profile",
    "profile_exists",
    "resolve_data_dir",
]
