// The guest session state machine against a JavaScript owner (Role.RESPONDER) in
// memory: handshake, both stream headers, every frame type, close, and refusals.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Direction,
  EnvelopeKind,
  LinkEnvelopes,
  ReplayGuard,
  b64urlDecode,
  b64urlEncode,
  decodeBatch,
  encodeBatch,
  encodeHandshake,
  linkFromSecret,
  randomBytes,
  safetyNumber,
} from "../src/crypto.js";
import { Role, Session, SessionState } from "../src/session.js";

const NOW = Date.now();
const OWNER_PK = new Uint8Array(32).fill(0x42);

function pair() {
  const link = linkFromSecret(randomBytes(32));
  const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()));
  const owner = new Session(Role.RESPONDER, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()));
  return { link, guest, owner };
}

function handshake({ guest, owner }) {
  const offer = guest.makeOffer("v=0\r\nguest\r\n", { guest: "g1", name: "Zoë" }, NOW);
  const received = owner.receiveOffer(offer, NOW);
  const answer = owner.makeAnswer("v=0\r\nowner\r\n", { name: "Alice", pk: b64urlEncode(OWNER_PK) }, NOW);
  const answered = guest.receiveAnswer(answer, NOW);
  return { offer, received, answer, answered };
}

function open(sessions) {
  handshake(sessions);
  const { guest, owner } = sessions;
  assert.deepEqual(owner.receiveData(guest.streamHeader(), NOW), []); // guest's header first
  assert.deepEqual(guest.receiveData(owner.streamHeader(), NOW), [{ type: "opened" }]);
  assert.equal(owner.state, SessionState.OPEN); // completed silently by its own header
  assert.equal(guest.state, SessionState.OPEN);
}

const code = (c) => (err) => {
  assert.equal(err.code, c, `expected ${c}, got ${err.code}: ${err.message}`);
  return true;
};

test("handshake: offer and answer carry SDP and info; same session id; states", () => {
  const s = pair();
  assert.equal(s.guest.state, SessionState.NEW);
  const { received, answered } = handshake(s);
  assert.equal(received.sdp, "v=0\r\nguest\r\n");
  assert.deepEqual({ ...received.info }, { guest: "g1", name: "Zoë", batch: "1" });
  assert.deepEqual(received.sessionId, s.guest.sessionId);
  assert.deepEqual(s.owner.sessionId, s.guest.sessionId);
  assert.equal(answered.sdp, "v=0\r\nowner\r\n");
  assert.equal(answered.info.name, "Alice");
  assert.equal(s.guest.state, SessionState.KEYED);
  assert.equal(s.owner.state, SessionState.KEYED);
  // both sides compute the same safety number from the owner's key and the guest's kx key
  const guestSide = safetyNumber(b64urlDecode(answered.info.pk), s.guest.kxPublicKey);
  const ownerSide = safetyNumber(s.guest.kxPublicKey, OWNER_PK);
  assert.equal(guestSide.digits, ownerSide.digits);
  assert.deepEqual(received.kxPublic, s.guest.kxPublicKey);
});

test("chat: frames both ways, receipts, ping/pong, close with FINAL", () => {
  const s = pair();
  open(s);
  const { guest, owner } = s;
  const sent = guest.sendText("hello ✓", NOW);
  const [msg] = owner.receiveData(sent.data, NOW);
  assert.equal(msg.type, "message");
  assert.equal(msg.text, "hello ✓");
  assert.deepEqual(msg.messageId, sent.messageId);
  assert.equal(msg.timestampMs, NOW);
  assert.deepEqual(guest.receiveData(owner.sendReceipt(msg.messageId, NOW), NOW), [
    { type: "receipt", messageId: sent.messageId },
  ]);
  const reply = owner.sendText("hi there", NOW + 1);
  assert.equal(guest.receiveData(reply.data, NOW)[0].text, "hi there");
  const ping = owner.ping(NOW);
  assert.deepEqual(guest.receiveData(ping.data, NOW), [{ type: "ping", pingId: ping.pingId }]);
  assert.deepEqual(owner.receiveData(guest.pong(ping.pingId, NOW + 5), NOW), [
    { type: "pong", pingId: ping.pingId, timestampMs: NOW + 5 },
  ]);
  // resend with the same id (after a reconnect the page resends undelivered messages)
  const again = guest.sendText("hello ✓", NOW, { messageId: sent.messageId });
  assert.deepEqual(owner.receiveData(again.data, NOW)[0].messageId, sent.messageId);
  assert.deepEqual(owner.receiveData(guest.close(NOW), NOW), [{ type: "closed" }]);
  assert.equal(guest.state, SessionState.CLOSED);
  assert.equal(owner.state, SessionState.CLOSED);
  assert.throws(() => owner.receiveData(new Uint8Array(40), NOW), code("closed"));
  assert.throws(() => guest.sendText("late", NOW), code("local"));
});

