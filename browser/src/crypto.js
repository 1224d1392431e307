// p2pchat crypto for the browser guest: small pure functions over libsodium.js.
//
// Mirrors p2pchat/crypto/{encoding,purposes,link,envelope,stream,safety}.py and
// p2pchat/protocol/{frames,handshake}.py byte for byte; the formats are in
// docs/protocol.md and pinned by tests/vectors/v1.json (checked by browser/test/).

import sodium from "./sodium.js";

// -- errors (stable codes, as in Python) -------------------------------------------

/** Base class: `code` is stable and documented in docs/protocol.md. */
export class ProtocolError extends Error {
  constructor(message, code) {
    super(message);
    this.name = new.target.name;
    this.code = code ?? "protocol";
  }
}

/** We asked for something the protocol does not allow (a bug or a misuse). */
export class LocalProtocolError extends ProtocolError {
  constructor(message) {
    super(message, "local");
  }
}

/** The peer (or someone in between) sent something we refuse. */
export class RemoteProtocolError extends ProtocolError {
  constructor(message, code = "remote") {
    super(message, code);
  }
}

/** An envelope we refuse: code is malformed, unsupported, tampered, reflected, stale or replayed. */
export class EnvelopeError extends RemoteProtocolError {}

/** A secret stream we refuse (tampered, reordered, truncated, unusable key share). */
export class StreamError extends Error {
  constructor(message) {
    super(message);
    this.name = "StreamError";
  }
}

// -- bytes and text ------------------------------------------------------------------

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, as in Python; ignoreBOM: keep a BOM so that
// JSON parsing refuses it, as Python's json.loads does.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8Encode(text) {
  return utf8Encoder.encode(text);
}

/** Strict UTF-8 decoding; throws TypeError on invalid input. */
export function utf8Decode(bytes) {
  return utf8Decoder.decode(bytes);
}

export function concatBytes(...parts) {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new Error("not hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function randomBytes(n) {
  return sodium.randombytes_buf(n);
}

const U64_LIMIT = 2n ** 64n;

function writeU64(view, offset, value) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError("timestamp must be a non-negative integer (Unix milliseconds)");
  }
  view.setBigUint64(offset, BigInt(value) % U64_LIMIT, false);
}

function readU64(view, offset) {
  // Values above 2^53 lose precision; they are decades away and refused as stale.
  return Number(view.getBigUint64(offset, false));
}

// -- base64url (RFC 4648, no padding, canonical) -------------------------------------

const B64URL = /^[A-Za-z0-9_-]*$/;

export function b64urlEncode(bytes) {
  return sodium.to_base64(bytes, sodium.base64_variants.URLSAFE_NO_PADDING);
}

