"""The file code against tests/vectors/files-v1.json (the browser guest checks the same
file later with libsodium-wrappers)."""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import json
from pathlib import Path
from typing import Any

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

from p2pchat.protocol.file_names import sanitize_file_name
from p2pchat.protocol.file_transfer import BlockReady, IncomingTransfer, OutgoingTransfer
from p2pchat.protocol.file_wire import (
    ControlKind,
    DirectPath,
    FileControl,
    decode_control,
    decode_offer,
)

ROOT = Path(__file__).parents[2]
V: dict[str, Any] = json.loads((ROOT / "tests/vectors/files-v1.json").read_text(encoding="utf-8"))
h = bytes.fromhex


def plaintext(size: int) -> bytes:
    return bytes((7 * i + 3) % 256 for i in range(size))


def test_the_generator_reproduces_the_file() -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_files", ROOT / "tests/vectors/generate_files.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == V


def test_offer_vector() -> None:
    o = V["offer"]
    offer = decode_offer(h(o["encoded"]))
    assert (offer.size, offer.block_bytes, offer.mime, offer.name) == (
        o["size"], o["block_bytes"], o["mime"], o["name"]
    )  # fmt: skip
    assert offer.file_key == h(V["file_key"])
    assert offer.file_hash == h(o["file_hash"])
    assert offer.file_hash == hashlib.blake2b(plaintext(o["size"]), digest_size=32).digest()


def test_control_vectors() -> None:
    assert [c["kind"] for c in V["controls"]] == [
        int(k) for k in ControlKind if k is not ControlKind.DIRECT
    ]
    for c in V["controls"]:
        want = FileControl(ControlKind(c["kind"]), h(V["transfer_id"]), c["value"], c["reason"])
        assert decode_control(h(c["encoded"])) == want
        assert want.encode() == h(c["encoded"])


def test_direct_vectors() -> None:
    """DIRECT: value = port; the reason's place holds token (32) || IPv4 (4) or IPv6 (16)."""
    tid = h(V["transfer_id"])
    for d in V["direct"]:
        path = DirectPath(ipaddress.ip_address(d["address"]), d["port"], h(d["token"]))
        encoded = h(d["encoded"])
        assert encoded[2:18] == tid
        assert int.from_bytes(encoded[18:26], "big") == d["port"]
        assert encoded[27:] == h(d["token"]) + path.address.packed
        assert decode_control(encoded) == FileControl.offer_direct(tid, path)
        assert FileControl.offer_direct(tid, path).encode() == encoded


def test_chunk_vectors_with_libsodium_directly() -> None:
    """Nonce and AD exactly as documented, opened without our own chunk code."""
    tid, key = h(V["transfer_id"]), h(V["file_key"])
    data = plaintext(V["offer"]["size"])
    block_bytes = V["offer"]["block_bytes"]
    for b in V["blocks"]:
        index = b["index"]
        block = data[index * block_bytes : index * block_bytes + b["length"]]
        assert hashlib.blake2b(block, digest_size=32).hexdigest() == b["blake2b"]
        messages = OutgoingTransfer(tid, key, len(data), block_bytes).chunks_of(index, block)
        assert len(messages) == len(b["chunks"])
        for c, message in zip(b["chunks"], messages, strict=True):
            assert h(c["nonce"]) == tid + index.to_bytes(4, "big") + c["chunk"].to_bytes(
                2, "big"
            ) + bytes(2)
            assert message[:24].hex() == c["header"]
            assert len(message) == c["length"]
            assert hashlib.blake2b(message, digest_size=32).hexdigest() == c["blake2b"]
            if c["message"] is not None:
                assert message.hex() == c["message"]
            plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
                message[24:], message[:24], h(c["nonce"]), key
            )
            start = c["chunk"] * 65_536
            if c is b["chunks"][-1]:
                assert plain[-32:].hex() == b["blake2b"]
                plain = plain[:-32]
            assert plain == block[start : start + 65_536]


def test_the_receiver_takes_the_vector_transfer() -> None:
    tid = h(V["transfer_id"])
    offer = decode_offer(h(V["offer"]["encoded"]))
    inc = IncomingTransfer(tid, offer)
    out = OutgoingTransfer(tid, offer.file_key, offer.size, offer.block_bytes)
    data = plaintext(offer.size)
    written = b""
    for index in out.blocks_to_send():
        block = data[index * offer.block_bytes : (index + 1) * offer.block_bytes]
        for message in out.chunks_of(index, block):
            outcome = inc.receive_chunk(message)
        assert isinstance(outcome, BlockReady)
        written += outcome.data
        inc.block_written(index)
    assert inc.complete
    assert inc.whole_hash_ok(hashlib.blake2b(written, digest_size=32).digest())


def test_name_vectors() -> None:
    for case in V["names"]:
        assert sanitize_file_name(case["offered"]) == case["sanitized"]


def test_the_doc_lists_every_code() -> None:
    doc = (ROOT / "docs/protocol.md").read_text(encoding="utf-8")
    files = doc[doc.index("## Files") : doc.index("## Known-answer vectors")]
    codes = {
        "file-version", "file-bad-offer", "file-bad-control", "file-bad-chunk",
        "file-wrong-transfer", "file-out-of-window", "file-bad-ciphertext", "file-bad-block-hash",
    }  # fmt: skip
    for code in codes:
        assert f"`{code}`" in files, code
    assert V["transfer_id"][:4] == "c0c1"
    assert "132 072" in files
