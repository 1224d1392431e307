// Interop with p2pchat's Python code (p2pchat.protocol.session, crypto.envelope):
// the JS guest and the Python owner, both ways, through real link envelopes and
// secret streams; and the decoders of both sides on the same tricky inputs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  Direction,
  EnvelopeKind,
  LinkEnvelopes,
  ReplayGuard,
  b64urlDecode,
  b64urlEncode,
  decodeFrame,
  decodeHandshake,
  encodeFrame,
  fromHex as hex,
  linkFromSecret,
  randomBytes,
  safetyNumber,
  toHex,
  utf8Encode,
} from "../src/crypto.js";
import { Role, Session, SessionState } from "../src/session.js";
import {
  MemberKind,
  MessageKind,
  Verdict,
  ZERO_HASH,
  copyIdOf,
  decodeGroupMessage,
  decodeMemberList,
  joinAsGuest,
  makeGroupMessage,
  makeMemberList,
  messageIdOf,
  newGroupKeys,
  nextMessage,
  receiveMessage,
} from "../src/group.js";
import sodium from "../src/sodium.js";
import { PythonPeer, pythonUnavailable } from "../test-support/python_peer.mjs";

const unavailable = pythonUnavailable();
if (unavailable && process.env.CI) throw new Error(`interop tests cannot run in CI: ${unavailable}`);
const skip = unavailable ? `skipped: ${unavailable}` : false;
if (unavailable) console.log(`# interop: ${skip}`);

