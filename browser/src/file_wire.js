// File transfer wire objects: the offer, the controls and the chunk header (pure codecs).
//
// Mirrors p2pchat/protocol/file_wire.py byte for byte, with the same bounds and error
// codes (docs/protocol.md "Files"; pinned by tests/vectors/files-v1.json). Offer and
// controls travel as chat frames 8 and 9 inside the secret stream; a chunk is one binary
// message on the files channel, outside it (file_transfer.js encrypts it).

import { RemoteProtocolError, utf8Decode, utf8Encode } from "./crypto.js";

export const FILE_VERSION = 1;
export const TRANSFER_ID_BYTES = 16;
export const HASH_BYTES = 32; // BLAKE2b-256
export const KEY_BYTES = 32; // XChaCha20-Poly1305-IETF key
export const TAG_BYTES = 16; // Poly1305 tag
export const BLOCK_BYTES = 262_144; // what we offer: 256 KiB
export const MIN_BLOCK_BYTES = 65_536;
export const MAX_BLOCK_BYTES = 1_048_576;
export const CHUNK_BYTES = 65_536; // plaintext per chunk (the last of a block carries the block hash too)
export const WINDOW_BLOCKS = 4; // blocks sent but not acknowledged
export const MAX_FILE_BYTES = 2 ** 40; // 1 TiB
export const MAX_NAME_BYTES = 255; // on the wire; sanitized on receipt to 200 (file_names.js)
export const MAX_MIME_BYTES = 255;
export const MAX_REASON_BYTES = 200;
export const MAX_U64 = 2n ** 64n - 1n;

const OFFER_HEAD_BYTES = 1 + 8 + 4 + 32 + 32 + 1; // version size block_bytes hash key mime_len
const CONTROL_HEAD_BYTES = 1 + 1 + 16 + 8 + 1; // version kind transfer_id value reason_len
export const CHUNK_HEADER_BYTES = 1 + 16 + 4 + 2 + 1; // version transfer_id block chunk flags
export const FLAG_LAST = 0x01; // the last chunk of its block (carries the block hash)
export const MAX_CHUNK_MESSAGE = CHUNK_HEADER_BYTES + CHUNK_BYTES + HASH_BYTES + TAG_BYTES; // 65 608
export const MIN_CHUNK_MESSAGE = CHUNK_HEADER_BYTES + TAG_BYTES;
// C0, DEL, C1, lone surrogates, and bidi overrides (they would let a reason display as
// something it is not): Python's categories Cc and Cs plus BIDI_CONTROLS.
const CONTROL_CHARS = /[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]/u;

/** A file object or chunk refused: `code` says which rule (stable, documented). */
export class FileWireError extends RemoteProtocolError {
  constructor(message, code = "file-malformed") {
    super(message, code);
  }
}

export const ControlKind = Object.freeze({
  ACCEPT: 1, // value: the first block the receiver still needs (0: from the start)
  ACK: 2, // value: blocks verified so far (the next block needed); cumulative
  DONE: 3, // value: the size; the whole hash matched, the file is in place
  CANCEL: 4, // either side; reason
  FAIL: 5, // receiver: hash mismatch or disk error; reason
  DECLINE: 6, // receiver refuses the offer; reason
});
const CONTROL_KINDS = new Set(Object.values(ControlKind));

export function hasControlChars(text) {
  return CONTROL_CHARS.test(text);
}

export function blockCount(size, blockBytes) {
  return Math.ceil(size / blockBytes);
}

export function validBlockBytes(blockBytes) {
  return (
    Number.isInteger(blockBytes) &&
    blockBytes >= MIN_BLOCK_BYTES &&
    blockBytes <= MAX_BLOCK_BYTES &&
    (blockBytes & (blockBytes - 1)) === 0
  );
}

/** UTF-8 of `text`, or null when it holds a lone surrogate (Python refuses to encode it). */
function strictUtf8(text) {
  return /\p{Cs}/u.test(text) ? null : utf8Encode(text);
}

