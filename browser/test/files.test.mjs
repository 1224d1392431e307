// Files: tests/vectors/files-v1.json (the JS must produce and accept exactly the Python
// bytes), round trips, a whole in-memory transfer with resume, refusals with their codes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";

import { FrameType, concatBytes, decodeFrame, fromHex as hex, randomBytes, toHex } from "../src/crypto.js";
import { FileHasher, blake2b256, chunkNonce, openChunk, sealChunk } from "../src/file_crypto.js";
import { sanitizeFileName } from "../src/file_names.js";
import { IncomingTransfer, Outcome, OutgoingTransfer } from "../src/file_transfer.js";
import {
  CHUNK_HEADER_BYTES,
  ControlKind,
  FileControl,
  FileOffer,
  MAX_CHUNK_MESSAGE,
  decodeChunkHeader,
  decodeControl,
  decodeOffer,
  encodeChunkHeader,
} from "../src/file_wire.js";
import { REPO_ROOT } from "../test-support/helpers.mjs";

const V = JSON.parse(readFileSync(path.join(REPO_ROOT, "tests", "vectors", "files-v1.json"), "utf8"));
const TID = hex(V.transfer_id);
const KEY = hex(V.file_key);

function vectorFile() {
  const data = new Uint8Array(V.offer.size);
  for (let i = 0; i < data.length; i++) data[i] = (7 * i + 3) % 256;
  return data;
}

function vectorOffer() {
  const o = V.offer;
  return new FileOffer({
    size: o.size,
    blockBytes: o.block_bytes,
    fileHash: hex(o.file_hash),
    fileKey: KEY,
    mime: o.mime,
    name: o.name,
  });
}

function throwsCode(fn, code) {
  assert.throws(fn, (err) => {
    assert.equal(err.code, code, `${err.message}`);
    return true;
  });
}

// A seeded generator: the seed is printed when a test fails.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// -- vectors -------------------------------------------------------------------------

test("vectors: version 1, the file and its whole hash", () => {
  assert.equal(V.version, 1);
  assert.equal(toHex(blake2b256(vectorFile())), V.offer.file_hash);
  const hasher = new FileHasher();
  const file = vectorFile();
  for (let at = 0; at < file.length; at += 50_000) hasher.update(file.subarray(at, at + 50_000));
  assert.equal(toHex(hasher.digest()), V.offer.file_hash);
});

test("vectors: the offer encodes to the Python bytes and decodes back", () => {
  const offer = vectorOffer();
  assert.equal(toHex(offer.encode()), V.offer.encoded);
  const back = decodeOffer(hex(V.offer.encoded));
  assert.equal(back.size, V.offer.size);
  assert.equal(back.blockBytes, V.offer.block_bytes);
  assert.equal(toHex(back.fileHash), V.offer.file_hash);
  assert.equal(toHex(back.fileKey), V.file_key);
  assert.equal(back.mime, V.offer.mime);
  assert.equal(back.name, V.offer.name);
  assert.equal(back.blocks, V.blocks.length);
});

test("vectors: every control kind", () => {
  for (const c of V.controls) {
    assert.equal(ControlKind[c.name], c.kind);
    const control = new FileControl({ kind: c.kind, transferId: TID, value: c.value, reason: c.reason });
    assert.equal(toHex(control.encode()), c.encoded, c.name);
    const back = decodeControl(hex(c.encoded));
    assert.equal(back.kind, c.kind);
    assert.equal(toHex(back.transferId), V.transfer_id);
    assert.equal(back.value, c.value);
    assert.equal(back.reason, c.reason);
  }
});