describe("interop with the Python owner", { skip }, () => {
  let py;
  before(() => {
    py = new PythonPeer();
  });
  after(() => py.close());

  const NOW = Date.now();
  const OWNER_PK = randomBytes(32);

  async function guestAndPythonOwner() {
    const link = linkFromSecret(randomBytes(32));
    const init = await py.ok("init", { fragment: link.fragment, role: "responder" });
    assert.equal(init.room_id, link.roomId);
    assert.equal(init.envelope_key, toHex(link.envelopeKey));
    const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()));
    return { link, guest };
  }

  test("JS guest ↔ Python owner: handshake, headers, frames both ways, close", async () => {
    const { guest } = await guestAndPythonOwner();
    const guestId = b64urlEncode(randomBytes(16));
    const offer = guest.makeOffer("v=0\r\no=- guest\r\n", { guest: guestId, name: "Zoë ✓" }, NOW);
    const received = await py.ok("receive_offer", { data: toHex(offer), now: NOW });
    assert.equal(received.session_id, toHex(guest.sessionId));
    assert.equal(received.sdp, "v=0\r\no=- guest\r\n");
    assert.deepEqual(received.info, { guest: guestId, name: "Zoë ✓", batch: "1" });

    const ownerInfo = { name: "Alice", pk: b64urlEncode(OWNER_PK) };
    const answer = await py.ok("make_answer", { sdp: "v=0\r\no=- owner\r\n", info: ownerInfo, now: NOW });
    const answered = guest.receiveAnswer(hex(answer.data), NOW);
    assert.equal(answered.sdp, "v=0\r\no=- owner\r\n");
    assert.deepEqual({ ...answered.info }, { ...ownerInfo, batch: "1" });

    // guest's header first (as the page does), then the owner's
    const r1 = await py.ok("receive", { data: toHex(guest.streamHeader()), now: NOW });
    assert.deepEqual(r1.events, []);
    const ownerHeader = await py.ok("header");
    assert.equal(ownerHeader.state, "OPEN");
    assert.deepEqual(guest.receiveData(hex(ownerHeader.data), NOW), [{ type: "opened" }]);

    // guest -> owner: TEXT, owner answers with RECEIPT
    const sent = guest.sendText("hello from the browser ✓", NOW);
    const r2 = await py.ok("receive", { data: toHex(sent.data), now: NOW });
    assert.deepEqual(r2.events, [
      { type: "message", message_id: toHex(sent.messageId), timestamp_ms: NOW, text: "hello from the browser ✓" },
    ]);
    const receipt = await py.ok("receipt", { message_id: toHex(sent.messageId), now: NOW });
    assert.deepEqual(guest.receiveData(hex(receipt.data), NOW), [{ type: "receipt", messageId: sent.messageId }]);

    // owner -> guest: TEXT, guest answers with RECEIPT
    const text = await py.ok("send_text", { text: "hello from Python 🐍", now: NOW + 1 });
    const [msg] = guest.receiveData(hex(text.data), NOW);
    assert.equal(msg.text, "hello from Python 🐍");
    assert.equal(toHex(msg.messageId), text.message_id);
    assert.equal(msg.timestampMs, NOW + 1);
    const r3 = await py.ok("receive", { data: toHex(guest.sendReceipt(msg.messageId, NOW)), now: NOW });
    assert.deepEqual(r3.events, [{ type: "receipt", message_id: text.message_id }]);

    // keep-alive both ways
    const ping = await py.ok("ping", { now: NOW });
    const [pingEvent] = guest.receiveData(hex(ping.data), NOW);
    assert.equal(toHex(pingEvent.pingId), ping.ping_id);
    const r4 = await py.ok("receive", { data: toHex(guest.pong(pingEvent.pingId, NOW + 7)), now: NOW });
    assert.deepEqual(r4.events, [{ type: "pong", ping_id: ping.ping_id, timestamp_ms: NOW + 7 }]);
    const jsPing = guest.ping(NOW);
    const r5 = await py.ok("receive", { data: toHex(jsPing.data), now: NOW });
    assert.deepEqual(r5.events, [{ type: "ping", ping_id: toHex(jsPing.pingId) }]);
    const pong = await py.ok("pong", { ping_id: toHex(jsPing.pingId), now: NOW + 3 });
    assert.deepEqual(guest.receiveData(hex(pong.data), NOW), [
      { type: "pong", pingId: jsPing.pingId, timestampMs: NOW + 3 },
    ]);

    // a big message near the 64 KiB frame bound
    const big = "é".repeat(32_755); // 65 510 bytes
    const r6 = await py.ok("receive", { data: toHex(guest.sendText(big, NOW).data), now: NOW });
    assert.equal(r6.events[0].text.length, big.length);

    // the owner's node batches what it queues in one loop turn: one channel message
    const batch = await py.ok("send_batch", { texts: ["a", "b", "c ✓"], now: NOW });
    const events = guest.receiveData(hex(batch.data), NOW);
    assert.deepEqual(events.map((e) => e.text), ["a", "b", "c ✓"]);
    assert.deepEqual(events.map((e) => toHex(e.messageId)), batch.message_ids);

    // the owner closes: FINAL tag
    const closed = await py.ok("close", { now: NOW });
    assert.equal(closed.state, "CLOSED");
    assert.deepEqual(guest.receiveData(hex(closed.data), NOW), [{ type: "closed" }]);
    assert.equal(guest.state, SessionState.CLOSED);
  });

  test("JS guest closes: the Python owner sees SessionClosed", async () => {
    const { guest } = await guestAndPythonOwner();
    await py.ok("receive_offer", { data: toHex(guest.makeOffer("v=0", {}, NOW)), now: NOW });
    const answer = await py.ok("make_answer", { sdp: "v=0", info: {}, now: NOW });
    guest.receiveAnswer(hex(answer.data), NOW);
    guest.receiveData(hex((await py.ok("header")).data), NOW); // the owner's header first this time
    const r1 = await py.ok("receive", { data: toHex(guest.streamHeader()), now: NOW });
    assert.deepEqual(r1.events, [{ type: "opened" }]);
    const r2 = await py.ok("receive", { data: toHex(guest.close(NOW)), now: NOW });
    assert.deepEqual(r2.events, [{ type: "closed" }]);
    assert.equal(r2.state, "CLOSED");
  });

  test("Python initiator ↔ JS responder (the other way round)", async () => {
    const link = linkFromSecret(randomBytes(32));
    await py.ok("init", { fragment: `#${link.fragment}`, role: "initiator" });
    const owner = new Session(Role.RESPONDER, new LinkEnvelopes(link.envelopeKey));
    const offer = await py.ok("make_offer", { sdp: "v=0\r\n", info: { name: "py" }, now: NOW });
    const received = owner.receiveOffer(hex(offer.data), NOW);
    assert.deepEqual({ ...received.info }, { name: "py", batch: "1" });
    const answer = owner.makeAnswer("v=0\r\nanswer", { name: "js" }, NOW);
    const answered = await py.ok("receive_answer", { data: toHex(answer), now: NOW });
    assert.deepEqual(answered, { sdp: "v=0\r\nanswer", info: { name: "js", batch: "1" } });
    const pyHeader = await py.ok("header");
    owner.receiveData(hex(pyHeader.data), NOW);
    const r = await py.ok("receive", { data: toHex(owner.streamHeader()), now: NOW });
    assert.deepEqual(r.events, [{ type: "opened" }]);
    const text = await py.ok("send_text", { text: "ping?", now: NOW });
    assert.equal(owner.receiveData(hex(text.data), NOW)[0].text, "ping?");
    const back = owner.sendText("pong!", NOW);
    assert.equal((await py.ok("receive", { data: toHex(back.data), now: NOW })).events[0].text, "pong!");
    // safety number: the same on both sides
    const kx = await py.ok("kx_public");
    const ours = safetyNumber(OWNER_PK, hex(kx.data));
    const theirs = await py.ok("safety", { a: kx.data, b: toHex(OWNER_PK) });
    assert.equal(ours.digits, theirs.digits);
    assert.equal(ours.qrPayload, theirs.qr);
  });

  test("Python refuses what JS refuses: tampered, reflected, replayed, stale, wrong session", async () => {
    const { link, guest } = await guestAndPythonOwner();
    const offer = guest.makeOffer("v=0", { guest: "x" }, NOW);

    const flipped = offer.slice();
    flipped[30] ^= 0x10;
    assert.equal((await py.call("receive_offer", { data: toHex(flipped), now: NOW })).error, "tampered");

    // reflection: a responder-direction envelope fed to the responder
    const js = new LinkEnvelopes(link.envelopeKey);
    const body = utf8Encode('{"v":1,"sdp":"v=0","kx":"' + b64urlEncode(randomBytes(32)) + '"}');
    const reflected = js.seal(EnvelopeKind.OFFER, Direction.RESPONDER, guest.sessionId, body, NOW);
    assert.equal((await py.call("receive_offer", { data: toHex(reflected), now: NOW })).error, "reflected");

    const stale = js.seal(EnvelopeKind.OFFER, Direction.INITIATOR, guest.sessionId, body, NOW - 301_000);
    assert.equal((await py.call("receive_offer", { data: toHex(stale), now: NOW })).error, "stale");
    const future = js.seal(EnvelopeKind.OFFER, Direction.INITIATOR, guest.sessionId, body, NOW + 301_000);
    assert.equal((await py.call("receive_offer", { data: toHex(future), now: NOW })).error, "stale");

    await py.ok("receive_offer", { data: toHex(offer), now: NOW });
    // the same offer again, raw through the owner's envelopes (same guard): replayed
    const replay = await py.call("open_envelope", { data: toHex(offer), expected: Direction.INITIATOR, now: NOW });
    assert.equal(replay.error, "replayed");

    // JS guest: an answer to another session
    const other = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey));
    other.makeOffer("v=0", {}, NOW);
    const answer = await py.ok("make_answer", { sdp: "v=0", info: {}, now: NOW });
    assert.throws(() => other.receiveAnswer(hex(answer.data), NOW), (e) => e.code === "wrong-session");
    // and the genuine guest still accepts it; replaying it to the guest fails
    guest.receiveAnswer(hex(answer.data), NOW);
    const guard = new ReplayGuard();
    const again = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, guard), { sessionId: guest.sessionId });
    again.makeOffer("v=0", {}, NOW);
    again.receiveAnswer(hex(answer.data), NOW);
    const third = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, guard), { sessionId: guest.sessionId });
    third.makeOffer("v=0", {}, NOW);
    assert.throws(() => third.receiveAnswer(hex(answer.data), NOW), (e) => e.code === "replayed");
  });

  test("JS opens Python's envelopes and Python opens JS's, byte-identical with a fixed nonce", async () => {
    const link = linkFromSecret(randomBytes(32));
    await py.ok("init", { fragment: link.fragment, role: "responder" });
    const nonce = randomBytes(24);
    const sessionId = randomBytes(16);
    const body = randomBytes(300);
    const data = new LinkEnvelopes(link.envelopeKey).seal(EnvelopeKind.OFFER, Direction.INITIATOR, sessionId, body, NOW, { nonce });
    const opened = await py.ok("open_envelope", { data: toHex(data), expected: Direction.INITIATOR, now: NOW });
    assert.deepEqual(opened, {
      kind: 1,
      direction: 1,
      session_id: toHex(sessionId),
      timestamp_ms: NOW,
      body: toHex(body),
    });
  });

  test("handshake decoders agree on tricky bodies", async () => {
    const kx = b64urlEncode(randomBytes(32));
    const bodies = [
      `{"v":1,"sdp":"x","kx":"${kx}"}`,
      `{"v":1.0,"sdp":"x","kx":"${kx}"}`,
      `{"v":1e0,"sdp":"x","kx":"${kx}"}`,
      `{"v":-0,"sdp":"x","kx":"${kx}"}`,
      `{"v":true,"sdp":"x","kx":"${kx}"}`,
      `{"v":1,"sdp":"x","kx":"${kx}","extra":NaN}`,
      `{"v":1,"sdp":"x","kx":"${kx}","extra":-Infinity}`,
      `{"v":1,"sdp":"x","kx":"${kx}","extra":[1,2,{"a":null}]}`,
      `\ufeff{"v":1,"sdp":"x","kx":"${kx}"}`,
      ` \t\r\n{"v":1,"sdp":"x","kx":"${kx}"}\n`,
      `{"v":1,"sdp":"x","kx":"${kx}"}\u00a0`,
      `{"v":1,"sdp":"\\ud83d\\ude00\\u00e9\\/","kx":"${kx}"}`,
      `{"v":1,"sdp":"\\ud800","kx":"${kx}"}`,
      `{"v":1,"sdp":"${"😀".repeat(32768)}","kx":"${kx}"}`,
      `{"v":1,"sdp":"${"😀".repeat(32769)}","kx":"${kx}"}`,
      `{"v":1,"sdp":"x","kx":"${kx}","info":{"n":"${"é".repeat(256)}"}}`,
      `{"v":1,"sdp":"x","kx":"${kx}","info":{"n":"${"é".repeat(257)}"}}`,
      `{"v":1,"sdp":"x","kx":"${kx}","info":{"a":"1","a":"2"}}`,
      `{"v":1,"sdp":"x","kx":"${kx.slice(0, 42)}${kx.at(-1) === "A" ? "B" : "A"}"}`,
      `{"v":1,"sdp":"x","kx":"${kx}==" }`,
      `{"v":1,"sdp":"x","kx":"${kx}"`,
      `{"v":1,"sdp":"x\\x","kx":"${kx}"}`,
      `{"v":1,"sdp":"x\\u12","kx":"${kx}"}`,
      `{"v":01,"sdp":"x","kx":"${kx}"}`,
      `{"v":1.,"sdp":"x","kx":"${kx}"}`,
      `{"v":+1,"sdp":"x","kx":"${kx}"}`,
      `${"[".repeat(100)}${"]".repeat(100)}`,
      `{"v":1,"sdp":"x","kx":"${kx}","deep":${"[".repeat(3000)}${"]".repeat(3000)}}`,
    ];
    for (const text of bodies) {
      const data = utf8Encode(text);
      const theirs = await py.call("decode_handshake", { data: toHex(data) });
      let ours;
      try {
        const d = decodeHandshake(data);
        ours = { sdp: d.sdp, kx: toHex(d.kxPublic), info: { ...d.info } };
      } catch (err) {
        ours = { error: err.code };
      }
      if (theirs.error) assert.deepEqual(ours, { error: theirs.error }, text.slice(0, 100));
      else assert.deepEqual(ours, theirs, text.slice(0, 100));
    }
  });

  test("frame decoders agree on mutated frames", async () => {
    const base = encodeFrame({ type: 1, messageId: randomBytes(16), timestampMs: NOW, body: utf8Encode("héllo") });
    const inputs = [base];
    for (let i = 0; i < 60; i++) {
      const m = base.slice();
      m[i % m.length] = Math.floor(Math.random() * 256);
      inputs.push(m, m.slice(0, 26 + (i % 3)), Uint8Array.of(1, i % 9, ...m.slice(2, 26)), Uint8Array.of(1, 6 + (i % 2), ...m.slice(2)));
    }
    inputs.push(new Uint8Array(0), new Uint8Array(25), new Uint8Array(65_537));
    for (const data of inputs) {
      const theirs = await py.call("decode_frame", { data: toHex(data) });
      let ours;
      try {
        const f = decodeFrame(data);
        ours = { type: f.type, body: toHex(f.body) };
      } catch (err) {
        ours = { error: err.code };
      }
      assert.deepEqual(ours, theirs.error ? { error: theirs.error } : theirs, toHex(data.slice(0, 32)));
    }
  });

  test("safety numbers agree on random key pairs", async () => {
    for (let i = 0; i < 20; i++) {
      const a = randomBytes(32);
      const b = randomBytes(32);
      const theirs = await py.ok("safety", { a: toHex(a), b: toHex(b) });
      assert.equal(safetyNumber(a, b).digits, theirs.digits);
    }
  });

  test("groups: JS guest ↔ Python owner: groups=1 and gk, the list and messages both ways; Python accepts the guest's signed chain", async () => {
    const link = linkFromSecret(randomBytes(32));
    await py.ok("init", { fragment: link.fragment, role: "responder", groups: true });
    const mine = newGroupKeys();
    const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), {
      groups: true,
      groupKey: mine.publicKey,
    });
    const alice = sodium.crypto_sign_keypair();
    const bob = sodium.crypto_sign_keypair(); // the owner: hosts the guest
    const guestId = b64urlEncode(randomBytes(16));
    const received = await py.ok("receive_offer", { data: toHex(guest.makeOffer("v=0", { guest: guestId }, NOW)), now: NOW });
    assert.deepEqual(received.info, { guest: guestId, batch: "1", groups: "1", gk: b64urlEncode(mine.publicKey) });
    const answer = await py.ok("make_answer", { sdp: "v=0", info: { name: "Bob", pk: b64urlEncode(bob.publicKey) }, now: NOW });
    assert.equal(guest.receiveAnswer(hex(answer.data), NOW).info.groups, "1");
    await py.ok("receive", { data: toHex(guest.streamHeader()), now: NOW });
    guest.receiveData(hex((await py.ok("header")).data), NOW);
    assert.equal(guest.groups, true);

    // the admin's list puts the key from the offer in as Bob's guest; Bob holds it
    const gk = b64urlDecode(received.info.gk);
    const list = makeMemberList(randomBytes(16), 1, "Team ✓", [
      { kind: MemberKind.LAN, key: alice.publicKey, name: "Alice" },
      { kind: MemberKind.LAN, key: bob.publicKey, name: "Bob" },
      { kind: MemberKind.GUEST, key: gk, name: "Zoë", hostKey: bob.publicKey },
    ], alice); // prettier-ignore
    await py.ok("group_hold", { list: toHex(list.encoded), me: toHex(bob.publicKey) });
    const listCopy = copyIdOf(messageIdOf(list.encoded), gk);
    const listFrame = await py.ok("send_group", { kind: 7, payload: toHex(list.encoded), message_id: toHex(listCopy), now: NOW });
    const [listEvent] = guest.receiveData(hex(listFrame.data), NOW);
    assert.deepEqual(listEvent, { type: "group", kind: 7, messageId: listCopy, timestampMs: NOW, payload: list.encoded });
    let state = joinAsGuest(listEvent.payload, mine.publicKey, bob.publicKey).state;
    assert.equal(state.members.name, "Team ✓");

    // a member's message forwarded by the owner
    const fromAlice = makeGroupMessage(list.groupId, 1, alice, 1, ZERO_HASH, NOW, MessageKind.TEXT, utf8Encode("hi Zoë"));
    const fwd = await py.ok("send_group", {
      kind: 6, payload: toHex(fromAlice.encoded), message_id: toHex(copyIdOf(fromAlice.messageId, gk)), now: NOW,
    }); // prettier-ignore
    const [msgEvent] = guest.receiveData(hex(fwd.data), NOW);
    const got = receiveMessage(state, msgEvent.payload);
    assert.equal(got.verdict, Verdict.ACCEPTED);
    assert.equal(got.message.text, "hi Zoë");
    state = got.state;
    const ack = await py.ok("receive", { data: toHex(guest.sendReceipt(msgEvent.messageId, NOW)), now: NOW });
    assert.deepEqual(ack.events, [{ type: "receipt", message_id: toHex(msgEvent.messageId) }]);

    // the guest's own chain, as GROUP_MESSAGE frames whose id is the copy id for Bob
    const texts = ["hello from the browser ✓", "and again"];
    const sent = [];
    for (const text of texts) {
      const out = nextMessage(state, mine, text, NOW);
      state = out.state;
      const copyId = copyIdOf(out.messageId, bob.publicKey);
      const r = await py.ok("receive", { data: toHex(guest.sendGroupMessage(out.encoded, NOW, { messageId: copyId })), now: NOW });
      assert.deepEqual(r.events, [{ type: "group", kind: 6, message_id: toHex(copyId), payload: toHex(out.encoded) }]);
      sent.push(out);
    }
    for (const [i, out] of sent.entries()) {
      const verdict = await py.ok("group_receive", { data: toHex(out.encoded) });
      assert.deepEqual(verdict, { verdict: "accepted", code: "", text: texts[i], missing: 0, message_id: toHex(out.messageId) });
    }
    assert.equal((await py.ok("group_receive", { data: toHex(sent[0].encoded) })).code, "group-replay");
    // a guest message whose chain link is wrong: Python refuses it as JS would
    const broken = makeGroupMessage(list.groupId, 1, mine, 3, randomBytes(32), NOW, MessageKind.TEXT, utf8Encode("x"));
    assert.equal((await py.ok("group_receive", { data: toHex(broken.encoded) })).code, "group-broken-chain");
    const receipt = await py.ok("receipt", { message_id: toHex(copyIdOf(sent[0].messageId, bob.publicKey)), now: NOW });
    assert.deepEqual(guest.receiveData(hex(receipt.data), NOW), [
      { type: "receipt", messageId: copyIdOf(sent[0].messageId, bob.publicKey) },
    ]);
  });

  test("groups: a Python owner without groups gets gk and ignores it; the page then sends TEXT", async () => {
    const link = linkFromSecret(randomBytes(32));
    await py.ok("init", { fragment: link.fragment, role: "responder" }); // a Session without groups
    const guest = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, new ReplayGuard()), {
      groups: true,
      groupKey: newGroupKeys().publicKey,
    });
    const received = await py.ok("receive_offer", { data: toHex(guest.makeOffer("v=0", { guest: "g" }, NOW)), now: NOW });
    assert.equal(received.info.groups, "1");
    const answer = await py.ok("make_answer", { sdp: "v=0", info: { name: "old" }, now: NOW });
    assert.equal(guest.receiveAnswer(hex(answer.data), NOW).info.groups, undefined);
    assert.equal(guest.groups, false);
    await py.ok("receive", { data: toHex(guest.streamHeader()), now: NOW });
    guest.receiveData(hex((await py.ok("header")).data), NOW);
    const r = await py.ok("receive", { data: toHex(guest.sendText("plain", NOW).data), now: NOW });
    assert.equal(r.events[0].text, "plain");
  });

  test("groups: Python's and JS's decoders agree on mutated lists and messages, and on odd keys", async () => {
    const random = (n) => Math.floor(Math.random() * n);
    const admin = sodium.crypto_sign_keypair();
    const other = sodium.crypto_sign_keypair();
    const genuineList = makeMemberList(randomBytes(16), 3, "Team ✓", [
      { kind: MemberKind.LAN, key: admin.publicKey, name: "Ädmin" },
      { kind: MemberKind.GUEST, key: other.publicKey, name: "G", hostKey: admin.publicKey },
    ], admin).encoded; // prettier-ignore
    const genuineMsg = makeGroupMessage(randomBytes(16), 2, other, 1, ZERO_HASH, NOW, MessageKind.TEXT, utf8Encode("héllo")).encoded;
    const oddKeys = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31)), new Uint8Array(32).fill(0xff), randomBytes(32)];
    const lists = [genuineList];
    for (const key of oddKeys) {
      const body = genuineList.slice(0, genuineList.length - 64);
      const at = body.length - (32 + 1 + 1 + 32); // the guest's key
      body.set(key, at);
      lists.push(concat(body, sodium.crypto_sign_detached(concat(utf8Encode("p2pchat/group-members/v1\0"), body), admin.privateKey)));
    }
    const messages = [genuineMsg];
    for (let i = 0; i < 40; i++) {
      for (const [into, genuine] of [[lists, genuineList], [messages, genuineMsg]]) {
        const m = genuine.slice(0, i % 5 === 0 ? random(genuine.length) : genuine.length);
        m[random(m.length)] = random(256);
        into.push(m);
      }
    }
    const ours = (decode, data) => {
      try {
        const v = decode(data);
        return v.members
          ? { epoch: v.epoch, name: v.name, members: v.members.map((m) => [m.kind, toHex(m.key), m.name]) }
          : { seq: String(v.seq), kind: v.kind, body: toHex(v.body) };
      } catch (err) {
        return { error: err.code };
      }
    };
    for (const [op, decode, inputs] of [
      ["decode_member_list", decodeMemberList, lists],
      ["decode_group_message", decodeGroupMessage, messages],
    ]) {
      for (const data of inputs) {
        const theirs = await py.call(op, { data: toHex(data) });
        assert.deepEqual(ours(decode, data), theirs.error ? { error: theirs.error } : theirs, `${op} ${toHex(data)}`);
      }
    }
  });
});

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
