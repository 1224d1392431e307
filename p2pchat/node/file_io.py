"""The disk side of file transfers: partial files, fsync'ed blocks, the final name.

Blocking functions (they touch the disk): the node calls them through
``asyncio.to_thread`` so that chat stays responsive during a transfer. Nothing
here ever overwrites a file: the final name is taken with O_EXCL (an empty
placeholder, stored, then the verified partial file renamed over it),
"name (1).ext" when the name is taken. Only an accept creates a partial file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

PARTIAL_DIR_NAME = ".p2pchat-partial"
PARTIAL_SUFFIX = ".part"
PARTIAL_DIR_MODE = 0o700
FILE_MODE = 0o600  # a received file is the user's: umask may widen nothing else
HASH_READ_BYTES = 1024 * 1024
MAX_UNIQUE_TRIES = 1000  # "name (1).ext" .. "name (999).ext", then we give up
# Room left on the disk past the file itself when we accept one (the store, the system).
FREE_SPACE_MARGIN = 64 * 1024 * 1024


class FileIoError(OSError):
    """A disk problem the user can act on; ``str()`` is one line."""


def default_downloads_dir() -> Path:
    """The user's downloads folder (platformdirs): ~/Downloads or the XDG setting."""
    import platformdirs

    return Path(platformdirs.user_downloads_dir())


def partial_dir(downloads: Path) -> Path:
    """``<downloads>/.p2pchat-partial`` (mode 0700), made if missing (the downloads dir too)."""
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / PARTIAL_DIR_NAME
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PARTIAL_DIR_MODE)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):  # a symlink or a file in its place: not ours
        raise FileIoError(f"{path} exists and is not a directory: move it away")
    if stat.S_IMODE(info.st_mode) != PARTIAL_DIR_MODE:
        os.chmod(path, PARTIAL_DIR_MODE)
    return path


def partial_path(downloads: Path, transfer_id: bytes) -> Path:
    return partial_dir(downloads) / (transfer_id.hex() + PARTIAL_SUFFIX)