test("chat: sending may start as soon as our header is out (KEYED)", () => {
  const s = pair();
  handshake(s);
  const header = s.guest.streamHeader();
  assert.equal(s.guest.streamHeader(), header); // idempotent
  const early = s.guest.sendText("early", NOW);
  assert.equal(s.guest.state, SessionState.KEYED);
  s.owner.receiveData(header, NOW);
  assert.equal(s.owner.receiveData(early.data, NOW)[0].text, "early");
});

test("chat: the owner's header first opens the guest on its own header", () => {
  const s = pair();
  handshake(s);
  assert.deepEqual(s.guest.receiveData(s.owner.streamHeader(), NOW), []);
  assert.equal(s.guest.state, SessionState.KEYED);
  s.guest.streamHeader();
  assert.equal(s.guest.state, SessionState.OPEN);
});

test("stream refusals: bad header, tampered, reordered, text too long", () => {
  const s = pair();
  handshake(s);
  assert.throws(() => s.guest.receiveData(new Uint8Array(23), NOW), code("bad-stream"));
  const t = pair();
  open(t);
  t.owner.sendText("one", NOW); // never delivered
  const b = t.owner.sendText("two", NOW).data;
  assert.throws(() => t.guest.receiveData(b, NOW), code("bad-stream")); // out of order
  const u = pair();
  open(u);
  const bad = u.owner.sendText("x", NOW).data.slice();
  bad[bad.length - 1] ^= 1;
  assert.throws(() => u.guest.receiveData(bad, NOW), code("bad-stream"));
  assert.throws(() => u.guest.sendText("x".repeat(65_511), NOW), code("local"));
  u.guest.sendText("x".repeat(65_510), NOW);
});

test("a FINAL tag on a non-CLOSE frame, or CLOSE without FINAL, is bad-frame", () => {
  const s = pair();
  open(s);
  const sender = s.owner._sender;
  const id = new Uint8Array(16);
  const closeNoFinal = sender.seal(Uint8Array.of(1, 5, ...id, 0, 0, 0, 0, 0, 0, 0, 0));
  assert.throws(() => s.guest.receiveData(encodeBatch([closeNoFinal]), NOW), code("bad-frame"));
  const t = pair();
  open(t);
  const textFinal = t.owner._sender.seal(Uint8Array.of(1, 1, ...id, 0, 0, 0, 0, 0, 0, 0, 0, 0x61), { final: true });
  assert.throws(() => t.guest.receiveData(encodeBatch([textFinal]), NOW), code("bad-frame"));
});

