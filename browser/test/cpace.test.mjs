// CPace in the page (src/cpace.js over libsodium-wrappers-sumo) against the draft's vectors
// (tests/vectors/cpace-ristretto255.json) and p2pchat's own password handshake vectors
// (tests/vectors/password-handshake-v1.json, made by Python): both sides agree byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";

import {
  calculateGenerator,
  cpaceIsk,
  cpaceStart,
  generatorString,
  iskIr,
  isValidPoint,
  lvCat,
  mixSessionKeys,
  normalizePassword,
  PakeError,
} from "../src/cpace.js";
import { KxKeyPair, decodeHandshake, encodeHandshake, linkFromFragment, linkFromSecret, randomBytes, utf8Decode } from "../src/crypto.js";
import sodium from "../src/sodium.js";
import { REPO_ROOT, hex, toHex } from "../test-support/helpers.mjs";

const load = (name) => JSON.parse(readFileSync(path.join(REPO_ROOT, "tests", "vectors", name), "utf8"));
const draft = load("cpace-ristretto255.json");
const ours = load("password-handshake-v1.json");

test("draft: generator string and generator", () => {
  assert.equal(toHex(generatorString(hex(draft.PRS), hex(draft.CI), hex(draft.sid))), draft.generator_string);
  assert.equal(toHex(calculateGenerator(hex(draft.PRS), hex(draft.CI), hex(draft.sid))), draft.g);
});

test("draft: shares, K and ISK", () => {
  const g = hex(draft.g);
  const ya = sodium.crypto_scalarmult_ristretto255(hex(draft.ya), g);
  const yb = sodium.crypto_scalarmult_ristretto255(hex(draft.yb), g);
  assert.equal(toHex(ya), draft.Ya);
  assert.equal(toHex(yb), draft.Yb);
  const k = sodium.crypto_scalarmult_ristretto255(hex(draft.ya), yb);
  assert.equal(toHex(k), draft.K);
  assert.equal(toHex(iskIr(hex(draft.sid), k, ya, hex(draft.ADa), yb, hex(draft.ADb))), draft.ISK_IR);
});

test("draft: invalid points are refused", () => {
  const start = { scalar: hex(draft.scalar_mult_valid.s), share: hex(draft.Ya) };
  for (const point of draft.invalid_points) {
    assert.equal(isValidPoint(hex(point)), false);
    assert.throws(() => cpaceIsk(start, hex(point), { sid: hex(draft.sid), initiator: true }), PakeError);
  }
  assert.throws(() => cpaceIsk(start, new Uint8Array(31), { sid: hex(draft.sid), initiator: true }), PakeError);
});

test("lv_cat is the draft's", () => {
  const enc = new TextEncoder();
  assert.equal(toHex(lvCat(enc.encode("1234"), enc.encode("5"), new Uint8Array(0), enc.encode("678"))), "043132333401350003363738");
});

test("p2pchat vectors: the page reaches Python's shares, ISK, keys and bodies", () => {
  const link = linkFromFragment(ours.fragment);
  assert.equal(link.password, true);
  assert.equal(toHex(link.secret), ours.link_secret);
  assert.equal(toHex(link.roomIdRaw), ours.room_id_raw);
  const password = normalizePassword(ours.password_text);
  assert.equal(toHex(password), ours.password);
  const sid = hex(ours.sid);
  const guest = cpaceStart(password, link.roomIdRaw, sid, hex(ours.guest_scalar));
  const owner = cpaceStart(password, link.roomIdRaw, sid, hex(ours.owner_scalar));
  assert.equal(toHex(guest.share), ours.guest_share);
  assert.equal(toHex(owner.share), ours.owner_share);
  const isk = cpaceIsk(guest, owner.share, { sid, initiator: true });
  assert.equal(toHex(isk), ours.isk);
  assert.equal(toHex(cpaceIsk(owner, guest.share, { sid, initiator: false })), ours.isk);
  const guestKx = new KxKeyPair(hex(ours.guest_kx_seed));
  const ownerKx = new KxKeyPair(hex(ours.owner_kx_seed));
  const keys = mixSessionKeys(guestKx.clientKeys(ownerKx.publicKey), isk);
  assert.equal(toHex(keys.rx), ours.guest_rx);
  assert.equal(toHex(keys.tx), ours.guest_tx);
  const offer = encodeHandshake({ sdp: "v=0\r\n", kxPublic: guestKx.publicKey, info: { name: "Guest" }, pake: guest.share });
  assert.equal(utf8Decode(offer), ours.offer_body);
  assert.equal(toHex(decodeHandshake(new TextEncoder().encode(ours.answer_body)).pake), ours.owner_share);
});

