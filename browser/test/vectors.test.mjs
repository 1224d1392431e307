// tests/vectors/v1.json, the sections a browser guest uses: libsodium.js must agree
// with PyNaCl byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Direction,
  FrameType,
  KxKeyPair,
  LinkEnvelopes,
  ReplayGuard,
  StreamReceiver,
  b64urlDecode,
  decodeBatch,
  decodeFrame,
  decodeHandshake,
  encodeBatch,
  encodeFrame,
  encodeHandshake,
  linkFromFragment,
  linkFromSecret,
  safetyNumber,
  utf8Decode,
} from "../src/crypto.js";
import { hex, toHex, vectors } from "../test-support/helpers.mjs";

test("vector version is 1", () => {
  assert.equal(vectors.version, 1);
});

test("link: fragment, room id, envelope key", () => {
  const v = vectors.link;
  const link = linkFromSecret(hex(v.secret));
  assert.equal(link.fragment, v.fragment);
  assert.equal(link.roomId, v.room_id);
  assert.equal(toHex(link.envelopeKey), v.envelope_key);
  for (const fragment of [v.fragment, `#${v.fragment}`]) {
    const parsed = linkFromFragment(fragment);
    assert.equal(toHex(parsed.secret), v.secret);
    assert.equal(parsed.roomId, v.room_id);
  }
  const url = new URL(v.url);
  assert.equal(url.pathname, `/c/${v.room_id}`);
  assert.equal(url.hash, `#${v.fragment}`);
});

test("envelope_link: open gives the recorded fields", () => {
  const v = vectors.envelope_link;
  const envelopes = new LinkEnvelopes(hex(v.envelope_key), new ReplayGuard());
  const opened = envelopes.open(hex(v.envelope), Direction.RESPONDER, v.timestamp_ms);
  assert.equal(opened.kind, v.kind);
  assert.equal(opened.direction, v.direction);
  assert.equal(toHex(opened.sessionId), v.session_id);
  assert.equal(opened.timestampMs, v.timestamp_ms);
  assert.equal(toHex(opened.body), v.body);
  assert.equal(hex(v.envelope).length, 166);
});

test("envelope_link: seal with the recorded nonce gives the recorded bytes", () => {
  const v = vectors.envelope_link;
  const envelopes = new LinkEnvelopes(hex(v.envelope_key));
  const sealed = envelopes.seal(v.kind, v.direction, hex(v.session_id), hex(v.body), v.timestamp_ms, {
    nonce: hex(v.nonce),
  });
  assert.equal(toHex(sealed), v.envelope);
});

test("envelope_link: the link vector's key is the envelope vector's key", () => {
  assert.equal(vectors.envelope_link.envelope_key, vectors.link.envelope_key);
});

test("handshake body: decodes, and encodes back to the same bytes", () => {
  const body = hex(vectors.envelope_link.body);
  const decoded = decodeHandshake(body);
  assert.equal(decoded.sdp, "v=0\r\n");
  assert.deepEqual({ ...decoded.info }, { name: "Alice" });
  assert.equal(decoded.kxPublic.length, 32);
  assert.equal(toHex(encodeHandshake(decoded)), vectors.envelope_link.body);
  assert.equal(
    utf8Decode(body),
    '{"v":1,"sdp":"v=0\\r\\n","kx":"nfmYr-8B1TRR_PKZcrWFqeE5Xx0usB55k017yATtwDo","info":{"name":"Alice"}}',
  );
});

test("kx: seeded key pairs and client/server session keys", () => {
  const v = vectors.kx;
  const client = new KxKeyPair(hex(v.client_seed));
  const server = new KxKeyPair(hex(v.server_seed));
  assert.equal(toHex(client.publicKey), v.client_public);
  assert.equal(toHex(server.publicKey), v.server_public);
  const clientKeys = client.clientKeys(server.publicKey);
  assert.equal(toHex(clientKeys.rx), v.client_rx);
  assert.equal(toHex(clientKeys.tx), v.client_tx);
  const serverKeys = server.serverKeys(client.publicKey);
  assert.equal(toHex(serverKeys.rx), v.client_tx);
  assert.equal(toHex(serverKeys.tx), v.client_rx);
});

test("stream: pull the recorded ciphertexts with the recorded header", () => {
  const v = vectors.stream;
  assert.equal(v.key, vectors.kx.client_tx);
  const receiver = new StreamReceiver(hex(v.key), hex(v.header));
  for (const frame of v.frames) {
    const opened = receiver.open(hex(frame.ciphertext));
    assert.equal(toHex(opened.plaintext), frame.plaintext);
    assert.equal(opened.final, false);
    assert.equal(hex(frame.ciphertext).length, hex(frame.plaintext).length + 17);
  }
});

test("stream: the recorded frames out of order fail", () => {
  const v = vectors.stream;
  const receiver = new StreamReceiver(hex(v.key), hex(v.header));
  assert.throws(() => receiver.open(hex(v.frames[1].ciphertext)), { name: "StreamError" });
});

test("batch: split the recorded batch into the stream's ciphertexts, and pull them", () => {
  const v = vectors.batch;
  const items = decodeBatch(hex(v.encoded));
  assert.deepEqual(items.map(toHex), v.items);
  assert.equal(toHex(encodeBatch(items)), v.encoded);
  const receiver = new StreamReceiver(hex(vectors.stream.key), hex(vectors.stream.header));
  items.forEach((item, i) => {
    assert.equal(toHex(receiver.open(item).plaintext), vectors.stream.frames[i].plaintext);
  });
});

test("frames: encode and decode the recorded TEXT and RECEIPT", () => {
  for (const v of vectors.frames) {
    const frame = {
      type: v.type,
      messageId: hex(v.message_id),
      timestampMs: v.timestamp_ms,
      body: hex(v.body),
    };
    assert.equal(toHex(encodeFrame(frame)), v.encoded);
    const decoded = decodeFrame(hex(v.encoded));
    assert.equal(decoded.type, v.type);
    assert.equal(toHex(decoded.messageId), v.message_id);
    assert.equal(decoded.timestampMs, v.timestamp_ms);
    assert.equal(toHex(decoded.body), v.body);
    if (v.type === FrameType.TEXT) assert.equal(decoded.text, "hello, world ✓");
  }
});

test("safety number: digits and QR payload, either order", () => {
  const v = vectors.safety_number;
  for (const [a, b] of [
    [v.key_a, v.key_b],
    [v.key_b, v.key_a],
  ]) {
    const sn = safetyNumber(hex(a), hex(b));
    assert.equal(sn.digits, v.digits);
    assert.equal(sn.qrPayload, v.qr_payload);
    assert.equal(sn.groups.length, 12);
  }
  assert.equal(v.key_a, vectors.identity[0].public_key);
});

test("identity public keys are canonical base64url round trips", () => {
  for (const identity of vectors.identity) {
    const pk = hex(identity.public_key);
    const text = Buffer.from(pk).toString("base64url");
    assert.equal(toHex(b64urlDecode(text)), identity.public_key);
  }
});