test("handshake refusals: tampered, reflected, replayed, stale, wrong session, wrong kind", () => {
  // bit flip
  let s = pair();
  let offer = s.guest.makeOffer("v=0", {}, NOW);
  s.owner.receiveOffer(offer, NOW);
  let answer = s.owner.makeAnswer("v=0", {}, NOW);
  const flipped = answer.slice();
  flipped[40] ^= 0x04;
  assert.throws(() => s.guest.receiveAnswer(flipped, NOW), code("tampered"));
  assert.equal(s.guest.state, SessionState.OFFER_SENT); // still waiting for a genuine answer
  s.guest.receiveAnswer(answer, NOW);

  // reflection: the guest's own offer sent back as if it were the answer
  s = pair();
  offer = s.guest.makeOffer("v=0", {}, NOW);
  assert.throws(() => s.guest.receiveAnswer(offer, NOW), code("reflected"));

  // replay: the same answer twice to a new session with the same guard
  const link = linkFromSecret(randomBytes(32));
  const guard = new ReplayGuard();
  const g1 = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, guard));
  const owner = new Session(Role.RESPONDER, new LinkEnvelopes(link.envelopeKey));
  owner.receiveOffer(g1.makeOffer("v=0", {}, NOW), NOW);
  answer = owner.makeAnswer("v=0", {}, NOW);
  g1.receiveAnswer(answer, NOW);
  const g2 = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, guard), { sessionId: g1.sessionId });
  g2.makeOffer("v=0", {}, NOW);
  assert.throws(() => g2.receiveAnswer(answer, NOW), code("replayed"));

  // stale: an answer from 6 minutes ago, and one from 6 minutes in the future
  for (const skew of [-6 * 60_000, 6 * 60_000]) {
    s = pair();
    s.owner.receiveOffer(s.guest.makeOffer("v=0", {}, NOW), NOW);
    answer = s.owner.makeAnswer("v=0", {}, NOW + skew);
    assert.throws(() => s.guest.receiveAnswer(answer, NOW), code("stale"));
  }

  // wrong session: a genuine answer to another offer under the same link
  s = pair();
  const other = new Session(Role.INITIATOR, new LinkEnvelopes(s.link.envelopeKey));
  s.guest.makeOffer("v=0", {}, NOW);
  s.owner.receiveOffer(other.makeOffer("v=0", {}, NOW), NOW);
  assert.throws(() => s.guest.receiveAnswer(s.owner.makeAnswer("v=0", {}, NOW), NOW), code("wrong-session"));

  // wrong kind: a responder-direction envelope that is not an ANSWER
  s = pair();
  s.guest.makeOffer("v=0", {}, NOW);
  const envelopes = new LinkEnvelopes(s.link.envelopeKey);
  const body = encodeHandshake({ sdp: "v=0", kxPublic: new Uint8Array(32).fill(9) });
  const notAnswer = envelopes.seal(EnvelopeKind.OFFER, Direction.RESPONDER, s.guest.sessionId, body, NOW);
  assert.throws(() => s.guest.receiveAnswer(notAnswer, NOW), code("wrong-kind"));

  // bad handshake: an unusable key share (all zeros)
  const zeroKx = envelopes.seal(
    EnvelopeKind.ANSWER, Direction.RESPONDER, s.guest.sessionId,
    encodeHandshake({ sdp: "v=0", kxPublic: new Uint8Array(32) }), NOW,
  );
  assert.throws(() => s.guest.receiveAnswer(zeroKx, NOW), code("bad-handshake"));
});

test("local misuse is LocalProtocolError (code local)", () => {
  const s = pair();
  assert.throws(() => s.guest.receiveAnswer(new Uint8Array(80), NOW), code("local"));
  assert.throws(() => s.guest.streamHeader(), code("local"));
  assert.throws(() => s.guest.receiveData(new Uint8Array(24), NOW), code("local"));
  assert.throws(() => s.guest.makeAnswer("v=0"), code("local"));
  assert.throws(() => s.guest.receiveOffer(new Uint8Array(80)), code("local"));
  s.guest.makeOffer("v=0", {}, NOW);
  assert.throws(() => s.guest.makeOffer("v=0", {}, NOW), code("local"));
  assert.throws(() => s.guest.ping(NOW), code("local"));
  assert.throws(() => s.owner.makeAnswer("v=0"), code("local"));
});

test("batches: several frames in one channel message, in order; CLOSE last", () => {
  const s = pair();
  open(s);
  assert.equal(s.guest.batching, true);
  const sealed = (data) => decodeBatch(data)[0]; // each send is a batch of one
  const a = s.owner.sendText("one", NOW);
  const b = s.owner.sendText("two", NOW);
  const batch = encodeBatch([sealed(a.data), sealed(b.data), sealed(s.owner.close(NOW))]);
  assert.deepEqual(
    s.guest.receiveData(batch, NOW).map((e) => e.text ?? e.type),
    ["one", "two", "closed"],
  );
});

