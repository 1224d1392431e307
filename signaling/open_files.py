"""The process's open-file limit: raised to the hard limit at start.

Every connection costs a descriptor, and the soft limit is often 1,024 while the hard
limit is far higher. The servers (:mod:`signaling.connection_caps`) size their total
connection cap from the limit in force, so raise it before they start.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# When the hard limit is "unlimited" (macOS), the kernel still refuses more than its own
# per-process maximum: ask for this much, which every such kernel grants.
UNLIMITED_TARGET = 10240
# Where there is no resource module (not POSIX): a figure to size caps by.
UNKNOWN_LIMIT = 512


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (idempotent); the soft limit now
    in force. A refusal is logged at debug level and leaves the limit as it was."""
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX)
        return UNKNOWN_LIMIT
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return open_file_limit()
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.debug("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return open_file_limit()


def open_file_limit() -> int:
    """The soft RLIMIT_NOFILE in force ("unlimited" counts as ``UNLIMITED_TARGET``)."""
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX)
        return UNKNOWN_LIMIT
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else int(soft)