test("vectors: every chunk's nonce, header, length and bytes", () => {
  const file = vectorFile();
  const out = new OutgoingTransfer(TID, KEY, V.offer.size, V.offer.block_bytes);
  const incoming = new IncomingTransfer(TID, decodeOffer(hex(V.offer.encoded)));
  for (const b of V.blocks) {
    const block = file.subarray(b.index * V.offer.block_bytes, b.index * V.offer.block_bytes + b.length);
    assert.equal(block.length, b.length);
    assert.equal(toHex(blake2b256(block)), b.blake2b);
    const messages = out.chunksOf(b.index, block);
    assert.equal(messages.length, b.chunks.length);
    b.chunks.forEach((c, i) => {
      const message = messages[i];
      assert.equal(toHex(chunkNonce(TID, b.index, c.chunk)), c.nonce);
      assert.equal(toHex(message.subarray(0, CHUNK_HEADER_BYTES)), c.header);
      assert.equal(message.length, c.length);
      assert.equal(toHex(blake2b256(message)), c.blake2b);
      if (c.message !== null) assert.equal(toHex(message), c.message);
      // libsodium directly: the Python ciphertext opens to the block's bytes (+ hash on the last).
      const plain = openChunk(KEY, hex(c.header), TID, b.index, c.chunk, message.subarray(CHUNK_HEADER_BYTES));
      const data = block.subarray(c.chunk * 65536, (c.chunk + 1) * 65536);
      const last = i === b.chunks.length - 1;
      assert.equal(toHex(plain), toHex(last ? concatBytes(data, hex(b.blake2b)) : data));
    });
    // The receiver takes the Python bytes.
    let ready = null;
    for (const m of messages) ready = incoming.receiveChunk(m);
    assert.equal(ready.kind, Outcome.READY);
    assert.equal(toHex(ready.data), toHex(block));
    incoming.blockWritten(b.index);
  }
  assert.ok(incoming.complete);
  assert.ok(incoming.wholeHashOk(blake2b256(file)));
});

test("vectors: sanitized names", () => {
  for (const n of V.names) {
    assert.equal(sanitizeFileName(n.offered), n.sanitized, JSON.stringify(n.offered));
    assert.equal(sanitizeFileName(n.sanitized), n.sanitized, "idempotent");
  }
});

test("names: more cases the node handles the same way", () => {
  const cases = [
    ["a/b\\c.txt", "a_b_c.txt"],
    ["a<b>c:d\"e|f?g*h", "a_b_c_d_e_f_g_h"],
    ["Con .tar.gz", "_Con .tar.gz"],
    ["com1", "_com1"],
    ["com10", "com10"],
    ["trailing. . ", "trailing"],
    [" . /x", "x"],
    ["\u2066x\u2069.png", "x.png"],
  ];
  for (const [offered, want] of cases) assert.equal(sanitizeFileName(offered), want, offered);
  const long = `${"é".repeat(150)}.verylongextension1`; // extension over 16 bytes: cut as a whole
  const got = sanitizeFileName(long);
  assert.ok(new TextEncoder().encode(got).length <= 200);
  assert.equal(got, "é".repeat(100));
});

// -- codecs: round trips and refusals --------------------------------------------------

test("offer: round trips at the bounds", () => {
  for (const [size, blockBytes, name] of [
    [0, 65536, "x"],
    [2 ** 40, 1048576, "n".repeat(255)],
    [1, 262144, "ünïcödé ✓"],
  ]) {
    const offer = new FileOffer({ size, blockBytes, fileHash: randomBytes(32), fileKey: randomBytes(32), mime: "", name });
    const back = decodeOffer(offer.encode());
    assert.deepEqual({ ...back }, { ...offer });
  }
});

test("offer: refusals and their codes", () => {
  const good = vectorOffer().encode();
  const patched = (at, bytes) => {
    const copy = good.slice();
    copy.set(bytes, at);
    return copy;
  };
  throwsCode(() => decodeOffer(good.subarray(0, 77)), "file-bad-offer");
  throwsCode(() => decodeOffer(patched(0, [2])), "file-version");
  throwsCode(() => decodeOffer(good.subarray(0, good.length - 1)), "file-bad-offer");
  throwsCode(() => decodeOffer(concatBytes(good, Uint8Array.of(0))), "file-bad-offer");
  throwsCode(() => decodeOffer(patched(1, [0, 0, 1, 0, 0, 0, 0, 1])), "file-bad-offer"); // 2^40 + 1
  throwsCode(() => decodeOffer(patched(9, [0, 0, 0x80, 0])), "file-bad-offer"); // 32 KiB blocks
  throwsCode(() => decodeOffer(patched(9, [0, 3, 0, 0])), "file-bad-offer"); // not a power of two
  throwsCode(() => decodeOffer(patched(78, [0x7f])), "file-bad-offer"); // DEL in the mime
  const nameAt = 78 + V.offer.mime.length + 2;
  throwsCode(() => decodeOffer(patched(nameAt, [0xff])), "file-bad-offer"); // not UTF-8
  const empty = concatBytes(good.subarray(0, nameAt - 2), Uint8Array.of(0, 0));
  throwsCode(() => decodeOffer(empty), "file-bad-offer");
  const long = concatBytes(good.subarray(0, nameAt - 2), Uint8Array.of(1, 0), new Uint8Array(256).fill(0x61));
  throwsCode(() => decodeOffer(long), "file-bad-offer");
  // Local misuse is a plain error, before anything is sent.
  assert.throws(() => new FileOffer({ ...vectorOffer(), name: "\ud800" }), RangeError);
  assert.throws(() => new FileOffer({ ...vectorOffer(), size: 2 ** 40 + 1 }), RangeError);
});