test("batches: malformed ones are bad-batch; frames after CLOSE too", () => {
  const item = () => {
    const s = pair();
    open(s);
    return s;
  };
  let s = item();
  const one = decodeBatch(s.owner.sendText("x", NOW).data)[0];
  const cases = [
    new Uint8Array(0), // empty
    Uint8Array.of(0, 0, 0), // ends inside a length
    Uint8Array.of(0, 0, 0, 16, ...new Uint8Array(16)), // item under 17 bytes
    Uint8Array.of(0, 0, 0, 40, ...one), // runs past the end
    Uint8Array.of(...encodeBatch([one]), 0), // trailing byte
  ];
  for (const data of cases) {
    s = item();
    assert.throws(() => s.guest.receiveData(data, NOW), code("bad-batch"), String(data));
  }
  s = item();
  const closing = decodeBatch(s.owner.close(NOW))[0];
  const after = s.owner._sender.seal(Uint8Array.of(1, 3, ...new Uint8Array(24)));
  assert.throws(() => s.guest.receiveData(encodeBatch([closing, after]), NOW), code("bad-batch"));
});

test("batches only when both ends announce them (a page talks to an older owner)", () => {
  const link = linkFromSecret(randomBytes(32));
  const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()));
  const owner = new Session(Role.RESPONDER, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), {
    batch: false,
  });
  open({ guest, owner });
  assert.equal(guest.batching, false);
  assert.equal(owner.batching, false);
  const sent = guest.sendText("plain", NOW);
  assert.equal(owner.receiveData(sent.data, NOW)[0].text, "plain");
});

// -- groups: groups=1 and gk in the handshake info, frames 6 and 7 ----------------------

function groupPair({ guestGroups = true, ownerGroups = true } = {}) {
  const link = linkFromSecret(randomBytes(32));
  const groupKey = randomBytes(32);
  const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), {
    groups: guestGroups,
    groupKey: guestGroups ? groupKey : null,
  });
  const owner = new Session(Role.RESPONDER, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), {
    groups: ownerGroups,
  });
  return { link, guest, owner, groupKey };
}

test("groups: the offer announces groups=1 and gk (b64url of our group key); both ends -> groups", () => {
  const s = groupPair();
  const { received, answered } = handshake(s);
  assert.deepEqual({ ...received.info }, { guest: "g1", name: "Zoë", batch: "1", groups: "1", gk: b64urlEncode(s.groupKey) });
  assert.deepEqual(b64urlDecode(received.info.gk), s.groupKey);
  assert.equal(answered.info.groups, "1");
  assert.equal(answered.info.gk, undefined); // an owner without a group key announces none
  assert.equal(s.guest.groups, true);
  assert.equal(s.owner.groups, true);
});

test("groups: GROUP_LIST and GROUP_MESSAGE frames both ways, receipts by the frame's id", () => {
  const s = groupPair();
  open(s);
  const listId = randomBytes(16);
  const list = s.owner.sendGroupList(Uint8Array.of(1, 2, 3), NOW, { messageId: listId });
  const msg = s.owner.sendGroupMessage(Uint8Array.of(4, 5), NOW + 1, { messageId: randomBytes(16) });
  const events = s.guest.receiveData(encodeBatch([decodeBatch(list)[0], decodeBatch(msg)[0]]), NOW);
  assert.deepEqual(events[0], { type: "group", kind: 7, messageId: listId, timestampMs: NOW, payload: Uint8Array.of(1, 2, 3) });
  assert.equal(events[1].kind, 6);
  assert.deepEqual(events[1].payload, Uint8Array.of(4, 5));
  assert.deepEqual(s.owner.receiveData(s.guest.sendReceipt(listId, NOW), NOW), [{ type: "receipt", messageId: listId }]);
  const copyId = randomBytes(16);
  const [back] = s.owner.receiveData(s.guest.sendGroupMessage(Uint8Array.of(9), NOW, { messageId: copyId }), NOW);
  assert.deepEqual(back, { type: "group", kind: 6, messageId: copyId, timestampMs: NOW, payload: Uint8Array.of(9) });
  assert.throws(() => s.guest.sendGroupMessage(new Uint8Array(0), NOW, { messageId: copyId }), code("local"));
  assert.throws(() => s.guest.sendGroupMessage(new Uint8Array(65_511), NOW, { messageId: copyId }), code("local"));
  s.guest.sendGroupMessage(new Uint8Array(65_510), NOW, { messageId: copyId });
});

