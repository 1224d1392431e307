// group.js against tests/vectors/groups-v1.json byte for byte, every refusal code of
// the decoders, and the receiving rules a guest applies (group_state.py's).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";

import sodium from "../src/sodium.js";
import { FrameType, decodeFrame, encodeFrame, utf8Encode } from "../src/crypto.js";
import {
  MAX_GUESTS,
  MAX_LAN_MEMBERS,
  MAX_LIST_BYTES,
  MAX_PENDING_PER_GROUP,
  MAX_TEXT_BYTES,
  MemberKind,
  MessageKind,
  Status,
  Verdict,
  ZERO_HASH,
  chainHash,
  copyIdOf,
  decodeGroupMessage,
  decodeMemberList,
  groupIdOf,
  groupKeysFromSeed,
  joinAsGuest,
  makeGroupMessage,
  makeMemberList,
  messageIdOf,
  nextMessage,
  receiveList,
  receiveMessage,
  withOwnChain,
} from "../src/group.js";
import { REPO_ROOT, hex, toHex } from "../test-support/helpers.mjs";

const V = JSON.parse(readFileSync(path.join(REPO_ROOT, "tests", "vectors", "groups-v1.json"), "utf8"));
const keys = (seedHex) => sodium.crypto_sign_seed_keypair(hex(seedHex));
const ALICE = keys(V.seeds.alice);
const BOB = keys(V.seeds.bob);
const GUEST = keys(V.seeds.guest);
const GROUP_ID = hex(V.member_list.group_id);
const TS = 1767225600000;

const code = (c) => (err) => {
  assert.equal(err.code, c, `expected ${c}, got ${err.code}: ${err.message}`);
  return true;
};

