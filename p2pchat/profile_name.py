"""The bound on a profile's name, in its own module: the TUI's first-run screen
checks it without importing ``commands.profile`` (and with it PyNaCl)."""

from __future__ import annotations

MAX_NAME_BYTES = 64  # UTF-8 bytes; the name travels in the mDNS TXT record (discovery/txt.py)