test("groups: an owner that did not announce them gets none; a session that did not refuses frames 6/7", () => {
  const old = groupPair({ ownerGroups: false });
  const { answered } = handshake(old);
  assert.equal(answered.info.groups, undefined);
  assert.equal(old.owner.peerInfo.gk, b64urlEncode(old.groupKey)); // an old owner just ignores it
  old.owner.receiveData(old.guest.streamHeader(), NOW);
  old.guest.receiveData(old.owner.streamHeader(), NOW);
  assert.equal(old.guest.groups, false);
  assert.throws(() => old.guest.sendGroupMessage(Uint8Array.of(1), NOW, { messageId: randomBytes(16) }), code("local"));
  assert.throws(() => old.owner.sendGroupList(Uint8Array.of(1), NOW, { messageId: randomBytes(16) }), code("local"));
  // a page session made without groups (the probe) refuses them as a peer from before groups
  const s = groupPair({ guestGroups: false });
  open(s);
  assert.equal(s.owner.groups, false);
  const sealed = s.owner._sender.seal(Uint8Array.of(1, 7, ...new Uint8Array(24), 1));
  assert.throws(() => s.guest.receiveData(encodeBatch([sealed]), NOW), code("bad-frame"));
  // and an empty group frame is bad-frame even when announced
  const t = groupPair();
  open(t);
  const empty = t.owner._sender.seal(Uint8Array.of(1, 6, ...new Uint8Array(24)));
  assert.throws(() => t.guest.receiveData(encodeBatch([empty]), NOW), code("bad-frame"));
});

// -- files: files=1 in the handshake info, frames 8 and 9 -------------------------------

function filePair({ guestFiles = true, ownerFiles = true } = {}) {
  const link = linkFromSecret(randomBytes(32));
  const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), { files: guestFiles });
  const owner = new Session(Role.RESPONDER, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), { files: ownerFiles });
  return { link, guest, owner };
}

test("files: both ends announce files=1; offers and controls both ways", () => {
  const s = filePair();
  const { received, answered } = handshake(s);
  assert.equal(received.info.files, "1");
  assert.equal(answered.info.files, "1");
  s.owner.receiveData(s.guest.streamHeader(), NOW);
  s.guest.receiveData(s.owner.streamHeader(), NOW);
  assert.equal(s.guest.files, true);
  assert.equal(s.owner.files, true);
  const transferId = randomBytes(16);
  const [offer] = s.owner.receiveData(s.guest.sendFileOffer(Uint8Array.of(1, 2), NOW, { messageId: transferId }), NOW);
  assert.deepEqual(offer, { type: "file", kind: 8, messageId: transferId, timestampMs: NOW, payload: Uint8Array.of(1, 2) });
  const [control] = s.guest.receiveData(s.owner.sendFileControl(Uint8Array.of(3), NOW), NOW);
  assert.equal(control.kind, 9);
  assert.deepEqual(control.payload, Uint8Array.of(3));
  assert.throws(() => s.guest.sendFileControl(new Uint8Array(0), NOW), code("local"));
  assert.throws(() => s.guest.sendFileControl(new Uint8Array(65_511), NOW), code("local"));
});

test("files: without the owner's files=1 none are sent; a session that did not announce refuses 8/9", () => {
  const old = filePair({ ownerFiles: false });
  const { answered } = handshake(old);
  assert.equal(answered.info.files, undefined);
  old.owner.receiveData(old.guest.streamHeader(), NOW);
  old.guest.receiveData(old.owner.streamHeader(), NOW);
  assert.equal(old.guest.files, false);
  assert.throws(() => old.guest.sendFileOffer(Uint8Array.of(1), NOW, { messageId: randomBytes(16) }), code("local"));
  assert.throws(() => old.guest.sendFileControl(Uint8Array.of(1), NOW), code("local"));
  const s = filePair({ guestFiles: false });
  open(s);
  for (const type of [8, 9]) {
    const sealed = s.owner._sender.seal(Uint8Array.of(1, type, ...new Uint8Array(24), 1));
    assert.throws(() => s.guest.receiveData(encodeBatch([sealed]), NOW), code("bad-frame"));
  }
});