function validMime(mime) {
  return typeof mime === "string" && mime.length <= MAX_MIME_BYTES && /^[ -~]*$/.test(mime);
}

function bytesOf(value, length, what) {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new RangeError(`${what} must be ${length} bytes`);
  }
  return value;
}

/** The body of a FILE_OFFER frame; its transfer id is the frame's message_id. */
export class FileOffer {
  constructor({ size, blockBytes, fileHash, fileKey, mime, name }) {
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_BYTES) {
      throw new RangeError(`a file must be at most ${MAX_FILE_BYTES} bytes`);
    }
    if (!validBlockBytes(blockBytes)) {
      throw new RangeError("block size must be a power of two from 64 KiB to 1 MiB");
    }
    bytesOf(fileHash, HASH_BYTES, "file hash");
    bytesOf(fileKey, KEY_BYTES, "file key");
    if (!validMime(mime)) {
      throw new RangeError(`mime type must be at most ${MAX_MIME_BYTES} printable ASCII bytes`);
    }
    const raw = typeof name === "string" ? strictUtf8(name) : null;
    if (raw === null) throw new RangeError("file name is not valid UTF-8");
    if (raw.length < 1 || raw.length > MAX_NAME_BYTES) {
      throw new RangeError(`file name must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8`);
    }
    Object.assign(this, { size, blockBytes, fileHash, fileKey, mime, name });
    Object.freeze(this);
  }

  get blocks() {
    return blockCount(this.size, this.blockBytes);
  }

  encode() {
    const mime = utf8Encode(this.mime); // printable ASCII: one byte each
    const name = utf8Encode(this.name);
    const out = new Uint8Array(OFFER_HEAD_BYTES + mime.length + 2 + name.length);
    const view = new DataView(out.buffer);
    out[0] = FILE_VERSION;
    view.setBigUint64(1, BigInt(this.size), false);
    view.setUint32(9, this.blockBytes, false);
    out.set(this.fileHash, 13);
    out.set(this.fileKey, 45);
    out[77] = mime.length;
    out.set(mime, OFFER_HEAD_BYTES);
    let at = OFFER_HEAD_BYTES + mime.length;
    view.setUint16(at, name.length, false);
    out.set(name, at + 2);
    return out;
  }
}

