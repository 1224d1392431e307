// Chunk encryption and hashes for file transfers: mirrors p2pchat/protocol/file_crypto.py.
//
// XChaCha20-Poly1305-IETF with a deterministic nonce `transfer_id || block u32 || chunk u16
// || 00 00` and the chunk header as additional data. Safe because each transfer has its
// own random key (sent only inside the secret stream) and a (block, chunk) pair always
// carries the same plaintext. BLAKE2b-256 (crypto_generichash) for blocks and whole files.

import { concatBytes } from "./crypto.js";
import { FileWireError, HASH_BYTES, KEY_BYTES, TRANSFER_ID_BYTES } from "./file_wire.js";
import sodium from "./sodium.js";

export function blake2b256(data) {
  return sodium.crypto_generichash(HASH_BYTES, data, null);
}

/** A streaming BLAKE2b-256 for whole files, fed block by block. */
export class FileHasher {
  constructor() {
    this._state = sodium.crypto_generichash_init(null, HASH_BYTES);
    this._done = false;
  }

  update(data) {
    if (this._done) throw new Error("hasher already finished");
    sodium.crypto_generichash_update(this._state, data);
  }

  /** The digest; the hasher is spent afterwards. */
  digest() {
    if (this._done) throw new Error("hasher already finished");
    this._done = true;
    return sodium.crypto_generichash_final(this._state, HASH_BYTES);
  }
}

export function chunkNonce(transferId, block, chunk) {
  if (transferId.length !== TRANSFER_ID_BYTES) {
    throw new RangeError(`transfer id must be ${TRANSFER_ID_BYTES} bytes`);
  }
  const out = new Uint8Array(TRANSFER_ID_BYTES + 8);
  out.set(transferId);
  const view = new DataView(out.buffer);
  view.setUint32(TRANSFER_ID_BYTES, block, false);
  view.setUint16(TRANSFER_ID_BYTES + 4, chunk, false);
  return out;
}

/** The chunk message: `header` then the ciphertext (`header` is the additional data). */
export function sealChunk(key, header, transferId, block, chunk, plaintext) {
  if (key.length !== KEY_BYTES) throw new RangeError(`file key must be ${KEY_BYTES} bytes`);
  const nonce = chunkNonce(transferId, block, chunk);
  return concatBytes(header, sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, header, null, nonce, key));
}

/** The plaintext of a chunk; "file-bad-ciphertext" if it does not authenticate. */
export function openChunk(key, header, transferId, block, chunk, ciphertext) {
  const nonce = chunkNonce(transferId, block, chunk);
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, header, nonce, key);
  } catch {
    throw new FileWireError(`file chunk ${block}/${chunk} does not authenticate`, "file-bad-ciphertext");
  }
}
