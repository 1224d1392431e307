"""The data directory is trusted only when it is ours alone.

Whoever can write into it can plant a symbolic link where we are about to write
(``node.lock``, the certificate, ``tui.json``…) and turn our write into a write to
any file we can write, or swap the profile under us. So a data dir must be a
directory owned by us that nobody else can write; the ones we make are 0700,
missing parents included (``mkdir -p`` makes parents with the umask's mode).
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from p2pchat.store.errors import DataDirUnusable

_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def check_data_dir(path: Path) -> None:
    """``DataDirUnusable`` unless ``path`` is missing or a directory only we can write."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return  # made 0700 when a profile is created; until then nothing is written
    except OSError as exc:
        raise DataDirUnusable(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise DataDirUnusable(f"{path} is not a directory: pick another --data-dir")
    if info.st_uid != os.geteuid():
        raise DataDirUnusable(
            f"{path} belongs to another user (uid {info.st_uid}): use a directory of your own"
            " with --data-dir"
        )
    if info.st_mode & _WRITABLE_BY_OTHERS:
        raise DataDirUnusable(
            f"{path} is writable by other users, who could plant files in it:"
            f" run `chmod 700 {shlex.quote(str(path))}`"
        )


def make_data_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700; then :func:`check_data_dir`."""
    missing: list[Path] = []
    here = path
    while not os.path.lexists(here) and here != here.parent:
        missing.append(here)
        here = here.parent
    try:
        for directory in reversed(missing):
            directory.mkdir(mode=0o700, exist_ok=True)  # exists: made meanwhile
    except OSError as exc:
        raise DataDirUnusable(
            f"cannot create {path}: {exc.strerror}; use a directory you can write with --data-dir"
        ) from None
    check_data_dir(path)
    check_writable(path)


def check_writable(path: Path) -> None:
    """``DataDirUnusable`` unless we can write in the existing directory ``path``.

    The database (and its WAL), the lock and the certificate are all written there;
    saying so up front beats SQLite's "unable to open database file" or a traceback
    from the first write. ``access`` also sees a read-only mount or an immutable
    directory, which mode bits do not show (and root ignores).
    """
    if os.access(path, os.W_OK):
        return
    try:
        read_only_mount = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_mount = False
    why = "is on a read-only file system" if read_only_mount else "is not writable by you"
    raise DataDirUnusable(
        f"{path} {why}, and p2pchat writes its database and lock file there:"
        " use a writable directory with --data-dir"
    )