function viewOf(data) {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

/** Parse a FILE_OFFER body; FileWireError (code "file-bad-offer") if malformed. */
export function decodeOffer(data) {
  const bad = (message) => new FileWireError(message, "file-bad-offer");
  if (data.length < OFFER_HEAD_BYTES) throw bad("file offer too short");
  const view = viewOf(data);
  if (data[0] !== FILE_VERSION) {
    throw new FileWireError(`file offer version ${data[0]} is not supported`, "file-version");
  }
  const size = view.getBigUint64(1, false);
  const blockBytes = view.getUint32(9, false);
  const fileHash = data.slice(13, 45);
  const fileKey = data.slice(45, 77);
  const mimeLen = data[77];
  let at = OFFER_HEAD_BYTES;
  const mimeRaw = data.subarray(at, at + mimeLen);
  at += mimeLen;
  if (mimeRaw.length !== mimeLen || data.length < at + 2) throw bad("file offer truncated");
  const nameLen = view.getUint16(at, false);
  at += 2;
  const nameRaw = data.subarray(at, at + nameLen);
  if (nameRaw.length !== nameLen) throw bad("file offer truncated");
  if (at + nameLen !== data.length) throw bad("bytes after the file offer");
  try {
    if (size > BigInt(MAX_FILE_BYTES)) throw new RangeError(`a file must be at most ${MAX_FILE_BYTES} bytes`);
    if (!mimeRaw.every((b) => b >= 0x20 && b <= 0x7e)) throw new RangeError("mime type is not printable ASCII");
    const mime = String.fromCharCode(...mimeRaw);
    const name = utf8Decode(nameRaw);
    return new FileOffer({ size: Number(size), blockBytes, fileHash, fileKey, mime, name });
  } catch (exc) {
    throw bad(`file offer refused: ${exc.message}`);
  }
}

/** The body of a FILE_CONTROL frame. `value`: a number (or a bigint past 2^53). */
export class FileControl {
  constructor({ kind, transferId, value = 0, reason = "" }) {
    if (!CONTROL_KINDS.has(kind)) throw new RangeError(`unknown control kind ${kind}`);
    bytesOf(transferId, TRANSFER_ID_BYTES, "transfer id");
    const big = typeof value === "bigint" ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
    if (big < 0n || big > MAX_U64) throw new RangeError("control value must fit in 64 bits");
    const raw = typeof reason === "string" ? strictUtf8(reason) : null;
    if (raw === null) throw new RangeError("reason is not valid UTF-8");
    if (raw.length > MAX_REASON_BYTES) throw new RangeError(`reason over ${MAX_REASON_BYTES} bytes`);
    if (hasControlChars(reason)) throw new RangeError("reason contains control characters");
    Object.assign(this, { kind, transferId, value, reason });
    Object.freeze(this);
  }

  encode() {
    const reason = utf8Encode(this.reason);
    const out = new Uint8Array(CONTROL_HEAD_BYTES + reason.length);
    out[0] = FILE_VERSION;
    out[1] = this.kind;
    out.set(this.transferId, 2);
    viewOf(out).setBigUint64(18, BigInt(this.value), false);
    out[26] = reason.length;
    out.set(reason, CONTROL_HEAD_BYTES);
    return out;
  }
}

/** Parse a FILE_CONTROL body; FileWireError (code "file-bad-control") if malformed. */
export function decodeControl(data) {
  const bad = (message) => new FileWireError(message, "file-bad-control");
  if (data.length < CONTROL_HEAD_BYTES) throw bad("file control too short");
  if (data[0] !== FILE_VERSION) {
    throw new FileWireError(`file control version ${data[0]} is not supported`, "file-version");
  }
  if (data.length !== CONTROL_HEAD_BYTES + data[26]) throw bad("file control length does not match");
  const big = viewOf(data).getBigUint64(18, false);
  const value = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  try {
    const reason = utf8Decode(data.subarray(CONTROL_HEAD_BYTES));
    return new FileControl({ kind: data[1], transferId: data.slice(2, 18), value, reason });
  } catch (exc) {
    throw bad(`file control refused: ${exc.message}`);
  }
}

/** The 24 clear bytes in front of each chunk (also its AEAD additional data). */
export function encodeChunkHeader({ transferId, block, chunk, last }) {
  const out = new Uint8Array(CHUNK_HEADER_BYTES);
  const view = viewOf(out);
  out[0] = FILE_VERSION;
  out.set(bytesOf(transferId, TRANSFER_ID_BYTES, "transfer id"), 1);
  view.setUint32(17, block, false);
  view.setUint16(21, chunk, false);
  out[23] = last ? FLAG_LAST : 0;
  return out;
}

/** The header of a chunk message, after the message size bounds; "file-bad-chunk". */
export function decodeChunkHeader(data) {
  if (data.length < MIN_CHUNK_MESSAGE || data.length > MAX_CHUNK_MESSAGE) {
    throw new FileWireError(`file chunk of ${data.length} bytes`, "file-bad-chunk");
  }
  if (data[0] !== FILE_VERSION) {
    throw new FileWireError(`file chunk version ${data[0]} is not supported`, "file-version");
  }
  const flags = data[23];
  if (flags & ~FLAG_LAST) throw new FileWireError("unknown file chunk flags", "file-bad-chunk");
  const view = viewOf(data);
  return {
    transferId: data.slice(1, 17),
    block: view.getUint32(17, false),
    chunk: view.getUint16(21, false),
    last: Boolean(flags & FLAG_LAST),
  };
}
