"""Write tests/vectors/files-group-v2.json: known-answer vectors for a group's file offer.

A file sent to a group is offered to each member with a version-2 offer: the
version-1 layout (tests/vectors/files-v1.json) with version byte 2, then the group's
16-byte id. Run by hand from the repository root when the format changes on purpose
(``.venv/bin/python tests/vectors/generate_group_files.py``);
tests/unit/test_file_group_offer.py checks the code against the file. Browser guests
are never offered a group's file, so only Python reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

from p2pchat.protocol.file_wire import FileOffer

HERE = Path(__file__).parent
GROUP_ID = bytes(range(0xA0, 0xB0))
FILE_KEY = bytes(range(0x40, 0x60))
FILE_HASH = bytes(range(0x10, 0x30))


def build() -> dict[str, object]:
    offers = []
    for size, mime, name in ((5_000_000, "image/jpeg", "Grüße ✓.jpg"), (0, "", "empty")):
        v1 = FileOffer(size, 262_144, FILE_HASH, FILE_KEY, mime, name)
        v2 = FileOffer(size, 262_144, FILE_HASH, FILE_KEY, mime, name, GROUP_ID)
        offers.append(
            {"size": size, "block_bytes": 262_144, "mime": mime, "name": name,
             "v1": v1.encode().hex(), "encoded": v2.encode().hex()}
        )  # fmt: skip
    return {
        "version": 2,
        "group_id": GROUP_ID.hex(),
        "file_key": FILE_KEY.hex(),
        "file_hash": FILE_HASH.hex(),
        "offers": offers,
    }


def main() -> None:
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    (HERE / "files-group-v2.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