/** Decode canonical unpadded base64url; throws Error("not base64url") on anything else. */
export function b64urlDecode(text) {
  if (typeof text !== "string" || !B64URL.test(text) || text.length % 4 === 1) {
    throw new Error("not base64url");
  }
  let bytes;
  try {
    bytes = sodium.from_base64(text, sodium.base64_variants.URLSAFE_NO_PADDING);
  } catch {
    throw new Error("not base64url");
  }
  // Unused low bits set: one value, one spelling.
  if (b64urlEncode(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}

// -- purposes (domain separation: BLAKE2b keyed with a purpose string) ---------------

export const PURPOSES = Object.freeze({
  PEER_ID: utf8Encode("p2pchat/v1/peer-id"),
  FINGERPRINT: utf8Encode("p2pchat/v1/fingerprint"),
  SAFETY_NUMBER: utf8Encode("p2pchat/v1/safety-number"),
  LINK_ROOM: utf8Encode("p2pchat/v1/link-room"),
  LINK_ENVELOPE: utf8Encode("p2pchat/v1/link-envelope"),
});

/** BLAKE2b-`length` of `data` keyed with `purpose`. */
export function derive(purpose, data, length) {
  return sodium.crypto_generichash(length, data, purpose);
}

// -- invite link ---------------------------------------------------------------------

export const LINK_SECRET_BYTES = 32;
const ROOM_ID_BYTES = 16;
const ENVELOPE_KEY_BYTES = 32;

/**
 * What the link fragment gives: the secret, the room id the server knows the room
 * by, and the key of the link envelopes. Throws "the link is damaged" otherwise.
 */
export function linkFromFragment(fragment) {
  let text = fragment.startsWith("#") ? fragment.slice(1) : fragment;
  // "<secret>.pw": the link also needs a password ("." is outside base64url).
  const password = text.endsWith(PASSWORD_SUFFIX);
  if (password) text = text.slice(0, -PASSWORD_SUFFIX.length);
  let secret;
  try {
    secret = b64urlDecode(text);
  } catch {
    secret = null;
  }
  if (secret === null || secret.length !== LINK_SECRET_BYTES) {
    throw new Error("the link is damaged: ask for a new one");
  }
  return { ...linkFromSecret(secret), password };
}

export const PASSWORD_SUFFIX = ".pw";

export function linkFromSecret(secret) {
  if (secret.length !== LINK_SECRET_BYTES) {
    throw new RangeError(`link secret must be ${LINK_SECRET_BYTES} bytes`);
  }
  const roomIdRaw = derive(PURPOSES.LINK_ROOM, secret, ROOM_ID_BYTES);
  return {
    secret,
    fragment: b64urlEncode(secret),
    roomId: b64urlEncode(roomIdRaw),
    roomIdRaw,
    envelopeKey: derive(PURPOSES.LINK_ENVELOPE, secret, ENVELOPE_KEY_BYTES),
  };
}

// -- envelopes -----------------------------------------------------------------------

export const ENVELOPE_VERSION = 1;
export const NONCE_BYTES = 24;
export const SESSION_ID_BYTES = 16;
export const MAX_ENVELOPE_BYTES = 64 * 1024;
export const MAX_ENVELOPE_BODY_BYTES = 48 * 1024;
export const DEFAULT_MAX_AGE_MS = 5 * 60 * 1000;
const INNER_BYTES = 26; // kind u8, direction u8, session id 16, timestamp u64
const MAC_BYTES = 16;

export const Scheme = Object.freeze({ LAN_BOX: 1, LINK_KEY: 2 });
/** Who sent an envelope: the side that made the offer, or the side that answers. */
export const Direction = Object.freeze({ INITIATOR: 1, RESPONDER: 2 });
export const EnvelopeKind = Object.freeze({
  OFFER: 1,
  ANSWER: 2,
  CONTACT_REQUEST: 3,
  CONTACT_ACCEPT: 4,
  CONTACT_REJECT: 5,
});

export function oppositeDirection(direction) {
  return direction === Direction.INITIATOR ? Direction.RESPONDER : Direction.INITIATOR;
}

/**
 * Remembers envelope nonces for as long as their timestamps are acceptable.
 *
 * Bounded: when full, the oldest entry is dropped and everything at least as old
 * as it is refused as stale from then on, so a replay never slips in through
 * eviction (docs/protocol.md, "Replay window").
 */
export class ReplayGuard {
  constructor({ maxAgeMs = DEFAULT_MAX_AGE_MS, capacity = 65_536 } = {}) {
    this.maxAgeMs = maxAgeMs;
    this._capacity = capacity;
    this._seen = new Map(); // nonce hex -> timestamp, in insertion order
    this._floorMs = -1;
  }

  get size() {
    return this._seen.size;
  }

  check(nonce, timestampMs, nowMs) {
    if (Math.abs(nowMs - timestampMs) > this.maxAgeMs) {
      throw new EnvelopeError(
        "envelope is too old or from the future: check that both clocks are right",
        "stale",
      );
    }
    if (timestampMs <= this._floorMs) {
      throw new EnvelopeError("envelope is older than the replay window kept in memory", "stale");
    }
    const key = toHex(nonce);
    if (this._seen.has(key)) {
      throw new EnvelopeError("envelope was already received (replay)", "replayed");
    }
    this._expire(nowMs);
    if (this._seen.size >= this._capacity) {
      const [oldest, oldestTs] = this._seen.entries().next().value;
      this._seen.delete(oldest);
      this._floorMs = Math.max(this._floorMs, oldestTs);
    }
    this._seen.set(key, timestampMs);
  }

  _expire(nowMs) {
    for (const [key, ts] of this._seen) {
      if (nowMs - ts <= this.maxAgeMs) break;
      this._seen.delete(key);
      this._floorMs = Math.max(this._floorMs, ts);
    }
  }
}

/** Seal and open envelopes (scheme 2) under the key derived from an invite-link secret. */
export class LinkEnvelopes {
  constructor(envelopeKey, guard = new ReplayGuard()) {
    if (envelopeKey.length !== ENVELOPE_KEY_BYTES) throw new RangeError("envelope key must be 32 bytes");
    this._key = envelopeKey;
    this._guard = guard;
  }

  /** Returns the envelope bytes; `nonce` only for test vectors. */
  seal(kind, direction, sessionId, body, nowMs, { nonce } = {}) {
    const n = nonce ?? randomBytes(NONCE_BYTES);
    if (n.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
    const ad = Uint8Array.of(ENVELOPE_VERSION, Scheme.LINK_KEY);
    const inner = packInner(kind, direction, sessionId, nowMs, body);
    const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(inner, ad, null, n, this._key);
    return concatBytes(ad, n, sealed);
  }

  /** Open and check an envelope; `expected` is the direction it must travel. */
  open(data, expected, nowMs) {
    const header = 2 + NONCE_BYTES;
    checkOuter(data, Scheme.LINK_KEY, header + MAC_BYTES + INNER_BYTES);
    const nonce = data.slice(2, header);
    let inner;
    try {
      inner = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        data.subarray(header),
        data.subarray(0, 2),
        nonce,
        this._key,
      );
    } catch {
      inner = null;
    }
    if (!(inner instanceof Uint8Array)) {
      throw new EnvelopeError("envelope failed authentication (tampered or wrong link)", "tampered");
    }
    const opened = unpackInner(inner, expected);
    this._guard.check(nonce, opened.timestampMs, nowMs);
    return opened;
  }
}

function packInner(kind, direction, sessionId, nowMs, body) {
  if (sessionId.length !== SESSION_ID_BYTES) {
    throw new RangeError(`session id must be ${SESSION_ID_BYTES} bytes`);
  }
  if (body.length > MAX_ENVELOPE_BODY_BYTES) {
    throw new RangeError(`envelope body over ${MAX_ENVELOPE_BODY_BYTES} bytes`);
  }
  const inner = new Uint8Array(INNER_BYTES + body.length);
  const view = new DataView(inner.buffer);
  inner[0] = kind;
  inner[1] = direction;
  inner.set(sessionId, 2);
  writeU64(view, 18, nowMs);
  inner.set(body, INNER_BYTES);
  return inner;
}

function unpackInner(inner, expected) {
  if (inner.length < INNER_BYTES) throw new EnvelopeError("envelope too short", "malformed");
  const view = new DataView(inner.buffer, inner.byteOffset, inner.byteLength);
  const direction = inner[1];
  if (direction !== Direction.INITIATOR && direction !== Direction.RESPONDER) {
    throw new EnvelopeError("envelope has an unknown direction", "malformed");
  }
  if (direction !== expected) {
    throw new EnvelopeError("envelope goes the wrong way (reflected)", "reflected");
  }
  return {
    kind: inner[0],
    direction,
    sessionId: inner.slice(2, 18),
    timestampMs: readU64(view, 18),
    body: inner.slice(INNER_BYTES),
  };
}

function checkOuter(data, scheme, minSize) {
  if (!(data instanceof Uint8Array)) throw new EnvelopeError("envelope is not bytes", "malformed");
  if (data.length > MAX_ENVELOPE_BYTES) {
    throw new EnvelopeError(`envelope over ${MAX_ENVELOPE_BYTES} bytes`, "malformed");
  }
  if (data.length < 2) throw new EnvelopeError("envelope too short", "malformed");
  if (data[0] !== ENVELOPE_VERSION) {
    throw new EnvelopeError(
      `envelope version ${data[0]} is not supported (want ${ENVELOPE_VERSION})`,
      "unsupported",
    );
  }
  if (data[1] !== scheme) throw new EnvelopeError("envelope uses another scheme", "malformed");
  if (data.length < minSize) throw new EnvelopeError("envelope too short", "malformed");
}

// -- session keys (crypto_kx) and secret streams -------------------------------------

export const KX_PUBLIC_KEY_BYTES = 32;
export const STREAM_HEADER_BYTES = 24;
export const STREAM_OVERHEAD_BYTES = 17;
const TAG_MESSAGE = 0;
const TAG_FINAL = 3;

/** Ephemeral key pair for one session; `seed` only for test vectors. */
export class KxKeyPair {
  constructor(seed) {
    const pair = seed ? sodium.crypto_kx_seed_keypair(seed) : sodium.crypto_kx_keypair();
    this.publicKey = pair.publicKey;
    this._secret = pair.privateKey;
  }

  /** Initiator side: returns {rx, tx}. */
  clientKeys(serverPublic) {
    return this._keys(sodium.crypto_kx_client_session_keys, serverPublic);
  }

  /** Responder side: returns {rx, tx}. */
  serverKeys(clientPublic) {
    return this._keys(sodium.crypto_kx_server_session_keys, clientPublic);
  }

  _keys(fn, peerPublic) {
    if (!(peerPublic instanceof Uint8Array) || peerPublic.length !== KX_PUBLIC_KEY_BYTES) {
      throw new StreamError("session key share has the wrong size");
    }
    let keys;
    try {
      keys = fn(this.publicKey, this._secret, peerPublic);
    } catch {
      // e.g. a low-order point: no shared secret
      throw new StreamError("session key share is unusable");
    }
    return { rx: keys.sharedRx, tx: keys.sharedTx };
  }
}

/** Our direction of a session: crypto_secretstream_xchacha20poly1305 push. */
export class StreamSender {
  constructor(key) {
    const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
    this._state = state;
    this.header = header;
  }

  seal(plaintext, { final = false } = {}) {
    return sodium.crypto_secretstream_xchacha20poly1305_push(
      this._state,
      plaintext,
      null,
      final ? TAG_FINAL : TAG_MESSAGE,
    );
  }
}

/** The peer's direction: crypto_secretstream_xchacha20poly1305 pull. */
export class StreamReceiver {
  constructor(key, header) {
    if (!(header instanceof Uint8Array) || header.length !== STREAM_HEADER_BYTES) {
      throw new StreamError("stream header has the wrong size");
    }
    this._state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
    this.finished = false;
  }

  /** Decrypt the next message; returns {plaintext, final}. */
  open(ciphertext) {
    if (this.finished) throw new StreamError("data after the end of the stream");
    if (ciphertext.length < STREAM_OVERHEAD_BYTES) throw new StreamError("stream frame too short");
    let result;
    try {
      result = sodium.crypto_secretstream_xchacha20poly1305_pull(this._state, ciphertext, null);
    } catch {
      result = false;
    }
    if (!result) {
      throw new StreamError("stream frame failed authentication (tampered or out of order)");
    }
    this.finished = result.tag === TAG_FINAL;
    return { plaintext: result.message, final: this.finished };
  }
}

// -- chat frames ---------------------------------------------------------------------

export const FRAME_VERSION = 1;
export const MAX_FRAME_BYTES = 64 * 1024;
export const MESSAGE_ID_BYTES = 16;
export const FRAME_HEADER_BYTES = 26;
export const MAX_FRAME_BODY_BYTES = MAX_FRAME_BYTES - FRAME_HEADER_BYTES;
export const FrameType = Object.freeze({
  TEXT: 1,
  RECEIPT: 2,
  PING: 3,
  PONG: 4,
  CLOSE: 5,
  // Groups (both ends announce groups=1): body = a signed group object (group.js),
  // message_id = the copy's id.
  GROUP_MESSAGE: 6,
  GROUP_LIST: 7,
  // Files (both ends announce files=1): body = an encoded offer or control (file_wire.js);
  // FILE_OFFER's message_id = the transfer id.
  FILE_OFFER: 8,
  FILE_CONTROL: 9,
});
const FRAME_TYPE_NAMES = new Map(Object.entries(FrameType).map(([name, v]) => [v, name]));
export const GROUP_FRAME_TYPES = Object.freeze(new Set([FrameType.GROUP_MESSAGE, FrameType.GROUP_LIST]));
export const FILE_FRAME_TYPES = Object.freeze(new Set([FrameType.FILE_OFFER, FrameType.FILE_CONTROL]));

export function newMessageId() {
  return randomBytes(MESSAGE_ID_BYTES);
}

/** Encode {type, messageId, timestampMs, body} (body bytes, empty by default). */
export function encodeFrame({ type, messageId, timestampMs, body = new Uint8Array(0) }) {
  if (messageId.length !== MESSAGE_ID_BYTES) {
    throw new RangeError(`message id must be ${MESSAGE_ID_BYTES} bytes`);
  }
  if (body.length > MAX_FRAME_BODY_BYTES) {
    throw new RangeError(`frame body over ${MAX_FRAME_BODY_BYTES} bytes`);
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  out[0] = FRAME_VERSION;
  out[1] = type;
  out.set(messageId, 2);
  writeU64(new DataView(out.buffer), 18, timestampMs);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/** Parse one plaintext frame; RemoteProtocolError code "bad-frame" for anything malformed. */
export function decodeFrame(data) {
  const fail = (message) => new RemoteProtocolError(message, "bad-frame");
  if (data.length > MAX_FRAME_BYTES) throw fail(`frame over ${MAX_FRAME_BYTES} bytes`);
  if (data.length < FRAME_HEADER_BYTES) throw fail("frame too short");
  if (data[0] !== FRAME_VERSION) {
    throw fail(`frame version ${data[0]} is not supported (want ${FRAME_VERSION})`);
  }
  const type = data[1];
  if (!FRAME_TYPE_NAMES.has(type)) throw fail(`unknown frame type ${type}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const frame = {
    type,
    messageId: data.slice(2, 18),
    timestampMs: readU64(view, 18),
    body: data.slice(FRAME_HEADER_BYTES),
  };
  if (type === FrameType.TEXT) {
    try {
      frame.text = utf8Decode(frame.body);
    } catch {
      throw fail("text frame is not valid UTF-8");
    }
  } else if (GROUP_FRAME_TYPES.has(type) || FILE_FRAME_TYPES.has(type)) {
    if (!frame.body.length) throw fail(`${FRAME_TYPE_NAMES.get(type).toLowerCase()} frame without a body`);
  } else if (frame.body.length) {
    throw fail(`${FRAME_TYPE_NAMES.get(type).toLowerCase()} frame must have an empty body`);
  }
  return frame;
}

// -- batches (protocol/batch.py) ----------------------------------------------------
// Several secret-stream messages in one channel message, when both ends announce
// info.batch = "1": (length u32 | sealed message)+, nothing after the last one.

export const BATCH_CAPABILITY = Object.freeze(["batch", "1"]);
export const MAX_BATCH_ITEM_BYTES = MAX_FRAME_BYTES + STREAM_OVERHEAD_BYTES;
export const MAX_BATCH_BYTES = 64 * 1024 + 1024;
export const MAX_BATCH_ITEMS = 1024;

export function encodeBatch(items) {
  if (!items.length) throw new RangeError("a batch holds at least one message");
  const size = items.reduce((n, item) => n + 4 + item.length, 0);
  if (size > MAX_BATCH_BYTES || items.length > MAX_BATCH_ITEMS) throw new RangeError("batch over its bounds");
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const item of items) {
    if (item.length < STREAM_OVERHEAD_BYTES || item.length > MAX_BATCH_ITEM_BYTES) {
      throw new RangeError("batch item out of bounds");
    }
    view.setUint32(offset, item.length);
    out.set(item, offset + 4);
    offset += 4 + item.length;
  }
  return out;
}

/** Split a batch; RemoteProtocolError code "bad-batch" for anything malformed. */
export function decodeBatch(data) {
  const fail = (message) => new RemoteProtocolError(message, "bad-batch");
  if (!data.length) throw fail("empty batch");
  if (data.length > MAX_BATCH_BYTES) throw fail(`batch over ${MAX_BATCH_BYTES} bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const items = [];
  let offset = 0;
  while (offset < data.length) {
    if (items.length === MAX_BATCH_ITEMS) throw fail(`batch of more than ${MAX_BATCH_ITEMS} messages`);
    if (data.length - offset < 4) throw fail("batch ends inside a length");
    const length = view.getUint32(offset);
    offset += 4;
    if (length < STREAM_OVERHEAD_BYTES || length > MAX_BATCH_ITEM_BYTES) {
      throw fail(`batch item of ${length} bytes`);
    }
    if (length > data.length - offset) throw fail("batch item runs past the end");
    items.push(data.subarray(offset, offset + length));
    offset += length;
  }
  return items;
}

// -- handshake body (OFFER / ANSWER JSON) --------------------------------------------

export const HANDSHAKE_VERSION = 1;
export const MAX_SDP_CHARS = 32 * 1024;
export const MAX_INFO_ENTRIES = 16;
export const MAX_INFO_CHARS = 256;

/** UTF-8 JSON, compact, non-ASCII kept as is (same bytes as Python's json.dumps). */
export function encodeHandshake({ sdp, kxPublic, info = {}, pake = null }) {
  const doc = { v: HANDSHAKE_VERSION, sdp, kx: b64urlEncode(kxPublic), info: { ...info } };
  if (pake !== null) doc.pake = b64urlEncode(pake); // a password link's CPace share only
  return utf8Encode(JSON.stringify(doc));
}

export const PAKE_SHARE_BYTES = 32;

/** Decode an OFFER/ANSWER body; RemoteProtocolError code "bad-handshake" on anything else. */
export function decodeHandshake(data) {
  const fail = (message) => new RemoteProtocolError(message, "bad-handshake");
  let doc;
  try {
    doc = parseJson(utf8Decode(data));
  } catch {
    throw fail("handshake is not valid JSON");
  }
  if (!(doc instanceof Map)) throw fail("handshake is not a JSON object");
  const version = doc.get("v");
  // The integer 1: not 1.0, not true (JSON.parse could not tell 1 from 1.0).
  if (!(version instanceof JsonInt) || version.value !== HANDSHAKE_VERSION) {
    throw fail("handshake version is not supported");
  }
  const sdp = doc.get("sdp");
  const kx = doc.get("kx");
  const info = doc.has("info") ? doc.get("info") : new Map();
  if (typeof sdp !== "string" || !sdp || codePoints(sdp) > MAX_SDP_CHARS) {
    throw fail("handshake has no usable SDP");
  }
  if (typeof kx !== "string") throw fail("handshake has no session key share");
  let kxPublic;
  try {
    kxPublic = b64urlDecode(kx);
  } catch {
    throw fail("handshake key share is not base64url");
  }
  if (kxPublic.length !== KX_PUBLIC_KEY_BYTES) throw fail("handshake key share has the wrong size");
  if (!(info instanceof Map) || info.size > MAX_INFO_ENTRIES) {
    throw fail("handshake info must be a small JSON object");
  }
  const infoObject = Object.create(null);
  for (const [key, value] of info) {
    if (typeof value !== "string" || codePoints(key) > MAX_INFO_CHARS || codePoints(value) > MAX_INFO_CHARS) {
      throw fail("handshake info entries must be short strings");
    }
    infoObject[key] = value;
  }
  let pake = null;
  if (doc.has("pake")) {
    const value = doc.get("pake");
    try {
      pake = typeof value === "string" ? b64urlDecode(value) : null;
    } catch {
      pake = null;
    }
    if (pake === null || pake.length !== PAKE_SHARE_BYTES) {
      throw fail("handshake password share is not 32 bytes of base64url");
    }
  }
  return { sdp, kxPublic, info: infoObject, pake };
}

/** Length in Unicode code points, as Python's len(str) counts. */
function codePoints(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

// A small strict JSON parser with Python's json.loads semantics where they differ
// from JSON.parse: it keeps integers apart from floats (Python refuses "v": 1.0),
// accepts NaN/Infinity like Python, and bounds nesting. Objects become Maps
// (duplicate keys: the last one wins, as in Python), integers JsonInt.

class JsonInt {
  constructor(text) {
    this.value = Number(text);
  }
}

const MAX_JSON_DEPTH = 900;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const JSON_WS = /[ \t\n\r]*/y;
const JSON_ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

function parseJson(text) {
  let pos = 0;
  const error = () => new SyntaxError(`bad JSON at ${pos}`);
  const ws = () => {
    JSON_WS.lastIndex = pos;
    JSON_WS.exec(text);
    pos = JSON_WS.lastIndex;
  };
  const literal = (word, value) => {
    if (!text.startsWith(word, pos)) throw error();
    pos += word.length;
    return value;
  };
  const string = () => {
    pos++; // opening quote
    let out = "";
    for (;;) {
      if (pos >= text.length) throw error();
      const c = text[pos];
      if (c === '"') {
        pos++;
        return out;
      }
      if (c.charCodeAt(0) < 0x20) throw error();
      if (c !== "\\") {
        out += c;
        pos++;
        continue;
      }
      const e = text[pos + 1];
      if (e === "u") {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw error();
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
      } else if (e !== undefined && Object.hasOwn(JSON_ESCAPES, e)) {
        out += JSON_ESCAPES[e];
        pos += 2;
      } else {
        throw error();
      }
    }
  };
  const value = (depth) => {
    if (depth > MAX_JSON_DEPTH) throw error();
    ws();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const map = new Map();
      ws();
      if (text[pos] === "}") {
        pos++;
        return map;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') throw error();
        const key = string();
        ws();
        if (text[pos] !== ":") throw error();
        pos++;
        map.set(key, value(depth + 1));
        ws();
        if (text[pos] === ",") {
          pos++;
        } else if (text[pos] === "}") {
          pos++;
          return map;
        } else {
          throw error();
        }
      }
    }
    if (c === "[") {
      pos++;
      const list = [];
      ws();
      if (text[pos] === "]") {
        pos++;
        return list;
      }
      for (;;) {
        list.push(value(depth + 1));
        ws();
        if (text[pos] === ",") {
          pos++;
        } else if (text[pos] === "]") {
          pos++;
          return list;
        } else {
          throw error();
        }
      }
    }
    if (c === '"') return string();
    if (c === "t") return literal("true", true);
    if (c === "f") return literal("false", false);
    if (c === "n") return literal("null", null);
    if (c === "N") return literal("NaN", NaN);
    if (c === "I") return literal("Infinity", Infinity);
    if (c === "-" && text[pos + 1] === "I") return literal("-Infinity", -Infinity);
    JSON_NUMBER.lastIndex = pos;
    const m = JSON_NUMBER.exec(text);
    if (!m) throw error();
    pos = JSON_NUMBER.lastIndex;
    return m[1] === undefined && m[2] === undefined ? new JsonInt(m[0]) : Number(m[0]);
  };
  const result = value(0);
  ws();
  if (pos !== text.length) throw error();
  return result;
}

// -- safety number -------------------------------------------------------------------

const SAFETY_GROUPS = 12;
const SAFETY_GROUP_BYTES = 5;
const SAFETY_QR_PREFIX = "p2pchat:sn:1:";

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** One value per pair of keys, the same on both sides: {groups, digits, qrPayload}. */
export function safetyNumber(keyA, keyB) {
  // Sorting the keys (as unsigned bytes) makes the number independent of who computes it.
  const [low, high] = compareBytes(keyA, keyB) <= 0 ? [keyA, keyB] : [keyB, keyA];
  const digest = derive(PURPOSES.SAFETY_NUMBER, concatBytes(low, high), SAFETY_GROUPS * SAFETY_GROUP_BYTES);
  const groups = [];
  for (let i = 0; i < digest.length; i += SAFETY_GROUP_BYTES) {
    let value = 0;
    for (let j = 0; j < SAFETY_GROUP_BYTES; j++) value = value * 256 + digest[i + j]; // < 2^40: exact
    groups.push(String(value % 100_000).padStart(5, "0"));
  }
  return { groups, digits: groups.join(" "), qrPayload: SAFETY_QR_PREFIX + groups.join("") };
}
