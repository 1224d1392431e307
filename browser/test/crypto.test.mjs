// Refusals of the crypto layer: every envelope error code, the replay window, strict
// base64url, frame and handshake bounds (the same rules as the Python decoders).
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  DEFAULT_MAX_AGE_MS,
  Direction,
  EnvelopeKind,
  FrameType,
  KxKeyPair,
  LinkEnvelopes,
  MAX_FRAME_BODY_BYTES,
  ReplayGuard,
  StreamReceiver,
  StreamSender,
  b64urlDecode,
  b64urlEncode,
  decodeFrame,
  decodeHandshake,
  encodeFrame,
  encodeHandshake,
  linkFromFragment,
  safetyNumber,
  utf8Encode,
} from "../src/crypto.js";
import { hex, toHex, vectors } from "../test-support/helpers.mjs";

const NOW = 1_767_225_600_000;
const KEY = hex(vectors.link.envelope_key);
const SID = hex("000102030405060708090a0b0c0d0e0f");
const BODY = utf8Encode('{"v":1}');

function sealed({ direction = Direction.RESPONDER, ts = NOW, nonce } = {}) {
  return new LinkEnvelopes(KEY).seal(EnvelopeKind.ANSWER, direction, SID, BODY, ts, { nonce });
}

function openWith(data, { expected = Direction.RESPONDER, now = NOW, guard = new ReplayGuard() } = {}) {
  return new LinkEnvelopes(KEY, guard).open(data, expected, now);
}

const code = (c) => (err) => {
  assert.equal(err.code, c, `expected ${c}, got ${err.code}: ${err.message}`);
  return true;
};

test("envelope: seal/open round trip", () => {
  const opened = openWith(sealed());
  assert.equal(opened.kind, EnvelopeKind.ANSWER);
  assert.equal(opened.direction, Direction.RESPONDER);
  assert.deepEqual(opened.sessionId, SID);
  assert.equal(opened.timestampMs, NOW);
  assert.deepEqual(opened.body, BODY);
});

test("envelope: a flipped bit anywhere after the version byte is refused", () => {
  const data = sealed();
  for (let i = 1; i < data.length; i++) {
    const bad = data.slice();
    bad[i] ^= 0x01;
    // byte 1 is the scheme: another scheme is malformed; everything else fails the AEAD
    assert.throws(() => openWith(bad), code(i === 1 ? "malformed" : "tampered"), `byte ${i}`);
  }
});

test("envelope: wrong link key is tampered", () => {
  const other = linkFromFragment("A".repeat(43));
  assert.throws(
    () => new LinkEnvelopes(other.envelopeKey).open(sealed(), Direction.RESPONDER, NOW),
    code("tampered"),
  );
});

test("envelope: our own direction sent back is reflected", () => {
  assert.throws(() => openWith(sealed({ direction: Direction.INITIATOR })), code("reflected"));
});

test("envelope: unknown direction value is malformed", () => {
  assert.throws(() => openWith(sealed({ direction: 7 })), code("malformed"));
});

test("envelope: replay of the same envelope is replayed", () => {
  const guard = new ReplayGuard();
  const data = sealed();
  openWith(data, { guard });
  assert.throws(() => openWith(data, { guard }), code("replayed"));
});

test("envelope: stale both ways, 5 minutes inclusive", () => {
  assert.throws(() => openWith(sealed({ ts: NOW - DEFAULT_MAX_AGE_MS - 1 })), code("stale"));
  assert.throws(() => openWith(sealed({ ts: NOW + DEFAULT_MAX_AGE_MS + 1 })), code("stale"));
  openWith(sealed({ ts: NOW - DEFAULT_MAX_AGE_MS }));
  openWith(sealed({ ts: NOW + DEFAULT_MAX_AGE_MS }));
});

test("envelope: size and version checks, in the documented order", () => {
  const data = sealed();
  assert.throws(() => openWith(new Uint8Array(0)), code("malformed"));
  assert.throws(() => openWith(Uint8Array.of(1)), code("malformed"));
  assert.throws(() => openWith(new Uint8Array(64 * 1024 + 1)), code("malformed"));
  const v2 = data.slice();
  v2[0] = 2;
  assert.throws(() => openWith(v2), code("unsupported"));
  assert.throws(() => openWith(Uint8Array.of(2, 2)), code("unsupported"));
  assert.throws(() => openWith(Uint8Array.of(1, 1, ...new Uint8Array(200))), code("malformed"));
  assert.throws(() => openWith(data.slice(0, 67)), code("malformed"));
  assert.throws(() => openWith(data.slice(0, 68)), code("tampered"));
});