// Seeded randomness (printed on failure) for the mutation tests.
const SEED = Number(process.env.P2PCHAT_TEST_SEED ?? Date.now() % 2 ** 31);
function rng(seed) {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function member(kind, pair, name, host = null) {
  return { kind, key: pair.publicKey, name, hostKey: host ? host.publicKey : null };
}

const TEAM = [
  member(MemberKind.LAN, ALICE, "Alice"),
  member(MemberKind.LAN, BOB, "Bob"),
  member(MemberKind.GUEST, GUEST, "Gäst", BOB),
];

// -- vectors ---------------------------------------------------------------------------

test("vector: the member list decodes, verifies, and re-signs to the same bytes", () => {
  const v = V.member_list;
  const list = decodeMemberList(hex(v.encoded));
  assert.equal(toHex(list.groupId), v.group_id);
  assert.equal(list.epoch, v.epoch);
  assert.equal(toHex(list.adminKey), v.admin_key);
  assert.equal(list.name, v.name);
  assert.deepEqual(
    list.members.map((m) => ({ kind: m.kind, key: toHex(m.key), name: m.name, host_key: m.hostKey && toHex(m.hostKey) })),
    v.members,
  );
  assert.equal(toHex(list.encoded), v.encoded);
  assert.equal(toHex(ALICE.publicKey), v.admin_key);
  const made = makeMemberList(GROUP_ID, 1, v.name, TEAM, ALICE);
  assert.equal(toHex(made.encoded), v.encoded); // Ed25519 is deterministic
  assert.equal(toHex(groupIdOf(hex(v.encoded))), v.group_id);
});

test("vector: every message decodes, verifies, chains; re-signing gives the same bytes", () => {
  let prev = ZERO_HASH;
  for (const v of V.messages) {
    const msg = decodeGroupMessage(hex(v.encoded));
    assert.equal(toHex(msg.groupId), V.member_list.group_id);
    assert.equal(msg.epoch, v.epoch);
    assert.equal(msg.seq, BigInt(v.seq));
    assert.equal(toHex(msg.prevHash), v.prev_hash);
    assert.deepEqual(msg.prevHash, prev);
    assert.equal(msg.timestampMs, v.timestamp_ms);
    assert.equal(msg.kind, v.kind);
    assert.equal(toHex(msg.body), v.body);
    assert.equal(toHex(msg.messageId), v.message_id);
    assert.equal(toHex(messageIdOf(hex(v.encoded))), v.message_id);
    assert.equal(toHex(chainHash(msg.encoded)), v.chain_hash);
    const sender = keys(v.sender_seed);
    assert.deepEqual(msg.senderKey, sender.publicKey);
    const made = makeGroupMessage(GROUP_ID, v.epoch, sender, v.seq, hex(v.prev_hash), v.timestamp_ms, v.kind, hex(v.body));
    assert.equal(toHex(made.encoded), v.encoded);
    prev = hex(v.chain_hash);
  }
  assert.equal(decodeGroupMessage(hex(V.messages[0].encoded)).text, "hello, group");
});

test("vector: copy id and the GROUP_MESSAGE frame", () => {
  const c = V.copy_id;
  assert.equal(toHex(copyIdOf(hex(c.message_id), hex(c.member_key))), c.copy_id);
  const frame = decodeFrame(hex(V.frame.encoded));
  assert.equal(frame.type, V.frame.type);
  assert.equal(frame.type, FrameType.GROUP_MESSAGE);
  assert.equal(toHex(frame.messageId), c.copy_id);
  assert.equal(frame.timestampMs, TS);
  assert.equal(toHex(frame.body), V.messages[0].encoded);
  const again = encodeFrame({ type: FrameType.GROUP_MESSAGE, messageId: frame.messageId, timestampMs: TS, body: frame.body });
  assert.equal(toHex(again), V.frame.encoded);
});

test("frames 6 and 7 need a body; other types still refuse one", () => {
  const id = new Uint8Array(16);
  for (const type of [FrameType.GROUP_MESSAGE, FrameType.GROUP_LIST]) {
    assert.throws(() => decodeFrame(encodeFrame({ type, messageId: id, timestampMs: TS })), code("bad-frame"));
    assert.equal(decodeFrame(encodeFrame({ type, messageId: id, timestampMs: TS, body: Uint8Array.of(1) })).type, type);
  }
  assert.throws(() => decodeFrame(encodeFrame({ type: 8, messageId: id, timestampMs: TS })), code("bad-frame"));
  assert.throws(() => decodeFrame(encodeFrame({ type: FrameType.PING, messageId: id, timestampMs: TS, body: Uint8Array.of(1) })), code("bad-frame"));
});

// -- refusal codes ---------------------------------------------------------------------

// An unsigned list body from fields, signed by `signer` (any bytes: to reach each rule).
function rawList({ version = 1, epoch = 1, admin = ALICE, name = "Team", members = TEAM, count, tail = [] } = {}) {
  const parts = [Uint8Array.of(version), GROUP_ID, u32(epoch), admin.publicKey, lenPrefixed(name)];
  parts.push(Uint8Array.of(count ?? members.length));
  for (const m of members) {
    parts.push(Uint8Array.of(m.kind), m.key, lenPrefixed(m.name));
    if (m.kind === MemberKind.GUEST) parts.push(m.hostKey);
  }
  return concat(...parts, ...tail);
}

function signed(body, signer = ALICE, domain = "p2pchat/group-members/v1\0") {
  return concat(body, sodium.crypto_sign_detached(concat(utf8Encode(domain), body), signer.privateKey));
}

function lenPrefixed(text) {
  const raw = typeof text === "string" ? utf8Encode(text) : text;
  return concat(Uint8Array.of(raw.length), raw);
}

function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function lan(n) {
  return Array.from({ length: n }, (_, i) => member(MemberKind.LAN, keys(toHex(new Uint8Array(32).fill(i + 1))), `m${i}`));
}

test("member list: every refusal has its code", () => {
  const good = signed(rawList());
  assert.equal(decodeMemberList(good).members.length, 3);
  const cases = [
    ["group-too-large", new Uint8Array(MAX_LIST_BYTES + 1)],
    ["group-version", signed(rawList({ version: 2 }))],
    ["group-truncated", good.slice(0, 10)],
    ["group-truncated", good.slice(0, good.length - 1)],
    ["group-trailing", concat(good, Uint8Array.of(0))],
    ["group-bad-epoch", signed(rawList({ epoch: 0 }))],
    ["group-bad-name", signed(rawList({ name: "" }))],
    ["group-bad-name", signed(rawList({ name: "a\u0007b" }))],
    ["group-bad-name", signed(rawList({ name: "evil\u202e" }))],
    ["group-bad-name", signed(rawList({ name: new Uint8Array([0xc3, 0x28]) }))],
    ["group-bad-name", signed(rawList({ name: "x".repeat(65) }))],
    ["group-bad-name", signed(rawList({ members: [{ ...TEAM[0], name: "\n" }] }))],
    ["group-bad-count", signed(rawList({ members: [] }))],
    ["group-too-many-members", signed(rawList({ count: 41, members: [] }))],
    ["group-too-many-members", signed(rawList({ members: [TEAM[0], ...lan(MAX_LAN_MEMBERS)] }))],
    ["group-too-many-guests", signed(rawList({ members: [...TEAM, ...lan(MAX_GUESTS).map((m) => ({ ...m, kind: MemberKind.GUEST, hostKey: BOB.publicKey }))] }))],
    ["group-bad-member-kind", signed(rawList({ members: [{ ...TEAM[0], kind: 3 }] }))],
    ["group-duplicate-key", signed(rawList({ members: [TEAM[0], { ...TEAM[1], key: ALICE.publicKey }] }))],
    ["group-admin-not-member", signed(rawList({ members: TEAM.slice(1) }))],
    ["group-bad-host", signed(rawList({ members: [TEAM[0], { ...TEAM[2], hostKey: BOB.publicKey }] }))],
    ["group-bad-key", signed(rawList({ members: [TEAM[0], { ...TEAM[1], key: new Uint8Array(32) }] }))],
    ["group-bad-signature", signed(rawList(), BOB)],
    ["group-bad-signature", signed(rawList(), ALICE, "p2pchat/group-message/v1\0")],
  ];
  const flipped = good.slice();
  flipped[18] ^= 1; // the epoch
  cases.push(["group-bad-signature", flipped]);
  for (const [want, data] of cases) assert.throws(() => decodeMemberList(data), code(want), want);
});

function rawMessage({ epoch = 1, sender = BOB, seq = 1n, prev = ZERO_HASH, kind = 1, body = utf8Encode("hi"), bodyLen } = {}) {
  const head = new Uint8Array(104);
  const view = new DataView(head.buffer);
  head[0] = 1;
  head.set(GROUP_ID, 1);
  view.setUint32(17, epoch);
  head.set(sender.publicKey, 21);
  view.setBigUint64(53, BigInt(seq));
  head.set(prev, 61);
  view.setBigUint64(93, BigInt(TS));
  head[101] = kind;
  view.setUint16(102, bodyLen ?? body.length);
  return concat(head, body);
}

test("group message: every refusal has its code", () => {
  const sig = (body, signer = BOB) => signed(body, signer, "p2pchat/group-message/v1\0");
  const good = sig(rawMessage());
  assert.equal(decodeGroupMessage(good).text, "hi");
  const cases = [
    ["group-too-large", new Uint8Array(65_511)],
    ["group-version", sig(concat(Uint8Array.of(2), rawMessage().slice(1)))],
    ["group-truncated", good.slice(0, 50)],
    ["group-truncated", sig(rawMessage({ bodyLen: 100 })).slice(0, 104 + 2 + 64)],
    ["group-truncated", good.slice(0, good.length - 1)],
    ["group-trailing", concat(good, Uint8Array.of(0))],
    ["group-bad-epoch", sig(rawMessage({ epoch: 0 }))],
    ["group-bad-seq", sig(rawMessage({ seq: 0n }))],
    ["group-bad-seq", sig(rawMessage({ seq: 1n, prev: new Uint8Array(32).fill(1) }))],
    ["group-bad-kind", sig(rawMessage({ kind: 3 }))],
    ["group-too-large", sig(rawMessage({ body: new Uint8Array(MAX_TEXT_BYTES + 1).fill(0x61) }))],
    ["group-bad-body", sig(rawMessage({ kind: 2, body: utf8Encode("bye") }))],
    ["group-bad-body", sig(rawMessage({ body: Uint8Array.of(0xff) }))],
    ["group-bad-signature", sig(rawMessage(), ALICE)],
    ["group-bad-signature", sig(rawMessage({ sender: { publicKey: new Uint8Array(32) } }))],
  ];
  const flipped = good.slice();
  flipped[106] ^= 1;
  cases.push(["group-bad-signature", flipped]);
  for (const [want, data] of cases) assert.throws(() => decodeGroupMessage(data), code(want), want);
  // the largest text fits one frame exactly
  const big = makeGroupMessage(GROUP_ID, 1, BOB, 1, ZERO_HASH, TS, MessageKind.TEXT, new Uint8Array(MAX_TEXT_BYTES).fill(0x61));
  assert.equal(big.encoded.length, 65_510);
});

test("making: values the decoder would refuse raise LocalGroupError with the same code", () => {
  const local = (c) => (err) => err.name === "LocalGroupError" && code(c)(err);
  assert.throws(() => makeMemberList(GROUP_ID, 0, "T", TEAM, ALICE), local("group-bad-epoch"));
  assert.throws(() => makeMemberList(GROUP_ID, 1, "", TEAM, ALICE), local("group-bad-name"));
  assert.throws(() => makeMemberList(GROUP_ID, 1, "T\ud800", TEAM, ALICE), local("group-bad-name"));
  const outsider = keys(toHex(new Uint8Array(32).fill(0x44)));
  assert.throws(() => makeMemberList(GROUP_ID, 1, "T", TEAM, outsider), local("group-admin-not-member"));
  assert.throws(() => makeMemberList(GROUP_ID, 1, "T", [...TEAM, TEAM[1]], ALICE), local("group-duplicate-key"));
  assert.throws(() => makeGroupMessage(GROUP_ID, 1, BOB, 0, ZERO_HASH, TS, 1, new Uint8Array(0)), local("group-bad-seq"));
  assert.throws(() => makeGroupMessage(GROUP_ID, 1, BOB, 1, ZERO_HASH, TS, 2, Uint8Array.of(0x61)), local("group-bad-body"));
  assert.throws(() => makeGroupMessage(GROUP_ID, 1, BOB, 1, ZERO_HASH, TS, 1, new Uint8Array(MAX_TEXT_BYTES + 1)), local("group-too-large"));
});

test(`mutations: a decoder returns the genuine value or a GroupError, never anything else (seed ${SEED})`, () => {
  const random = rng(SEED);
  for (const [decode, genuine] of [
    [decodeMemberList, hex(V.member_list.encoded)],
    [decodeGroupMessage, hex(V.messages[0].encoded)],
  ]) {
    for (let i = 0; i < 300; i++) {
      const data = genuine.slice(0, random() < 0.2 ? Math.floor(random() * genuine.length) : genuine.length);
      for (let j = 0; j < 1 + Math.floor(random() * 3); j++) data[Math.floor(random() * data.length)] = Math.floor(random() * 256);
      try {
        const value = decode(data);
        assert.deepEqual(value.encoded, genuine, `seed ${SEED}: a changed input decoded`);
      } catch (err) {
        assert.match(err.code ?? "", /^group-/, `seed ${SEED}: ${err}`);
      }
    }
  }
});

// -- receiving rules (a guest: Gäst, hosted by Bob) ------------------------------------

const LIST1 = hex(V.member_list.encoded);
const CAROL = keys(toHex(new Uint8Array(32).fill(0x33)));

function joined() {
  const out = joinAsGuest(LIST1, GUEST.publicKey, BOB.publicKey);
  assert.equal(out.verdict, Verdict.ADOPTED);
  return out.state;
}

function msgFrom(sender, seq, prev, { epoch = 1, text = `m${seq}` } = {}) {
  return makeGroupMessage(GROUP_ID, epoch, sender, seq, prev, TS, MessageKind.TEXT, utf8Encode(text));
}

test("join: only a list that lists me as a guest of my host", () => {
  const state = joined();
  assert.equal(state.members.name, "Team ✓");
  assert.equal(state.joinedEpoch, 1);
  assert.equal(state.status, Status.ACTIVE);
  assert.deepEqual(joinAsGuest(LIST1, GUEST.publicKey, null).added.map((m) => m.name), ["Alice", "Bob"]);
  assert.equal(joinAsGuest(LIST1, CAROL.publicKey, BOB.publicKey).code, "group-join-not-listed");
  assert.equal(joinAsGuest(LIST1, BOB.publicKey, BOB.publicKey).code, "group-join-not-listed"); // LAN, not a guest
  assert.equal(joinAsGuest(LIST1, GUEST.publicKey, ALICE.publicKey).code, "group-join-not-listed"); // another host
  assert.equal(joinAsGuest(LIST1.slice(1), GUEST.publicKey, BOB.publicKey).code, "group-version");
});

test("lists: another group, wrong admin, stale, duplicate, fork, newer with joins and leaves", () => {
  const state = joined();
  const list2 = makeMemberList(GROUP_ID, 2, "Team ✓", [TEAM[0], TEAM[2], member(MemberKind.LAN, CAROL, "Carol"), TEAM[1]], ALICE);
  const other = makeMemberList(new Uint8Array(16), 3, "Other", TEAM, ALICE);
  assert.equal(receiveList(state, other.encoded).code, "group-unknown");
  const byBob = makeMemberList(GROUP_ID, 3, "Team", [TEAM[1], { ...TEAM[0] }, TEAM[2]], BOB);
  assert.equal(receiveList(state, byBob.encoded).code, "group-wrong-admin");
  assert.equal(receiveList(state, LIST1).verdict, Verdict.DUPLICATE);
  const fork = makeMemberList(GROUP_ID, 1, "Fork", TEAM, ALICE);
  assert.equal(receiveList(state, fork.encoded).code, "group-fork");
  const adopted = receiveList(state, list2.encoded);
  assert.equal(adopted.verdict, Verdict.ADOPTED);
  assert.deepEqual(adopted.added.map((m) => m.name), ["Carol"]);
  assert.deepEqual(adopted.removed, []);
  assert.equal(adopted.state.members.epoch, 2);
  assert.equal(receiveList(adopted.state, LIST1).code, "group-stale-list");
  assert.equal(state.members.epoch, 1); // never mutated
  // Bob removed, so his guest (me) too: the group is removed for me, messages refused
  const list3 = makeMemberList(GROUP_ID, 3, "Team ✓", [TEAM[0], member(MemberKind.LAN, CAROL, "Carol")], ALICE);
  const gone = receiveList(adopted.state, list3.encoded);
  assert.deepEqual(gone.removed.map((m) => m.name), ["Gäst", "Bob"]);
  assert.equal(gone.state.status, Status.REMOVED);
  assert.equal(receiveMessage(gone.state, msgFrom(CAROL, 1, ZERO_HASH, { epoch: 3 }).encoded).code, "group-inactive");
  assert.throws(() => nextMessage(gone.state, GUEST, "hi", TS), code("group-inactive"));
  // added again: active, joined at that epoch
  const list4 = makeMemberList(GROUP_ID, 4, "Team ✓", [...TEAM, member(MemberKind.LAN, CAROL, "Carol")], ALICE);
  const back = receiveList(gone.state, list4.encoded);
  assert.equal(back.state.status, Status.ACTIVE);
  assert.equal(back.state.joinedEpoch, 4);
  assert.equal(receiveMessage(back.state, msgFrom(CAROL, 1, ZERO_HASH, { epoch: 3 }).encoded).code, "group-before-join");
});

test("messages: signature, membership, self, chain (replay, broken, gap), held until the list", () => {
  let state = joined();
  const m1 = msgFrom(BOB, 1, ZERO_HASH);
  const m2 = msgFrom(BOB, 2, chainHash(m1.encoded));
  const r1 = receiveMessage(state, m1.encoded);
  assert.equal(r1.verdict, Verdict.ACCEPTED);
  assert.equal(r1.message.text, "m1");
  assert.equal(r1.missing, 0n);
  state = r1.state;
  assert.equal(receiveMessage(state, m1.encoded).code, "group-replay");
  const forged = msgFrom(BOB, 2, new Uint8Array(32).fill(7));
  assert.equal(receiveMessage(state, forged.encoded).code, "group-broken-chain");
  const tampered = m2.encoded.slice();
  tampered[110] ^= 1;
  assert.equal(receiveMessage(state, tampered).code, "group-bad-signature");
  state = receiveMessage(state, m2.encoded).state;
  assert.equal(receiveMessage(state, m1.encoded).code, "group-replay"); // reordered
  const m5 = msgFrom(BOB, 5, new Uint8Array(32).fill(9)); // a jump: accepted, gap reported
  const r5 = receiveMessage(state, m5.encoded);
  assert.equal(r5.verdict, Verdict.ACCEPTED);
  assert.equal(r5.missing, 2n);
  state = r5.state;
  // a late joiner's first message from a sender starts its chain whatever its seq
  const a7 = msgFrom(ALICE, 7, new Uint8Array(32).fill(3));
  assert.equal(receiveMessage(state, a7.encoded).verdict, Verdict.ACCEPTED);
  assert.equal(receiveMessage(state, msgFrom(CAROL, 1, ZERO_HASH).encoded).code, "group-not-member");
  assert.equal(receiveMessage(state, msgFrom(GUEST, 1, ZERO_HASH).encoded).code, "group-from-self");
  const elsewhere = makeGroupMessage(new Uint8Array(16), 1, BOB, 9, ZERO_HASH.map(() => 1), TS, 1, utf8Encode("x"));
  assert.equal(receiveMessage(state, elsewhere.encoded).code, "group-unknown");
  // from epoch 2 (Carol added): held, then released when the list comes
  const c1 = msgFrom(CAROL, 1, ZERO_HASH, { epoch: 2 });
  const held = receiveMessage(state, c1.encoded);
  assert.equal(held.verdict, Verdict.HELD);
  assert.equal(receiveMessage(held.state, c1.encoded).verdict, Verdict.DUPLICATE);
  const list2 = makeMemberList(GROUP_ID, 2, "Team ✓", [...TEAM, member(MemberKind.LAN, CAROL, "Carol")], ALICE);
  const adopted = receiveList(held.state, list2.encoded);
  assert.equal(adopted.released.length, 1);
  assert.equal(adopted.released[0].verdict, Verdict.ACCEPTED);
  assert.equal(adopted.released[0].message.text, "m1");
  assert.equal(adopted.state.pending.length, 0);
});

test("held messages are bounded", () => {
  let state = joined();
  let prev = ZERO_HASH;
  for (let seq = 1; seq <= MAX_PENDING_PER_GROUP; seq++) {
    const m = msgFrom(ALICE, seq, prev, { epoch: 5 });
    prev = chainHash(m.encoded);
    state = receiveMessage(state, m.encoded).state;
  }
  assert.equal(state.pending.length, MAX_PENDING_PER_GROUP);
  assert.equal(receiveMessage(state, msgFrom(ALICE, 999, prev, { epoch: 5 }).encoded).code, "group-pending-full");
});

test("sending: my chain from seq 1, prev hash per message, the held epoch, my key", () => {
  let state = joined();
  const first = nextMessage(state, GUEST, "hej ✓", TS);
  const m1 = decodeGroupMessage(first.encoded);
  assert.equal(m1.seq, 1n);
  assert.deepEqual(m1.prevHash, ZERO_HASH);
  assert.deepEqual(m1.senderKey, GUEST.publicKey);
  assert.equal(m1.epoch, 1);
  assert.equal(m1.text, "hej ✓");
  assert.deepEqual(first.messageId, messageIdOf(first.encoded));
  state = first.state;
  const second = decodeGroupMessage(nextMessage(state, GUEST, "again", TS + 1).encoded);
  assert.equal(second.seq, 2n);
  assert.deepEqual(second.prevHash, chainHash(first.encoded));
  assert.throws(() => nextMessage(state, BOB, "not my key", TS), code("group-local"));
  assert.throws(() => nextMessage(state, GUEST, "x\ud800", TS), code("group-bad-body"));
  assert.throws(() => nextMessage(state, GUEST, "a".repeat(MAX_TEXT_BYTES + 1), TS), code("group-too-large"));
  // Bob's view (a member holding the list) accepts the guest's chain
  let bob = { ...joined(), myKey: BOB.publicKey };
  for (const data of [first.encoded, nextMessage(state, GUEST, "again", TS + 1).encoded]) {
    const out = receiveMessage(bob, data);
    assert.equal(out.verdict, Verdict.ACCEPTED, out.reason);
    bob = out.state;
  }
});

test("a reload: the same seed is the same member, and its chain goes on where it was", () => {
  assert.deepEqual(groupKeysFromSeed(hex(V.seeds.guest)).publicKey, GUEST.publicKey);
  const before = nextMessage(joined(), GUEST, "before the reload", TS);
  // The reloaded page joins afresh from the list, then takes up its saved chain end.
  const state = withOwnChain(joined(), before.state.own.lastSeq, before.state.own.lastHash);
  const after = decodeGroupMessage(nextMessage(state, GUEST, "after it", TS + 1).encoded);
  assert.equal(after.seq, 2n);
  assert.deepEqual(after.prevHash, chainHash(before.encoded));
  // A member holding the chain takes it as the next message, not a replay.
  let bob = { ...joined(), myKey: BOB.publicKey };
  bob = receiveMessage(bob, before.encoded).state;
  const out = receiveMessage(bob, nextMessage(state, GUEST, "after it", TS + 1).encoded);
  assert.equal(out.verdict, Verdict.ACCEPTED, out.reason);
  assert.equal(out.missing, 0n);
});