test("control: big values round trip exactly; refusals and their codes", () => {
  const max = 2n ** 64n - 1n;
  const c = new FileControl({ kind: ControlKind.ACK, transferId: TID, value: max });
  assert.equal(decodeControl(c.encode()).value, max);
  const good = hex(V.controls[3].encoded); // CANCEL "cancelled"
  const patched = (at, bytes) => {
    const copy = good.slice();
    copy.set(bytes, at);
    return copy;
  };
  throwsCode(() => decodeControl(good.subarray(0, 26)), "file-bad-control");
  throwsCode(() => decodeControl(patched(0, [9])), "file-version");
  throwsCode(() => decodeControl(good.subarray(0, good.length - 1)), "file-bad-control");
  throwsCode(() => decodeControl(patched(1, [7])), "file-bad-control"); // unknown kind
  throwsCode(() => decodeControl(patched(1, [0])), "file-bad-control");
  throwsCode(() => decodeControl(patched(27, [0x1b])), "file-bad-control"); // ESC in the reason
  throwsCode(() => decodeControl(patched(27, [0xc3])), "file-bad-control"); // not UTF-8
  const bidi = new TextEncoder().encode("a\u202eb");
  throwsCode(() => decodeControl(concatBytes(good.subarray(0, 26), Uint8Array.of(bidi.length), bidi)), "file-bad-control");
  const long = new Uint8Array(201).fill(0x61);
  throwsCode(() => decodeControl(concatBytes(good.subarray(0, 26), Uint8Array.of(201), long)), "file-bad-control");
  assert.throws(() => new FileControl({ kind: ControlKind.CANCEL, transferId: TID, reason: "x\u0085" }), RangeError);
});

test("chunk header: bounds, version, flags", () => {
  const header = encodeChunkHeader({ transferId: TID, block: 7, chunk: 3, last: true });
  const msg = (bytes, length) => concatBytes(bytes, new Uint8Array(length - bytes.length));
  assert.deepEqual(decodeChunkHeader(msg(header, 40)), { transferId: TID, block: 7, chunk: 3, last: true });
  throwsCode(() => decodeChunkHeader(msg(header, 39)), "file-bad-chunk");
  throwsCode(() => decodeChunkHeader(msg(header, MAX_CHUNK_MESSAGE + 1)), "file-bad-chunk");
  decodeChunkHeader(msg(header, MAX_CHUNK_MESSAGE));
  const v2 = header.slice();
  v2[0] = 2;
  throwsCode(() => decodeChunkHeader(msg(v2, 40)), "file-version");
  const flags = header.slice();
  flags[23] = 0x03;
  throwsCode(() => decodeChunkHeader(msg(flags, 40)), "file-bad-chunk");
});

test("chunk crypto: a flipped bit, a moved chunk or another key does not authenticate", () => {
  const header = encodeChunkHeader({ transferId: TID, block: 0, chunk: 0, last: false });
  const sealed = sealChunk(KEY, header, TID, 0, 0, Uint8Array.of(1, 2, 3));
  const body = sealed.subarray(CHUNK_HEADER_BYTES);
  assert.deepEqual([...openChunk(KEY, header, TID, 0, 0, body)], [1, 2, 3]);
  const flipped = body.slice();
  flipped[0] ^= 1;
  throwsCode(() => openChunk(KEY, header, TID, 0, 0, flipped), "file-bad-ciphertext");
  throwsCode(() => openChunk(KEY, header, TID, 0, 1, body), "file-bad-ciphertext");
  throwsCode(() => openChunk(randomBytes(32), header, TID, 0, 0, body), "file-bad-ciphertext");
});