test("envelope: minimum size is 68 bytes (empty body)", () => {
  const data = new LinkEnvelopes(KEY).seal(1, Direction.RESPONDER, SID, new Uint8Array(0), NOW);
  assert.equal(data.length, 68);
  assert.equal(openWith(data).body.length, 0);
});

test("envelope: seal refuses a body over 48 KiB and a bad session id", () => {
  const envelopes = new LinkEnvelopes(KEY);
  envelopes.seal(1, 1, SID, new Uint8Array(48 * 1024), NOW);
  assert.throws(() => envelopes.seal(1, 1, SID, new Uint8Array(48 * 1024 + 1), NOW), RangeError);
  assert.throws(() => envelopes.seal(1, 1, new Uint8Array(15), BODY, NOW), RangeError);
});

test("replay guard: expiry raises the floor; capacity eviction refuses older envelopes", () => {
  const nonce = (n) => Uint8Array.of(n, ...new Uint8Array(23));
  const guard = new ReplayGuard({ capacity: 2 });
  guard.check(nonce(1), NOW, NOW);
  guard.check(nonce(2), NOW + 1, NOW);
  guard.check(nonce(3), NOW + 2, NOW); // evicts nonce 1, floor = NOW
  assert.equal(guard.size, 2);
  assert.throws(() => guard.check(nonce(1), NOW, NOW), code("stale")); // not replayable
  assert.throws(() => guard.check(nonce(9), NOW, NOW), code("stale")); // honest but not newer
  assert.throws(() => guard.check(nonce(2), NOW + 1, NOW), code("replayed"));
  assert.throws(() => guard.check(nonce(3), NOW + 2, NOW), code("replayed"));

  const aging = new ReplayGuard();
  aging.check(nonce(1), NOW, NOW);
  const later = NOW + DEFAULT_MAX_AGE_MS + 10;
  aging.check(nonce(2), later, later); // expires nonce 1
  assert.equal(aging.size, 1);
  assert.throws(() => aging.check(nonce(1), NOW, later), code("stale"));
});

test("replay guard: default capacity is 65536 and stays bounded", () => {
  const guard = new ReplayGuard();
  const nonce = new Uint8Array(24);
  const view = new DataView(nonce.buffer);
  for (let i = 0; i < 65_536 + 10; i++) {
    view.setUint32(0, i);
    guard.check(nonce, NOW + i, NOW + i);
  }
  assert.equal(guard.size, 65_536);
});

test("base64url: canonical, unpadded, url alphabet only", () => {
  assert.deepEqual(b64urlDecode(""), new Uint8Array(0));
  assert.deepEqual(b64urlDecode("_-8"), Uint8Array.of(0xff, 0xef));
  assert.equal(b64urlEncode(Uint8Array.of(0xfb, 0xff)), "-_8");
  for (const bad of ["A", "AB=", "AB==", "+/8", "AB C", "AR", "AAB", "Zh", "ab\n", "ÄÄ", "AAAAA"]) {
    assert.throws(() => b64urlDecode(bad), /base64url/, JSON.stringify(bad));
  }
  assert.deepEqual(b64urlDecode("AA"), Uint8Array.of(0));
  assert.deepEqual(b64urlDecode("AAE"), Uint8Array.of(0, 1));
});

test("link: damaged fragments", () => {
  const good = vectors.link.fragment;
  for (const bad of ["", "#", good.slice(0, 42), `${good}A`, `${good.slice(0, 42)}h`, good.replace("_", "/")]) {
    assert.throws(() => linkFromFragment(bad), /the link is damaged: ask for a new one/, bad);
  }
});

test("kx: wrong-size and low-order key shares are refused", () => {
  const pair = new KxKeyPair();
  assert.throws(() => pair.clientKeys(new Uint8Array(31)), /wrong size/);
  assert.throws(() => pair.clientKeys(new Uint8Array(32)), /unusable/);
  assert.throws(() => pair.serverKeys(new Uint8Array(32)), /unusable/);
});

