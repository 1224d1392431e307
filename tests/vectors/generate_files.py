"""Write tests/vectors/files-v1.json: known-answer vectors for the file wire objects.

Run by hand from the repository root when a file format changes on purpose
(``.venv/bin/python tests/vectors/generate_files.py``); tests/unit/test_file_vectors.py
checks the code against the file. Every input is fixed and the chunk nonces are
deterministic, so the output never changes. A browser guest (libsodium-wrappers:
crypto_aead_xchacha20poly1305_ietf_*, crypto_generichash 32) must produce the same bytes.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from p2pchat.protocol.file_crypto import blake2b_256, chunk_nonce
from p2pchat.protocol.file_names import sanitize_file_name
from p2pchat.protocol.file_transfer import OutgoingTransfer
from p2pchat.protocol.file_wire import ControlKind, DirectPath, FileControl, FileOffer

HERE = Path(__file__).parent
TRANSFER_ID = bytes(range(0xC0, 0xD0))
FILE_KEY = bytes(range(0x40, 0x60))
BLOCK = 131_072  # two chunks per block; the smallest allowed is 65 536
SIZE = BLOCK + 1000  # block 0: two full chunks; block 1: one chunk of 1000 bytes
REASONS = {ControlKind.CANCEL: "cancelled", ControlKind.FAIL: "hash ✗", ControlKind.DECLINE: ""}
NAMES = [
    "photo.jpg", "../../etc/passwd", "CON", "con.txt", "LPT9", "a" * 300, "bad\x00\x1f\x7f.txt",
    "\u202etxt.exe", ".hidden", "...", "", "///", "a" * 300 + ".jpeg", "é" * 150,
]  # fmt: skip


def plaintext(size: int) -> bytes:
    """Byte i is (7 i + 3) mod 256: easy to rebuild in any language."""
    return bytes((7 * i + 3) % 256 for i in range(size))


def build() -> dict[str, object]:
    data = plaintext(SIZE)
    offer = FileOffer(SIZE, BLOCK, blake2b_256(data), FILE_KEY, "text/plain", "Grüße ✓.txt")
    sender = OutgoingTransfer(TRANSFER_ID, FILE_KEY, SIZE, BLOCK)
    blocks = []
    for index in range(offer.blocks):
        block = data[index * BLOCK : (index + 1) * BLOCK]
        messages = sender.chunks_of(index, block)
        blocks.append(
            {
                "index": index,
                "length": len(block),
                "blake2b": blake2b_256(block).hex(),
                "chunks": [
                    {
                        "chunk": n,
                        "nonce": chunk_nonce(TRANSFER_ID, index, n).hex(),
                        "header": m[:24].hex(),
                        "length": len(m),
                        "blake2b": blake2b_256(m).hex(),
                        # whole messages only when short (a full chunk is 64 KiB)
                        "message": m.hex() if len(m) <= 2048 else None,
                    }
                    for n, m in enumerate(messages)
                ],
            }
        )
    controls = [
        {
            "kind": int(kind),
            "name": kind.name,
            "value": {ControlKind.ACCEPT: 1, ControlKind.ACK: 2, ControlKind.DONE: SIZE}.get(
                kind, 0
            ),
            "reason": REASONS.get(kind, ""),
        }
        for kind in ControlKind
        if kind is not ControlKind.DIRECT  # below: its body is binary
    ]
    for c in controls:
        control = FileControl(ControlKind(c["kind"]), TRANSFER_ID, c["value"], c["reason"])
        c["encoded"] = control.encode().hex()
    direct = [
        DirectPath(ipaddress.ip_address(address), port, bytes(range(0xE0, 0x100)))
        for address, port in (("192.168.1.20", 40_123), ("fd00::1:2", 65_535))
    ]
    return {
        "version": 1,
        "transfer_id": TRANSFER_ID.hex(),
        "file_key": FILE_KEY.hex(),
        "plaintext": "byte i = (7 * i + 3) % 256",
        "offer": {
            "size": offer.size,
            "block_bytes": offer.block_bytes,
            "file_hash": offer.file_hash.hex(),
            "mime": offer.mime,
            "name": offer.name,
            "encoded": offer.encode().hex(),
        },
        "controls": controls,
        "blocks": blocks,
        "names": [{"offered": n, "sanitized": sanitize_file_name(n)} for n in NAMES],
        "direct": [
            {
                "address": str(d.address),
                "port": d.port,
                "token": d.token.hex(),
                "encoded": FileControl.offer_direct(TRANSFER_ID, d).encode().hex(),
            }
            for d in direct
        ],
    }


def main() -> None:
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    (HERE / "files-v1.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
