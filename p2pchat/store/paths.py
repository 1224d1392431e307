"""Where a profile lives on disk.

A data directory holds one profile: ``profile.db`` (SQLCipher, WAL mode, so
``profile.db-wal`` and ``profile.db-shm`` appear beside it while it is open) and
``profile.salt`` (16 random bytes, the Argon2id salt; not secret).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from p2pchat.store.data_dir import check_data_dir

DATA_DIR_ENV = "P2PCHAT_HOME"


def resolve_data_dir(cli_value: str | None) -> Path:
    """The data directory: ``--data-dir`` value, else ``$P2PCHAT_HOME``, else the
    platform's user data directory (``~/.local/share/p2pchat`` on Linux).

    Every command finds its profile here, so this is where an untrustworthy data dir
    (another user's, or writable by others) is refused: ``DataDirUnusable``.
    """
    if cli_value:
        path = Path(cli_value).expanduser()
    elif os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV]).expanduser()
    else:
        path = Path(platformdirs.user_data_dir("p2pchat"))
    check_data_dir(path)
    return path


@dataclass(frozen=True)
class ProfilePaths:
    """The files of the profile in ``data_dir``."""

    data_dir: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "profile.db"

    @property
    def salt(self) -> Path:
        return self.data_dir / "profile.salt"

    @property
    def wal(self) -> Path:
        return self.data_dir / "profile.db-wal"

    @property
    def shm(self) -> Path:
        return self.data_dir / "profile.db-shm"

    def database_files(self) -> list[Path]:
        """The database and its WAL companions, whichever exist now."""
        return [p for p in (self.database, self.wal, self.shm) if p.exists()]