test("stream: round trip, FINAL, tamper, truncation, wrong header size", () => {
  const key = new Uint8Array(32).fill(3);
  const sender = new StreamSender(key);
  assert.equal(sender.header.length, 24);
  const a = sender.seal(Uint8Array.of(1, 2, 3));
  const b = sender.seal(Uint8Array.of(4), { final: true });
  assert.equal(a.length, 3 + 17);
  const receiver = new StreamReceiver(key, sender.header);
  assert.deepEqual(receiver.open(a), { plaintext: Uint8Array.of(1, 2, 3), final: false });
  assert.deepEqual(receiver.open(b), { plaintext: Uint8Array.of(4), final: true });
  assert.throws(() => receiver.open(a), /after the end/);

  const r2 = new StreamReceiver(key, sender.header);
  const bad = a.slice();
  bad[5] ^= 0x80;
  assert.throws(() => r2.open(bad), /failed authentication/);
  assert.throws(() => new StreamReceiver(key, sender.header).open(new Uint8Array(16)), /too short/);
  assert.throws(() => new StreamReceiver(key, new Uint8Array(23)), /wrong size/);
});

test("frames: every refusal is bad-frame", () => {
  const id = new Uint8Array(16).fill(7);
  const text = encodeFrame({ type: FrameType.TEXT, messageId: id, timestampMs: NOW, body: utf8Encode("hi") });
  const cases = {
    "too short": text.slice(0, 25),
    "over 64 KiB": new Uint8Array(64 * 1024 + 1),
    version: Uint8Array.of(2, ...text.slice(1)),
    "unknown type": Uint8Array.of(1, 10, ...text.slice(2)),
    "file offer without a body": Uint8Array.of(1, FrameType.FILE_OFFER, ...text.slice(2, 26)),
    "file control without a body": Uint8Array.of(1, FrameType.FILE_CONTROL, ...text.slice(2, 26)),
    "group message without a body": Uint8Array.of(1, FrameType.GROUP_MESSAGE, ...text.slice(2, 26)),
    "group list without a body": Uint8Array.of(1, FrameType.GROUP_LIST, ...text.slice(2, 26)),
    "type 0": Uint8Array.of(1, 0, ...text.slice(2)),
    "bad utf-8": Uint8Array.of(...text.slice(0, 26), 0xff),
    "surrogate utf-8": Uint8Array.of(...text.slice(0, 26), 0xed, 0xa0, 0x80),
    "receipt with body": Uint8Array.of(1, FrameType.RECEIPT, ...text.slice(2)),
    "close with body": Uint8Array.of(1, FrameType.CLOSE, ...text.slice(2)),
  };
  for (const [name, data] of Object.entries(cases)) {
    assert.throws(() => decodeFrame(data), code("bad-frame"), name);
  }
  const max = encodeFrame({ type: FrameType.TEXT, messageId: id, timestampMs: NOW, body: new Uint8Array(MAX_FRAME_BODY_BYTES).fill(0x61) });
  assert.equal(max.length, 64 * 1024);
  assert.equal(decodeFrame(max).text.length, MAX_FRAME_BODY_BYTES);
  assert.throws(
    () => encodeFrame({ type: FrameType.TEXT, messageId: id, timestampMs: NOW, body: new Uint8Array(MAX_FRAME_BODY_BYTES + 1) }),
    RangeError,
  );
  assert.equal(decodeFrame(encodeFrame({ type: FrameType.CLOSE, messageId: new Uint8Array(16), timestampMs: 0 })).type, FrameType.CLOSE);
});

const KX = b64urlEncode(new Uint8Array(32).fill(1));
const hs = (text) => decodeHandshake(utf8Encode(text));

