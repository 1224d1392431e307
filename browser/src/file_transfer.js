// The two ends of one file transfer, sans I/O: mirrors p2pchat/protocol/file_transfer.py.
//
// No channel, no File, no clock: the page reads and keeps the file, sends what these
// return and feeds in what arrives. Blocks flow in a window of WINDOW_BLOCKS
// unacknowledged blocks; the receiver acknowledges a block once it has kept it
// (cumulative ACK = the next block it needs), and at every session open it sends
// ACCEPT(first block still needed): the sender restarts from there (the resume rule,
// docs/protocol.md "Files").

import { LocalProtocolError, bytesEqual } from "./crypto.js";
import { blake2b256, openChunk, sealChunk } from "./file_crypto.js";
import {
  CHUNK_BYTES,
  CHUNK_HEADER_BYTES,
  ControlKind,
  FileControl,
  FileWireError,
  HASH_BYTES,
  KEY_BYTES,
  TRANSFER_ID_BYTES,
  WINDOW_BLOCKS,
  blockCount,
  decodeChunkHeader,
  encodeChunkHeader,
  validBlockBytes,
} from "./file_wire.js";

/** Sizes shared by both ends: block lengths and chunks per block. */
class Layout {
  constructor(transferId, fileKey, size, blockBytes) {
    if (transferId?.length !== TRANSFER_ID_BYTES || fileKey?.length !== KEY_BYTES) {
      throw new RangeError("transfer id must be 16 bytes and the file key 32");
    }
    if (!validBlockBytes(blockBytes)) {
      throw new RangeError("block size must be a power of two from 64 KiB to 1 MiB");
    }
    this.transferId = transferId;
    this.fileKey = fileKey;
    this.size = size;
    this.blockBytes = blockBytes;
    this.blocks = blockCount(size, blockBytes);
  }

  blockLen(index) {
    return Math.min(this.blockBytes, this.size - index * this.blockBytes);
  }

  chunksIn(index) {
    return Math.ceil(this.blockLen(index) / CHUNK_BYTES);
  }
}

/** The sender: which blocks the window allows, and each block's chunk messages. */
export class OutgoingTransfer extends Layout {
  constructor(transferId, fileKey, size, blockBytes) {
    super(transferId, fileKey, size, blockBytes);
    this.acked = 0; // blocks the receiver has verified
    this.nextToSend = 0;
    // The end of the furthest window ever sent, over restarts: after an ACCEPT from an
    // earlier block, the receiver may still ACK blocks of the window before it (their
    // chunks were on the way), and such an ACK must count, not be refused.
    this.sentHigh = 0;
  }

  /** Every block acknowledged (the page then waits for DONE). */
  get doneSending() {
    return this.acked === this.blocks;
  }

  /** ACCEPT(first): (re)start from the receiver's first missing block. */
  onAccept(firstBlock) {
    if (!(firstBlock >= 0 && firstBlock <= this.blocks)) {
      throw new FileWireError(`accept from block ${firstBlock}`, "file-bad-control");
    }
    this.acked = this.nextToSend = Number(firstBlock);
  }

  /** ACK(verified), cumulative. One for a block never sent is refused; one past the
   * restarted window but sent before the restart moves it on. */
  onAck(verified) {
    if (verified > Math.max(this.nextToSend, this.sentHigh)) {
      throw new FileWireError(`ack of unsent block ${verified - 1}`, "file-bad-control");
    }
    this.acked = Math.max(this.acked, Number(verified)); // an older ACK says nothing new
    this.nextToSend = Math.max(this.nextToSend, this.acked);
  }

  /** The blocks the window allows now; they count as sent from this call on. */
  blocksToSend() {
    const end = Math.min(this.acked + WINDOW_BLOCKS, this.blocks);
    const indexes = [];
    for (let i = this.nextToSend; i < end; i++) indexes.push(i);
    this.nextToSend = Math.max(this.nextToSend, end);
    this.sentHigh = Math.max(this.sentHigh, this.nextToSend);
    return indexes;
  }

  /** The chunk messages of one block; the last carries the block hash after its data. */
  chunksOf(blockIndex, plaintextBlock) {
    if (!(blockIndex >= 0 && blockIndex < this.blocks)) {
      throw new LocalProtocolError(`no block ${blockIndex} in this file`);
    }
    if (plaintextBlock.length !== this.blockLen(blockIndex)) {
      throw new LocalProtocolError(`block ${blockIndex} must be ${this.blockLen(blockIndex)} bytes`);
    }
    const count = this.chunksIn(blockIndex);
    const messages = [];
    for (let chunk = 0; chunk < count; chunk++) {
      const last = chunk === count - 1;
      let data = plaintextBlock.subarray(chunk * CHUNK_BYTES, (chunk + 1) * CHUNK_BYTES);
      if (last) {
        const withHash = new Uint8Array(data.length + HASH_BYTES);
        withHash.set(data);
        withHash.set(blake2b256(plaintextBlock), data.length);
        data = withHash;
      }
      const header = encodeChunkHeader({ transferId: this.transferId, block: blockIndex, chunk, last });
      messages.push(sealChunk(this.fileKey, header, this.transferId, blockIndex, chunk, data));
    }
    return messages;
  }
}

