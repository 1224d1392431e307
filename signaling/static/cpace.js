// CPace (draft-irtf-cfrg-cpace), ristretto255 + SHA-512: the password second factor.
// The same construction as p2pchat/crypto/cpace.py (docs/protocol.md "Password (CPace)"):
// the guest is the initiator A, the owner the responder B, the ISK is the draft's
// transcript_ir ISK, and it is mixed into the crypto_kx session keys.

import { concatBytes, derive, RemoteProtocolError, utf8Encode } from "./crypto.js";
import sodium from "./sodium.js";

const DSI = utf8Encode("CPaceRistretto255");
const DSI_ISK = utf8Encode("CPaceRistretto255_ISK");
const CHANNEL_ID = utf8Encode("p2pchat/v1/cpace");
export const AD_INITIATOR = utf8Encode("guest");
export const AD_RESPONDER = utf8Encode("owner");
export const SHARE_BYTES = 32;
export const ISK_BYTES = 64;
export const MAX_PASSWORD_BYTES = 128;
export const PAKE_SESSION = utf8Encode("p2pchat/v1/pake-session");
const SHA512_BLOCK = 128;

export class PakeError extends RemoteProtocolError {
  constructor(message) {
    super(message, "bad-pake");
  }
}

/** NFKC, surrounding whitespace stripped, UTF-8, 1..128 bytes (RangeError otherwise). */
export function normalizePassword(text) {
  const data = utf8Encode(text.normalize("NFKC").replace(/^\s+|\s+$/gu, ""));
  if (data.length < 1 || data.length > MAX_PASSWORD_BYTES) {
    throw new RangeError(`a link password is 1 to ${MAX_PASSWORD_BYTES} bytes (UTF-8)`);
  }
  return data;
}

/** Our secret scalar and public share Y = y·g (`scalar` only for test vectors). */
export function cpaceStart(password, roomIdRaw, sid, scalar = null) {
  const generator = calculateGenerator(password, lvCat(CHANNEL_ID, roomIdRaw), sid);
  const y = scalar ?? sodium.crypto_core_ristretto255_scalar_random();
  return { scalar: y, share: sodium.crypto_scalarmult_ristretto255(y, generator), generator };
}

/** The 64-byte ISK; PakeError for an unusable peer share. */
export function cpaceIsk(start, peerShare, { sid, initiator }) {
  if (!(peerShare instanceof Uint8Array) || !isValidPoint(peerShare)) {
    throw new PakeError("the password share is not a valid group element");
  }
  let k;
  try {
    k = sodium.crypto_scalarmult_ristretto255(start.scalar, peerShare);
  } catch {
    throw new PakeError("the password share is not usable");
  }
  const [ya, yb] = initiator ? [start.share, peerShare] : [peerShare, start.share];
  return iskIr(sid, k, ya, AD_INITIATOR, yb, AD_RESPONDER);
}

/** Bind the crypto_kx keys {rx, tx} to the password. */
export function mixSessionKeys(keys, isk) {
  return {
    rx: derive(PAKE_SESSION, concatBytes(keys.rx, isk), 32),
    tx: derive(PAKE_SESSION, concatBytes(keys.tx, isk), 32),
  };
}

// -- the draft's building blocks (exported for the test vectors) ----------------------

export function calculateGenerator(prs, ci, sid) {
  return sodium.crypto_core_ristretto255_from_hash(sodium.crypto_hash_sha512(generatorString(prs, ci, sid)));
}

export function generatorString(prs, ci, sid) {
  const zpad = Math.max(0, SHA512_BLOCK - 1 - prependLen(prs).length - prependLen(DSI).length);
  return lvCat(DSI, prs, new Uint8Array(zpad), ci, sid);
}

export function iskIr(sid, k, ya, ada, yb, adb) {
  const transcript = concatBytes(lvCat(ya, ada), lvCat(yb, adb));
  return sodium.crypto_hash_sha512(concatBytes(lvCat(DSI_ISK, sid, k), transcript));
}

export function isValidPoint(point) {
  // libsodium accepts the identity's encoding (all zeros): we do not.
  return point.length === SHARE_BYTES && point.some((b) => b !== 0) && sodium.crypto_core_ristretto255_is_valid_point(point);
}

/** LEB128 length, then the data. */
export function prependLen(data) {
  const encoded = [];
  let length = data.length;
  for (;;) {
    encoded.push(length < 128 ? length : (length & 0x7f) | 0x80);
    length = Math.floor(length / 128);
    if (length === 0) return concatBytes(new Uint8Array(encoded), data);
  }
}

export function lvCat(...parts) {
  return concatBytes(...parts.map(prependLen));
}