test("handshake: accepted shapes", () => {
  assert.equal(hs(`{"v":1,"sdp":"x","kx":"${KX}"}`).sdp, "x");
  assert.deepEqual({ ...hs(`{"v":1,"sdp":"x","kx":"${KX}"}`).info }, {});
  assert.deepEqual({ ...hs(` {"sdp":"x","v":1,"kx":"${KX}","info":{"a":"b"},"extra":[1.5,null,{"q":true}]} `).info }, { a: "b" });
  assert.equal(hs(`{"v":1,"sdp":"${"s".repeat(32768)}","kx":"${KX}"}`).sdp.length, 32768);
  assert.equal(hs(`{"v":1,"sdp":"${"😀".repeat(32768)}","kx":"${KX}"}`).sdp.length, 65536); // code points count
  assert.equal(hs(`{"v":1,"sdp":"\\ud83d\\ude00","kx":"${KX}"}`).sdp, "😀");
  assert.equal(hs(`{"v":2,"v":1,"sdp":"x","kx":"${KX}"}`).sdp, "x"); // last duplicate wins
  const info = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, "v".repeat(256)]));
  assert.equal(Object.keys(hs(JSON.stringify({ v: 1, sdp: "x", kx: KX, info })).info).length, 16);
  assert.equal(hs(`{"v":1,"sdp":"x","kx":"${KX}","info":{"__proto__":"p"}}`).info.__proto__, "p");
});

test("handshake: refusals are bad-handshake", () => {
  const bad = [
    "",
    "[]",
    "null",
    "\ufeff{}",
    `{"v":1.0,"sdp":"x","kx":"${KX}"}`,
    `{"v":1e0,"sdp":"x","kx":"${KX}"}`,
    `{"v":true,"sdp":"x","kx":"${KX}"}`,
    `{"v":"1","sdp":"x","kx":"${KX}"}`,
    `{"v":2,"sdp":"x","kx":"${KX}"}`,
    `{"sdp":"x","kx":"${KX}"}`,
    `{"v":1,"sdp":"","kx":"${KX}"}`,
    `{"v":1,"sdp":5,"kx":"${KX}"}`,
    `{"v":1,"sdp":"${"s".repeat(32769)}","kx":"${KX}"}`,
    `{"v":1,"sdp":"x"}`,
    `{"v":1,"sdp":"x","kx":"${KX}="}`,
    `{"v":1,"sdp":"x","kx":"${KX.slice(0, -1)}"}`,
    `{"v":1,"sdp":"x","kx":"AAAA"}`,
    `{"v":1,"sdp":"x","kx":"${KX}","info":null}`,
    `{"v":1,"sdp":"x","kx":"${KX}","info":[]}`,
    `{"v":1,"sdp":"x","kx":"${KX}","info":{"a":1}}`,
    `{"v":1,"sdp":"x","kx":"${KX}","info":{"a":"${"v".repeat(257)}"}}`,
    `{"v":1,"sdp":"x","kx":"${KX}","info":{"${"k".repeat(257)}":"v"}}`,
    JSON.stringify({ v: 1, sdp: "x", kx: KX, info: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, ""])) }),
    `{"v":1,"sdp":"x","kx":"${KX}",}`,
    `{"v":1,"sdp":"x\u0001","kx":"${KX}"}`,
    `{"v":01,"sdp":"x","kx":"${KX}"}`,
    `{'v':1}`,
    `{"v":1,"sdp":"x","kx":"${KX}"} x`,
    `${"[".repeat(5000)}${"]".repeat(5000)}`,
  ];
  for (const text of bad) {
    assert.throws(() => hs(text), code("bad-handshake"), text.slice(0, 80));
  }
  assert.throws(() => decodeHandshake(Uint8Array.of(0x7b, 0xff, 0x7d)), code("bad-handshake"));
});

test("handshake: encode is compact JSON with non-ASCII kept", () => {
  const body = encodeHandshake({ sdp: "v=0\r\n", kxPublic: new Uint8Array(32), info: { name: "Zoë ✓" } });
  const text = new TextDecoder().decode(body);
  assert.equal(text, `{"v":1,"sdp":"v=0\\r\\n","kx":"${"A".repeat(43)}","info":{"name":"Zoë ✓"}}`);
});

test("safety number: bytewise order, not string order; 12 groups of 5 digits", () => {
  const a = new Uint8Array(32).fill(0x7f);
  const b = new Uint8Array(32).fill(0x80);
  const sn = safetyNumber(a, b);
  assert.deepEqual(safetyNumber(b, a), sn);
  assert.match(sn.digits, /^\d{5}( \d{5}){11}$/);
  assert.equal(sn.qrPayload, `p2pchat:sn:1:${sn.groups.join("")}`);
  assert.notEqual(safetyNumber(a, a).digits, sn.digits);
});
