"""node/file_io.py on a real file system: partial files, hashing, final names that
never overwrite, free space."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path

import pytest

from p2pchat.node import file_io
from p2pchat.node.file_io import (
    FREE_SPACE_MARGIN,
    PARTIAL_DIR_NAME,
    FileIoError,
    default_downloads_dir,
    has_room,
    hash_file,
    move_into_place,
    partial_dir,
    partial_path,
    read_block,
    truncate_partial,
    unique_path,
    write_block,
)

TRANSFER_ID = bytes(range(16))


def test_partial_dir_is_private_and_inside_downloads(tmp_path: Path) -> None:
    downloads = tmp_path / "not" / "yet"
    path = partial_path(downloads, TRANSFER_ID)
    assert path.parent == downloads / PARTIAL_DIR_NAME
    assert path.name == TRANSFER_ID.hex() + ".part"
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    os.chmod(path.parent, 0o755)  # widened by someone: made private again
    partial_dir(downloads)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_partial_dir_refuses_a_symlink_in_its_place(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    downloads = tmp_path / "dl"
    downloads.mkdir()
    (downloads / PARTIAL_DIR_NAME).symlink_to(elsewhere)
    with pytest.raises(FileIoError, match="not a directory"):
        partial_dir(downloads)


def test_blocks_written_out_of_order_then_truncated(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    blocks = [rng.randbytes(4096) for _ in range(5)]
    path = partial_path(tmp_path, TRANSFER_ID)
    with pytest.raises(FileNotFoundError):  # only an accept creates it (truncate_partial)
        write_block(path, 0, blocks[0])
    truncate_partial(path, 0)
    for index in (3, 0, 4, 1, 2):
        write_block(path, index * 4096, blocks[index])
    assert path.read_bytes() == b"".join(blocks), f"seed {seed}"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    truncate_partial(path, 2 * 4096)  # only two blocks were recorded as verified
    assert path.read_bytes() == blocks[0] + blocks[1], f"seed {seed}"
    assert read_block(path, 4096, 4096) == blocks[1]
    with pytest.raises(FileIoError, match="shorter"):
        read_block(path, 4096, 8192)


def test_truncate_creates_a_missing_partial(tmp_path: Path) -> None:
    path = partial_path(tmp_path, TRANSFER_ID)
    truncate_partial(path, 0)
    assert path.read_bytes() == b""


def test_write_block_does_not_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_bytes(b"keep me")
    path = partial_path(tmp_path, TRANSFER_ID)
    path.symlink_to(target)
    with pytest.raises(OSError, match="symbolic links"):  # ELOOP: O_NOFOLLOW
        write_block(path, 0, b"x")
    assert target.read_bytes() == b"keep me"


def test_hash_file_is_blake2b_256(tmp_path: Path) -> None:
    data = os.urandom(3 * file_io.HASH_READ_BYTES + 17)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == hashlib.blake2b(data, digest_size=32).digest()
    assert hash_file(path, length=100) == hashlib.blake2b(data[:100], digest_size=32).digest()


def test_unique_path_never_reuses_a_name(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"old")
    first = unique_path(tmp_path, "photo.jpg")
    second = unique_path(tmp_path, "photo.jpg")
    assert (first.name, second.name) == ("photo (1).jpg", "photo (2).jpg")
    assert (tmp_path / "photo.jpg").read_bytes() == b"old"
    assert unique_path(tmp_path, ".hidden").name == ".hidden"
    assert unique_path(tmp_path, ".hidden").name == ".hidden (1)"
    assert unique_path(tmp_path, "noext").name == "noext"


def test_unique_path_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_io, "MAX_UNIQUE_TRIES", 3)
    for _ in range(3):
        unique_path(tmp_path, "a.txt")
    with pytest.raises(FileIoError, match="already holds 3 files"):
        unique_path(tmp_path, "a.txt")


@pytest.mark.parametrize("links", [True, False])
def test_move_into_place_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:  # a file system without hard links: the placeholder-then-rename way

        def no_link(src: object, dst: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    downloads = tmp_path / "dl"
    downloads.mkdir()
    (downloads / "a.txt").write_bytes(b"mine")
    partial = partial_path(downloads, TRANSFER_ID)
    truncate_partial(partial, 0)
    write_block(partial, 0, b"theirs")
    final = move_into_place(partial, downloads, "a.txt")
    assert final == downloads / "a (1).txt"
    assert final.read_bytes() == b"theirs"
    assert (downloads / "a.txt").read_bytes() == b"mine"
    assert not partial.exists()


def test_room_counts_what_is_still_to_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert file_io.free_bytes(tmp_path / "missing" / "child") > 0  # the nearest parent
    free = 10 * FREE_SPACE_MARGIN  # fixed: other processes change the real figure
    monkeypatch.setattr(file_io, "free_bytes", lambda directory: free)
    assert has_room(tmp_path, free - FREE_SPACE_MARGIN)
    assert not has_room(tmp_path, free - FREE_SPACE_MARGIN + 1)
    assert has_room(tmp_path, 2 * free, already=free + FREE_SPACE_MARGIN)


def test_default_downloads_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(tmp_path / "Dl"))
    assert default_downloads_dir() == tmp_path / "Dl"
