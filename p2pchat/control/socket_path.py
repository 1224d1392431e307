"""Where the control socket lives, and how to name it to the kernel.

The socket is ``<data_dir>/control.sock``. A Unix socket address is at most 107
bytes on Linux, and data directories can be deeper than that; a longer path is
reached through ``/proc/self/fd/<dir fd>/control.sock``, which the kernel
resolves like any other path, without a process-wide ``chdir``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SOCKET_NAME = "control.sock"
_MAX_SUN_PATH_BYTES = 107  # sizeof(sun_path) - 1 for the terminating NUL


def control_socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """A string to ``bind``/``connect`` that names ``path``, valid inside the block."""
    text = os.fspath(path)
    if len(os.fsencode(text)) <= _MAX_SUN_PATH_BYTES:
        yield text
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        short = f"/proc/self/fd/{directory}/{path.name}"
        if len(os.fsencode(short)) > _MAX_SUN_PATH_BYTES:
            raise OSError(f"socket file name too long: {path.name}")
        yield short
    finally:
        os.close(directory)
