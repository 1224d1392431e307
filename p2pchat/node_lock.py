"""One node per profile: an exclusive ``flock`` on ``node.lock`` in the data dir.

The lock file takes our PID, so it is opened with ``O_NOFOLLOW`` and must be a plain
file of ours with a single link: a link planted in the data dir must not turn that
write into a write to another file. It is emptied only once the lock is ours, so a
second node never wipes the first one's PID.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from p2pchat.errors import UserError

LOCK_NAME = "node.lock"


class NodeLock:
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UserError(
                    f"{self._path} is a symbolic link, which p2pchat will not write through:"
                    " remove it (and find out who made it)"
                ) from None
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise UserError(
                    f"cannot write {self._path} ({exc.strerror}): p2pchat needs a data"
                    " directory it can write; use another one with --data-dir"
                ) from None
            raise UserError(f"cannot open {self._path}: {exc.strerror}") from None
        try:
            self._check_plain_file(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(
                f"p2pchat is already running for {self._path.parent} (pid {other}):"
                " use `p2pchat peers`, `p2pchat send` ... to talk to it"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _check_plain_file(self, fd: int) -> None:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            raise UserError(f"{self._path} is not a plain file of yours: remove it")