/** What one chunk did (a refused chunk throws instead). */
export const Outcome = Object.freeze({
  STORED: "stored", // kept; its block is not complete yet
  DUPLICATE: "duplicate", // already had (a resend, e.g. after a lost ACK): nothing changed
  READY: "ready", // completed a block whose hash matched: keep `data`, then blockWritten(index)
});

/**
 * The receiver: authenticates chunks, assembles blocks (only those in the window, so at
 * most WINDOW_BLOCKS * blockBytes in memory) and checks each block's hash.
 * `offer`: a FileOffer (file_wire.js).
 */
export class IncomingTransfer extends Layout {
  constructor(transferId, offer, { verifiedBlocks = 0 } = {}) {
    super(transferId, offer.fileKey, offer.size, offer.blockBytes);
    if (!(Number.isInteger(verifiedBlocks) && verifiedBlocks >= 0 && verifiedBlocks <= this.blocks)) {
      throw new RangeError(`verified blocks must be 0 to ${this.blocks}`);
    }
    this.fileHash = offer.fileHash;
    this.verified = verifiedBlocks; // blocks kept and verified, from the start
    this._parts = new Map(); // block -> Map(chunk -> plaintext)
    this._hashes = new Map(); // block -> the hash its last chunk carried
    this._ready = new Set(); // handed to the page, not yet kept
    this._written = new Set(); // kept past a gap
  }

  get complete() {
    return this.verified === this.blocks;
  }

  get bufferedBytes() {
    let total = 0;
    for (const chunks of this._parts.values()) for (const c of chunks.values()) total += c.length;
    return total;
  }

  /** ACCEPT(first block still needed), at accept and at every session open: drops the
   * partial blocks, since the sender restarts from that block. */
  accept() {
    this._parts.clear();
    this._hashes.clear();
    this._ready.clear();
    this._written.clear();
    return new FileControl({ kind: ControlKind.ACCEPT, transferId: this.transferId, value: this.verified });
  }

  /** One chunk message: {kind: Outcome.*, index, data?}. Throws only FileWireError. */
  receiveChunk(data) {
    const header = decodeChunkHeader(data);
    if (!bytesEqual(header.transferId, this.transferId)) {
      throw new FileWireError("file chunk of another transfer", "file-wrong-transfer");
    }
    const { block, chunk } = header;
    if (block >= this.blocks || chunk >= this.chunksIn(block)) {
      throw new FileWireError(`no chunk ${block}/${chunk} in this file`, "file-bad-chunk");
    }
    if (header.last !== (chunk === this.chunksIn(block) - 1)) {
      throw new FileWireError(`chunk ${block}/${chunk}: wrong last flag`, "file-bad-chunk");
    }
    if (block < this.verified || this._ready.has(block) || this._written.has(block)) {
      return { kind: Outcome.DUPLICATE, index: block };
    }
    if (block >= this.verified + WINDOW_BLOCKS) {
      throw new FileWireError(`block ${block} is past the window`, "file-out-of-window");
    }
    const parts = this._parts.get(block) ?? new Map();
    if (parts.has(chunk)) return { kind: Outcome.DUPLICATE, index: block };
    let plain = openChunk(
      this.fileKey,
      data.subarray(0, CHUNK_HEADER_BYTES),
      this.transferId,
      block,
      chunk,
      data.subarray(CHUNK_HEADER_BYTES),
    );
    const want = this._chunkLen(block, chunk) + (header.last ? HASH_BYTES : 0);
    if (plain.length !== want) {
      throw new FileWireError(`chunk ${block}/${chunk} of the wrong length`, "file-bad-chunk");
    }
    if (header.last) {
      this._hashes.set(block, plain.slice(plain.length - HASH_BYTES));
      plain = plain.subarray(0, plain.length - HASH_BYTES);
    }
    parts.set(chunk, plain);
    this._parts.set(block, parts);
    if (parts.size < this.chunksIn(block)) return { kind: Outcome.STORED, index: block };
    return this._finish(block);
  }

  /** The page kept a ready block: the cumulative ACK to send. */
  blockWritten(index) {
    if (!this._ready.has(index)) throw new LocalProtocolError(`block ${index} was not ready`);
    this._ready.delete(index);
    this._written.add(index);
    while (this._written.has(this.verified)) {
      this._written.delete(this.verified);
      this.verified += 1;
    }
    return new FileControl({ kind: ControlKind.ACK, transferId: this.transferId, value: this.verified });
  }

  /** The page's BLAKE2b-256 of the whole file against the offer's. */
  wholeHashOk(digest) {
    return bytesEqual(digest, this.fileHash);
  }

  _chunkLen(block, chunk) {
    return Math.min(CHUNK_BYTES, this.blockLen(block) - chunk * CHUNK_BYTES);
  }

  _finish(block) {
    const parts = this._parts.get(block);
    this._parts.delete(block);
    const expected = this._hashes.get(block);
    this._hashes.delete(block);
    const data = new Uint8Array(this.blockLen(block));
    for (let i = 0; i < parts.size; i++) data.set(parts.get(i), i * CHUNK_BYTES);
    if (!bytesEqual(blake2b256(data), expected)) {
      throw new FileWireError(`block ${block} fails its hash`, "file-bad-block-hash");
    }
    this._ready.add(block);
    return { kind: Outcome.READY, index: block, data };
  }
}
