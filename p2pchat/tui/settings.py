"""The TUI's own settings: a small JSON file, ``tui.json``, in the data directory.

The Profile stores only what the node needs (``keep_history``); front-end
preferences live beside it, readable by the owner only (0600). A missing or
unreadable file means the defaults: the TUI never refuses to start over it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

SETTINGS_NAME = "tui.json"


@dataclass(frozen=True)
class TuiSettings:
    notifications: bool = True  # bell, title and desktop notification for unseen messages


def settings_path(data_dir: Path) -> Path:
    return Path(data_dir) / SETTINGS_NAME


def load_settings(data_dir: Path) -> TuiSettings:
    try:
        doc = json.loads(settings_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return TuiSettings()
    if not isinstance(doc, dict):
        return TuiSettings()
    known = {f.name: f for f in fields(TuiSettings)}
    values = {k: v for k, v in doc.items() if k in known and isinstance(v, bool)}
    return TuiSettings(**values)


def save_settings(data_dir: Path, settings: TuiSettings) -> None:
    """Write atomically, 0600 from the start (never world-readable, even briefly)."""
    path = settings_path(data_dir)
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (json.dumps(asdict(settings), indent=2) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)