def write_block(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` of ``path``, then fsync. Never creates it (only an
    accept does): a cancel's unlink is not undone by a write still in its thread."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_partial(path: Path, length: int) -> None:
    """Cut ``path`` (created if missing) to ``length`` bytes: what was verified, no more."""
    fd = _open_partial(path)
    try:
        if os.fstat(fd).st_size != length:
            os.ftruncate(fd, length)
            os.fsync(fd)
    finally:
        os.close(fd)


def resume_partial(path: Path, length: int, block_bytes: int) -> int:
    """At a resume: cut ``path`` to the ``length`` bytes verified, or, when it holds
    less (lost, cut short), to its whole blocks: it is never extended, since a
    missing tail is not zeros. Returns its length now; a missing file is made empty."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, FILE_MODE)
    try:
        held = os.fstat(fd).st_size
        keep = length if held >= length else held // block_bytes * block_bytes
        if held != keep:
            os.ftruncate(fd, keep)
            os.fsync(fd)
        return keep
    finally:
        os.close(fd)


def claim_final_name(directory: Path, name: str, *, earlier: Path | None = None) -> Path:
    """The received file's final path in ``directory``, taken now (an empty 0600
    placeholder, never an existing file): stored before ``place`` renames over it.
    ``earlier``: the one claimed before a crash, kept while it is still our placeholder."""
    if earlier is not None:
        with contextlib.suppress(OSError):
            info = os.lstat(earlier)
            if stat.S_ISREG(info.st_mode) and info.st_size == 0:
                return earlier
    directory.mkdir(parents=True, exist_ok=True)
    return unique_path(directory, name)


def place(partial: Path, final: Path) -> None:
    """The verified ``partial`` takes ``final``'s name (our placeholder), durably."""
    os.replace(partial, final)
    _fsync_dir(final.parent)


def exists(path: Path) -> bool:
    return os.path.lexists(path)


def remove_orphan_partials(directories: Iterable[Path], keep: set[str]) -> int:
    """Delete the ``<id>.part`` files in these partial dirs whose name is not in
    ``keep`` (what was left by a transfer that ended or was forgotten); the count."""
    removed = 0
    for directory in directories:
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                continue
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            stem = name.removesuffix(PARTIAL_SUFFIX)
            if name in keep or stem == name or len(stem) != 32:
                continue
            if any(c not in "0123456789abcdef" for c in stem):
                continue
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
                removed += 1
    return removed


def remove_partial(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def hash_file(
    path: Path, *, length: int | None = None, progress: Callable[[int], None] | None = None
) -> bytes:
    """BLAKE2b-256 of ``path`` (its first ``length`` bytes), read in 1 MiB blocks;
    ``progress(bytes hashed so far)`` after each (called in this thread)."""
    digest = hashlib.blake2b(digest_size=32)
    left = length
    done = 0
    with open(path, "rb") as file:
        while left is None or left > 0:
            want = HASH_READ_BYTES if left is None else min(HASH_READ_BYTES, left)
            data = file.read(want)
            if not data:
                break
            digest.update(data)
            done += len(data)
            if left is not None:
                left -= len(data)
            if progress is not None:
                progress(done)
    return digest.digest()


def read_block(path: Path, offset: int, length: int) -> bytes:
    """``length`` bytes of ``path`` from ``offset``; ``FileIoError`` if it is shorter now."""
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(length)
    if len(data) != length:
        raise FileIoError(f"{path} is shorter than when it was offered")
    return data


SourceStamp = tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_size
SOURCE_CHANGED = "the file changed since it was offered"


def stamp_of(info: os.stat_result) -> SourceStamp:
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def source_stamp(path: Path) -> SourceStamp:
    return stamp_of(os.stat(path))


def open_source(path: Path, stamp: SourceStamp | None, size: int) -> int:
    """The file being sent, opened once for a send: ``FileIoError`` unless it is
    still the file offered (the same inode, mtime and size)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        check_source(fd, stamp, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_source(fd: int, stamp: SourceStamp | None, size: int) -> None:
    """Other bytes would go out under the same key and nonces: never send them."""
    now = stamp_of(os.fstat(fd))
    if now[3] != size or (stamp is not None and now != tuple(stamp)):
        raise FileIoError(SOURCE_CHANGED)


def read_source_block(
    fd: int, stamp: SourceStamp | None, size: int, offset: int, length: int
) -> bytes:
    """``length`` bytes at ``offset`` of the open source, checked unchanged first."""
    check_source(fd, stamp, size)
    parts: list[bytes] = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            raise FileIoError(SOURCE_CHANGED)
        parts.append(data)
        offset, length = offset + len(data), length - len(data)
    return b"".join(parts)


def unique_path(directory: Path, name: str) -> Path:
    """Create an empty file named ``name`` in ``directory`` (O_EXCL: never an existing
    one), or "name (1).ext", "name (2).ext"...; return its path."""
    for candidate in _candidates(directory, name):
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileIoError(f"{directory} already holds {MAX_UNIQUE_TRIES} files named like {name!r}")


def move_into_place(partial: Path, directory: Path, name: str) -> Path:
    """Give the verified ``partial`` its final name in ``directory`` (never overwriting
    anything); return the path it now has."""
    directory.mkdir(parents=True, exist_ok=True)
    for candidate in _candidates(directory, name):
        try:
            os.link(partial, candidate)  # atomic, and fails if the name is taken
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            break  # no hard links here (e.g. FAT): a placeholder, then a rename over it
        else:
            remove_partial(partial)
            _fsync_dir(directory)
            return candidate
    final = unique_path(directory, name)
    os.replace(partial, final)
    _fsync_dir(directory)
    return final


def free_bytes(directory: Path) -> int:
    """Free bytes on the file system of ``directory`` (or of its nearest existing parent)."""
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def has_room(directory: Path, size: int, *, already: int = 0) -> bool:
    """Room for the ``size - already`` bytes still to come, plus the margin."""
    return free_bytes(directory) >= max(0, size - already) + FREE_SPACE_MARGIN


# -- private -----------------------------------------------------------------


def _open_partial(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)


def _candidates(directory: Path, name: str) -> list[Path]:
    stem, ext = _split_extension(name)
    return [directory / name] + [
        directory / f"{stem} ({n}){ext}" for n in range(1, MAX_UNIQUE_TRIES)
    ]


def _split_extension(name: str) -> tuple[str, str]:
    stem, ext = os.path.splitext(name)
    if not stem:  # ".bashrc" has no extension, whatever splitext says of others
        return name, ""
    return stem, ext


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