// -- the two ends -----------------------------------------------------------------------

function freshTransfer(size, blockBytes = 65536) {
  const file = new Uint8Array(size); // libsodium's randombytes_buf is slow for megabytes
  for (let i = 0; i < size; i++) file[i] = (i * 131 + (i >>> 8) * 17) & 0xff;
  const transferId = randomBytes(16);
  const offer = new FileOffer({
    size,
    blockBytes,
    fileHash: blake2b256(file),
    fileKey: randomBytes(32),
    mime: "application/octet-stream",
    name: "f.bin",
  });
  const out = new OutgoingTransfer(transferId, offer.fileKey, size, blockBytes);
  return { file, transferId, offer, out };
}

function blockOf(file, t, index) {
  return file.subarray(index * t.blockBytes, index * t.blockBytes + t.blockLen(index));
}

test("transfer: whole file in memory with a resume and lost messages (seeded)", () => {
  const seed = Number(process.env.FILES_SEED ?? Math.floor(Math.random() * 2 ** 31));
  try {
    const random = rng(seed);
    const size = 65536 * 9 + Math.floor(random() * 200_000);
    const { file, transferId, offer, out } = freshTransfer(size);
    const kept = new Map(); // what the receiving page keeps: block -> bytes
    let inc = new IncomingTransfer(transferId, decodeOffer(offer.encode()));
    out.onAccept(decodeControl(inc.accept().encode()).value);
    let resumed = false;
    let rounds = 0;
    while (!out.doneSending) {
      assert.ok(rounds++ < 10_000, "no progress");
      const sent = out.blocksToSend();
      for (const index of sent) {
        for (const message of out.chunksOf(index, blockOf(file, out, index))) {
          if (random() < 0.05) continue; // lost with a connection: only a resume resends it
          const result = inc.receiveChunk(message);
          if (result.kind !== Outcome.READY) continue;
          kept.set(result.index, result.data);
          const ack = inc.blockWritten(result.index);
          if (random() < 0.9) out.onAck(decodeControl(ack.encode()).value); // else the ACK is lost
        }
      }
      if (!resumed && inc.verified >= 3) {
        // A reload of the receiver: a fresh state from what it kept, then a session open.
        resumed = true;
        inc = new IncomingTransfer(transferId, offer, { verifiedBlocks: inc.verified });
        out.onAccept(decodeControl(inc.accept().encode()).value);
      } else if (sent.length === 0) {
        // The window is stuck on a lost chunk or ACK: the next session open's ACCEPT.
        out.onAccept(decodeControl(inc.accept().encode()).value);
      }
    }
    assert.ok(inc.complete);
    assert.ok(resumed);
    const hasher = new FileHasher();
    for (let i = 0; i < inc.blocks; i++) hasher.update(kept.get(i));
    assert.ok(inc.wholeHashOk(hasher.digest()));
  } catch (err) {
    console.error(`files transfer test failed with FILES_SEED=${seed}`);
    throw err;
  }
});

test("transfer: window, duplicates, acks and their refusals", () => {
  const { file, transferId, offer, out } = freshTransfer(65536 * 6 + 10);
  const inc = new IncomingTransfer(transferId, offer);
  assert.equal(inc.blocks, 7);
  out.onAccept(0);
  assert.deepEqual(out.blocksToSend(), [0, 1, 2, 3]);
  assert.deepEqual(out.blocksToSend(), []);
  throwsCode(() => out.onAck(5), "file-bad-control"); // never sent
  throwsCode(() => out.onAccept(8), "file-bad-control"); // past the last block
  const b4 = new OutgoingTransfer(transferId, offer.fileKey, offer.size, offer.blockBytes).chunksOf(4, blockOf(file, out, 4));
  throwsCode(() => inc.receiveChunk(b4[0]), "file-out-of-window");
  const b1 = out.chunksOf(1, blockOf(file, out, 1));
  const r1 = inc.receiveChunk(b1[0]);
  assert.equal(r1.kind, Outcome.READY);
  assert.equal(inc.receiveChunk(b1[0]).kind, Outcome.DUPLICATE); // ready, not yet kept
  assert.equal(inc.blockWritten(1).value, 0); // kept past a gap: the ACK still says 0
  const r0 = inc.receiveChunk(out.chunksOf(0, blockOf(file, out, 0))[0]);
  assert.equal(inc.blockWritten(r0.index).value, 2);
  assert.equal(inc.receiveChunk(b1[0]).kind, Outcome.DUPLICATE); // verified
  out.onAck(2);
  out.onAck(1); // older: ignored
  assert.equal(out.acked, 2);
  assert.deepEqual(out.blocksToSend(), [4, 5]);
  assert.throws(() => inc.blockWritten(3), /not ready/);
  assert.throws(() => out.chunksOf(0, new Uint8Array(5)), /must be 65536 bytes/);
  // The last, short block: 10 bytes in one chunk.
  const last = out.chunksOf(6, blockOf(file, out, 6));
  assert.equal(last.length, 1);
  assert.equal(decodeChunkHeader(last[0]).last, true);
});

