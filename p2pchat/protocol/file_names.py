"""A received file name made safe to create in the downloads directory.

The offered name comes from the peer: it must not climb out of the directory, hide
itself, pose as a Windows device, fool the eye (bidi overrides) or overflow a file
system's name limit. ``unique_path`` (node/file_io.py) then makes it never overwrite.
"""

from __future__ import annotations

import re
import unicodedata

from p2pchat.protocol.file_wire import BIDI_CONTROLS

MAX_SAFE_NAME_BYTES = 200
MAX_EXTENSION_BYTES = 16  # kept when a long name is cut (".tar.gz" counts as ".gz")
FALLBACK_NAME = "file"
_SEPARATORS = re.compile(r"[/\\]+")
# Characters Windows refuses in names; replaced so a name works everywhere.
_WINDOWS_RESERVED = frozenset('<>:"|?*')
_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{n}" for n in range(1, 10)}
    | {f"lpt{n}" for n in range(1, 10)}
)


def _keep(c: str) -> bool:
    return unicodedata.category(c) not in ("Cc", "Cs") and c not in BIDI_CONTROLS


def _cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-8 bytes (at a character edge)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _trim(name: str) -> str:
    return name.lstrip(".").rstrip(". ")


def sanitize_file_name(name: str) -> str:
    """A name with no path, no control or bidi characters, not hidden, not a device,
    at most 200 UTF-8 bytes (keeping a short extension); "file" if nothing is left."""
    name = "".join(c for c in name if _keep(c))
    # Each path component stays, joined with "_", except empty, "." and ".." ones.
    parts = [p for p in _SEPARATORS.split(name) if p.strip(" ") not in ("", ".", "..")]
    name = "_".join(parts)
    name = "".join("_" if c in _WINDOWS_RESERVED else c for c in name)
    name = _trim(name)
    if len(name.encode("utf-8")) > MAX_SAFE_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        suffix = dot + ext
        if not stem or len(suffix.encode("utf-8")) > MAX_EXTENSION_BYTES:
            stem, suffix = name, ""
        room = MAX_SAFE_NAME_BYTES - len(suffix.encode("utf-8"))
        name = _trim(_cut_utf8(stem, room)) + suffix
        name = _trim(name)
    if not name:
        return FALLBACK_NAME
    # Windows opens a device for "CON", "con.txt" and "Con .tar.gz" alike.
    if name.split(".", 1)[0].rstrip(" ").lower() in _DEVICES:
        name = "_" + name
    return name