test("a wrong password gives another ISK; a password-less body has no pake", () => {
  const link = linkFromSecret(randomBytes(32));
  const sid = randomBytes(16);
  const a = cpaceStart(normalizePassword("hunter22"), link.roomIdRaw, sid);
  const b = cpaceStart(normalizePassword("hunter23"), link.roomIdRaw, sid);
  assert.notDeepEqual(cpaceIsk(a, b.share, { sid, initiator: true }), cpaceIsk(b, a.share, { sid, initiator: false }));
  const plain = encodeHandshake({ sdp: "v=0", kxPublic: new Uint8Array(32) });
  assert.equal(utf8Decode(plain).includes("pake"), false);
  assert.equal(decodeHandshake(plain).pake, null);
});

test("password normalisation and bounds", () => {
  assert.deepEqual(normalizePassword("  ｐａｓｓ "), new TextEncoder().encode("pass"));
  for (const bad of ["", "   ", "x".repeat(129), "é".repeat(65)]) assert.throws(() => normalizePassword(bad), RangeError);
  assert.equal(normalizePassword("x".repeat(128)).length, 128);
});

test("sessions: a password link opens on the confirmation; the vectors' keys are reached", async () => {
  const { Role, Session } = await import("../src/session.js");
  const { LinkEnvelopes, ReplayGuard } = await import("../src/crypto.js");
  const link = linkFromFragment(ours.fragment);
  const make = (role, kxSeed, scalar, password) =>
    new Session(role, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), {
      sessionId: hex(ours.sid), kx: new KxKeyPair(hex(kxSeed)), password, linkRoom: link.roomIdRaw,
      pakeScalar: hex(scalar),
    });
  const password = hex(ours.password);
  const guest = make(Role.INITIATOR, ours.guest_kx_seed, ours.guest_scalar, password);
  const owner = make(Role.RESPONDER, ours.owner_kx_seed, ours.owner_scalar, password);
  owner.receiveOffer(guest.makeOffer("v=0\r\n", { name: "Guest" }));
  guest.receiveAnswer(owner.makeAnswer("v=0\r\n", { name: "Owner" }));
  assert.equal(toHex(guest._keys.rx), ours.guest_rx);
  assert.equal(toHex(owner._keys.tx), ours.owner_tx);
  assert.deepEqual(guest.receiveData(owner.streamHeader()), []);
  assert.deepEqual(owner.receiveData(guest.streamHeader()), []); // a header alone: not yet
  const events = owner.receiveData(guest.confirmation());
  assert.deepEqual(events.map((e) => e.type), ["opened", "ping"]);
  assert.deepEqual(guest.receiveData(owner.pong(events[1].pingId)).map((e) => e.type), ["opened", "pong"]);

  const wrong = make(Role.INITIATOR, ours.guest_kx_seed, ours.guest_scalar, normalizePassword("not it"));
  const owner2 = make(Role.RESPONDER, ours.owner_kx_seed, ours.owner_scalar, password);
  owner2.receiveOffer(wrong.makeOffer("v=0\r\n"));
  wrong.receiveAnswer(owner2.makeAnswer("v=0\r\n"));
  wrong.receiveData(owner2.streamHeader());
  owner2.receiveData(wrong.streamHeader());
  assert.throws(() => owner2.receiveData(wrong.confirmation()), (exc) => exc.code === "bad-stream");

  const plain = make(Role.INITIATOR, ours.guest_kx_seed, ours.guest_scalar, null);
  const owner3 = make(Role.RESPONDER, ours.owner_kx_seed, ours.owner_scalar, password);
  owner3.receiveOffer(plain.makeOffer("v=0\r\n"));
  assert.equal(owner3.passwordMissing, true);
  assert.equal(plain.confirmation(), null);
});