test("transfer: refusals of bad chunks with their codes", () => {
  const { file, transferId, offer, out } = freshTransfer(65536 * 2 + 100);
  const inc = new IncomingTransfer(transferId, offer);
  const [chunk] = out.chunksOf(0, blockOf(file, out, 0));
  const other = new OutgoingTransfer(randomBytes(16), offer.fileKey, offer.size, offer.blockBytes);
  throwsCode(() => inc.receiveChunk(other.chunksOf(0, blockOf(file, out, 0))[0]), "file-wrong-transfer");
  const header = (block, chunkIndex, last) => encodeChunkHeader({ transferId, block, chunk: chunkIndex, last });
  const fake = (h) => concatBytes(h, new Uint8Array(40));
  throwsCode(() => inc.receiveChunk(fake(header(3, 0, true))), "file-bad-chunk"); // no block 3
  throwsCode(() => inc.receiveChunk(fake(header(0, 1, true))), "file-bad-chunk"); // no chunk 0/1
  throwsCode(() => inc.receiveChunk(fake(header(0, 0, false))), "file-bad-chunk"); // wrong last flag
  const flipped = chunk.slice();
  flipped[100] ^= 0x40;
  throwsCode(() => inc.receiveChunk(flipped), "file-bad-ciphertext");
  // Authentic but the wrong length: sealed by someone with the key.
  const short = sealChunk(offer.fileKey, header(0, 0, true), transferId, 0, 0, new Uint8Array(10));
  throwsCode(() => inc.receiveChunk(short), "file-bad-chunk");
  // Authentic, right length, wrong block hash.
  const wrongHash = concatBytes(blockOf(file, out, 0), new Uint8Array(32));
  const bad = sealChunk(offer.fileKey, header(0, 0, true), transferId, 0, 0, wrongHash);
  throwsCode(() => inc.receiveChunk(bad), "file-bad-block-hash");
  // The real chunk still goes in after all that.
  assert.equal(inc.receiveChunk(chunk).kind, Outcome.READY);
});

test("frames: file frames are chat frames 8 and 9 with a body", () => {
  assert.equal(FrameType.FILE_OFFER, 8);
  assert.equal(FrameType.FILE_CONTROL, 9);
  const frame = concatBytes(Uint8Array.of(1, 8), new Uint8Array(24));
  assert.throws(() => decodeFrame(frame), (err) => err.code === "bad-frame");
  assert.equal(decodeFrame(concatBytes(frame, Uint8Array.of(1))).type, 8);
});

test("sender: an ACK sent before a restart counts and moves the window on", () => {
  const out = new OutgoingTransfer(randomBytes(16), randomBytes(32), 10 * 131072, 131072);
  out.onAccept(0);
  assert.deepEqual(out.blocksToSend(), [0, 1, 2, 3]);
  out.onAccept(1); // the receiver asks again from block 1 (a chunk damaged on the relay)
  out.onAck(3); // blocks 1 and 2 completed from chunks already on the way
  assert.equal(out.acked, 3);
  assert.deepEqual(out.blocksToSend(), [3, 4, 5, 6]);
  assert.throws(() => out.onAck(8), (err) => err.code === "file-bad-control");
});
