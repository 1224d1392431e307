// The page's transfers (files.js) against an owner made of the pure protocol ends, in
// memory: both directions, a reconnect in the middle (resume), refusals.
import { test } from "node:test";
import assert from "node:assert/strict";

import { randomBytes, toHex } from "../src/crypto.js";
import { blake2b256 } from "../src/file_crypto.js";
import { IncomingTransfer, Outcome, OutgoingTransfer } from "../src/file_transfer.js";
import {
  BLOCK_BYTES,
  ControlKind,
  FileControl,
  FileOffer,
  decodeControl,
  decodeOffer,
  encodeChunkHeader,
} from "../src/file_wire.js";
import { FileTransfers, MAX_RECEIVE_BYTES, RELAY_DAMAGE_RESUMES, State } from "../src/files.js";

function content(size, salt = 0) {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + salt + (i >>> 9)) & 0xff;
  return data;
}

/** A link that records what the page sends; `chunks` sent while `open`. */
function recorder() {
  const link = {
    open: true,
    offers: [],
    controls: [],
    chunks: [],
    sendOffer(payload, transferId) {
      if (!link.open) return false;
      link.offers.push({ payload, transferId });
      return true;
    },
    sendControl(payload) {
      if (!link.open) return false;
      link.controls.push(decodeControl(payload));
      return true;
    },
    async sendChunk(data) {
      await null; // as a channel: later
      if (!link.open) throw new Error("the files channel closed");
      link.chunks.push(data);
    },
  };
  return link;
}

function page() {
  const views = new Map();
  const notes = [];
  const ft = new FileTransfers({
    onUpdate: (view) => views.set(view.key, view),
    onNote: (text) => notes.push(text),
    randomBytes,
  });
  return { ft, views, notes };
}

const control = (kind, transferId, value = 0, reason = "") =>
  ({ kind: 9, payload: new FileControl({ kind, transferId, value, reason }).encode() });
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

test("page sends a file; the owner resumes it after a reconnect; DONE", async () => {
  const { ft, views } = page();
  let link = recorder();
  ft.attach(link);
  const data = content(BLOCK_BYTES * 6 + 1234);
  await ft.sendFile(new File([data], "notes ✓.txt", { type: "text/plain" }));
  assert.equal(link.offers.length, 1);
  const { payload, transferId } = link.offers[0];
  const offer = decodeOffer(payload);
  assert.equal(offer.name, "notes ✓.txt");
  assert.equal(offer.mime, "text/plain");
  assert.equal(offer.size, data.length);
  assert.deepEqual(offer.fileHash, blake2b256(data));
  const key = toHex(transferId);
  assert.equal(views.get(key).state, State.OFFERED);
  ft.receipted(transferId);

  // The owner takes two blocks, then the connection drops.
  let owner = new IncomingTransfer(transferId, offer);
  const kept = [];
  ft.frame(control(ControlKind.ACCEPT, transferId, 0));
  for (let rounds = 0; link.chunks.length < 8; rounds++) {
    assert.ok(rounds < 1000, "no chunks"); // 8 chunks: blocks 0 and 1 (4 of 64 KiB each)
    await settle();
  }
  for (const chunk of link.chunks.splice(0)) {
    const r = owner.receiveChunk(chunk);
    if (r.kind === Outcome.READY && r.index < 2) {
      kept[r.index] = r.data;
      owner.blockWritten(r.index);
    }
  }
  assert.equal(owner.verified, 2);
  link.open = false;
  ft.attach(null);
  // A new session: the offer was receipted (not sent again); the owner says ACCEPT(2).
  link = recorder();
  ft.attach(link);
  assert.equal(link.offers.length, 0);
  owner = new IncomingTransfer(transferId, offer, { verifiedBlocks: 2 });
  ft.frame({ kind: 9, payload: owner.accept().encode() });
  for (let rounds = 0; !owner.complete; rounds++) {
    assert.ok(rounds < 100, "no progress");
    await settle();
    for (const chunk of link.chunks.splice(0)) {
      const r = owner.receiveChunk(chunk);
      assert.notEqual(r.kind, Outcome.DUPLICATE); // nothing before block 2 again
      if (r.kind !== Outcome.READY) continue;
      kept[r.index] = r.data;
      ft.frame({ kind: 9, payload: owner.blockWritten(r.index).encode() });
    }
  }
  const whole = new Uint8Array(await new Blob(kept).arrayBuffer());
  assert.ok(owner.wholeHashOk(blake2b256(whole)));
  assert.equal(views.get(key).state, State.SENDING);
  assert.equal(views.get(key).done, data.length);
  ft.frame(control(ControlKind.DONE, transferId, data.length));
  assert.equal(views.get(key).state, State.DONE);
});

test("page sends: an unanswered offer goes again on the next session; DECLINE ends it", async () => {
  const { ft, views } = page();
  const first = recorder();
  first.open = false; // no session yet
  ft.attach(first);
  await ft.sendFile(new File([content(10)], "a.bin"));
  const link = recorder();
  ft.attach(link);
  assert.equal(link.offers.length, 1);
  const { transferId } = link.offers[0];
  ft.frame(control(ControlKind.DECLINE, transferId, 0, "no space"));
  const view = views.get(toHex(transferId));
  assert.equal(view.state, State.DECLINED);
  assert.match(view.error, /no space/);
  // A bad control (ACK of a block never sent) cancels with a reason.
  await ft.sendFile(new File([content(10)], "b.bin"));
  const second = link.offers[1].transferId;
  ft.frame(control(ControlKind.ACK, second, 5));
  assert.equal(views.get(toHex(second)).state, State.OFFERED); // not sending: ignored
  ft.frame(control(ControlKind.ACCEPT, second, 9));
  assert.equal(views.get(toHex(second)).state, State.CANCELLED);
  assert.equal(link.controls.at(-1).kind, ControlKind.CANCEL);
  assert.match(link.controls.at(-1).reason, /file-bad-control/);
});

function ownerOffer(data, name = "photo.png", mime = "image/png") {
  const transferId = randomBytes(16);
  const fileKey = randomBytes(32);
  const offer = new FileOffer({ size: data.length, blockBytes: 65536, fileHash: blake2b256(data), fileKey, mime, name });
  const out = new OutgoingTransfer(transferId, fileKey, data.length, 65536);
  return { transferId, offer, out };
}

function ownerSend(out, data, ft) {
  for (const index of out.blocksToSend()) {
    const block = data.subarray(index * 65536, index * 65536 + out.blockLen(index));
    for (const chunk of out.chunksOf(index, block)) ft.chunk(chunk);
  }
}

test("page receives a file with a reconnect in the middle; hash checked; DONE; blob", async () => {
  const { ft, views } = page();
  let link = recorder();
  ft.attach(link);
  const data = content(65536 * 9 + 77, 5);
  const { transferId, offer, out } = ownerOffer(data, "../../x\u202e.png");
  ft.frame({ kind: 8, messageId: transferId, payload: offer.encode() });
  const key = toHex(transferId);
  assert.equal(views.get(key).state, State.OFFERED);
  assert.equal(views.get(key).name, "x.png"); // sanitized as the node does
  ft.frame({ kind: 8, messageId: transferId, payload: offer.encode() }); // a resend: nothing new
  assert.equal(ft.transfers.length, 1);
  assert.ok(ft.accept(key));
  assert.deepEqual([link.controls[0].kind, link.controls[0].value], [ControlKind.ACCEPT, 0]);
  out.onAccept(link.controls[0].value);
  ownerSend(out, data, ft); // blocks 0-3
  const acks = link.controls.filter((c) => c.kind === ControlKind.ACK);
  assert.deepEqual(acks.map((c) => c.value), [1, 2, 3, 4]);
  assert.equal(views.get(key).done, 4 * 65536);
  // Reconnect: the page says where it is; the owner goes on from there.
  link = recorder();
  ft.attach(link);
  assert.deepEqual([link.controls[0].kind, link.controls[0].value], [ControlKind.ACCEPT, 4]);
  out.onAccept(4);
  while (views.get(key).state === State.RECEIVING) {
    ownerSend(out, data, ft);
    for (const c of link.controls.splice(0)) if (c.kind === ControlKind.ACK) out.onAck(c.value);
  }
  assert.equal(views.get(key).state, State.DONE);
  const done = ft.transfers[0];
  assert.equal(done.preview, true);
  assert.equal(done.blob.type, "image/png");
  assert.deepEqual(new Uint8Array(await done.blob.arrayBuffer()), data);
});

test("page receives: refusals (too big, damaged chunk, wrong whole hash, decline, owner cancel)", () => {
  const { ft, views } = page();
  const link = recorder();
  ft.attach(link);
  // Too big for the tab: declined at once.
  const big = new FileOffer({ size: MAX_RECEIVE_BYTES + 1, blockBytes: 65536, fileHash: randomBytes(32), fileKey: randomBytes(32), mime: "", name: "big" });
  const bigId = randomBytes(16);
  ft.frame({ kind: 8, messageId: bigId, payload: big.encode() });
  assert.equal(views.get(toHex(bigId)).state, State.DECLINED);
  assert.equal(link.controls.at(-1).kind, ControlKind.DECLINE);
  // A damaged chunk: FAIL with its code.
  const data = content(100_000);
  const a = ownerOffer(data, "a.bin", "application/octet-stream");
  ft.frame({ kind: 8, messageId: a.transferId, payload: a.offer.encode() });
  ft.accept(toHex(a.transferId));
  a.out.onAccept(0);
  const [chunk] = a.out.chunksOf(0, data.subarray(0, 65536));
  chunk[60] ^= 1;
  ft.chunk(chunk);
  assert.equal(views.get(toHex(a.transferId)).state, State.FAILED);
  assert.equal(link.controls.at(-1).kind, ControlKind.FAIL);
  assert.match(link.controls.at(-1).reason, /file-bad-ciphertext/);
  // Blocks that are fine but a whole hash that is not: FAIL, nothing kept.
  const b = ownerOffer(data, "b.bin", "");
  const lying = new FileOffer({ ...b.offer, fileHash: randomBytes(32) });
  ft.frame({ kind: 8, messageId: b.transferId, payload: lying.encode() });
  ft.accept(toHex(b.transferId));
  b.out.onAccept(0);
  ownerSend(b.out, data, ft);
  assert.equal(views.get(toHex(b.transferId)).state, State.FAILED);
  assert.match(views.get(toHex(b.transferId)).error, /hash does not match/);
  assert.equal(views.get(toHex(b.transferId)).blob, null);
  // Declined by the person; cancelled by the owner; a late chunk is ignored.
  const c = ownerOffer(data, "c.bin", "");
  ft.frame({ kind: 8, messageId: c.transferId, payload: c.offer.encode() });
  ft.decline(toHex(c.transferId));
  assert.equal(link.controls.at(-1).kind, ControlKind.DECLINE);
  const d = ownerOffer(data, "d.bin", "");
  ft.frame({ kind: 8, messageId: d.transferId, payload: d.offer.encode() });
  ft.accept(toHex(d.transferId));
  ft.frame(control(ControlKind.CANCEL, d.transferId, 0, "changed my mind"));
  assert.equal(views.get(toHex(d.transferId)).state, State.CANCELLED);
  d.out.onAccept(0);
  ownerSend(d.out, data, ft);
  assert.equal(views.get(toHex(d.transferId)).state, State.CANCELLED);
  // Junk on the channel and bad frames are ignored with a warning, nothing thrown.
  ft.chunk(new Uint8Array(10));
  ft.chunk(encodeChunkHeader({ transferId: randomBytes(16), block: 0, chunk: 0, last: true }).slice(0, 24));
  ft.frame({ kind: 8, messageId: randomBytes(16), payload: Uint8Array.of(1) });
  ft.frame({ kind: 9, payload: Uint8Array.of(1) });
});

test("page receives on the relay path: a damaged chunk resumes from the last verified block", async () => {
  const { ft, views } = page();
  const link = recorder();
  ft.attach(link);
  const data = content(65536 * 3 + 9, 7);
  const { transferId, offer, out } = ownerOffer(data, "r.bin", "");
  const key = toHex(transferId);
  ft.frame({ kind: 8, messageId: transferId, payload: offer.encode() });
  assert.ok(ft.accept(key));
  out.onAccept(0);
  const [first] = out.chunksOf(0, data.subarray(0, 65536));
  ft.chunk(first, true);
  const [second] = out.chunksOf(1, data.subarray(65536, 2 * 65536));
  second[second.length - 1] ^= 1;
  ft.chunk(second, true);
  assert.equal(views.get(key).state, State.RECEIVING);
  const accepts = link.controls.filter((c) => c.kind === ControlKind.ACCEPT).map((c) => c.value);
  assert.deepEqual(accepts, [0, 1]); // block 0 verified: resend from block 1
  out.onAccept(1);
  while (views.get(key).state === State.RECEIVING) {
    const before = link.controls.length;
    for (const index of out.blocksToSend()) {
      const block = data.subarray(index * 65536, index * 65536 + out.blockLen(index));
      for (const chunk of out.chunksOf(index, block)) ft.chunk(chunk, true);
    }
    for (const c of link.controls.slice(before)) if (c.kind === ControlKind.ACK) out.onAck(c.value);
  }
  assert.equal(views.get(key).state, State.DONE);
  assert.deepEqual(new Uint8Array(await ft.transfers[0].blob.arrayBuffer()), data);
});

test("page receives on the relay path: a relay that keeps damaging fails it; the channel never resumes", () => {
  const { ft, views } = page();
  const link = recorder();
  ft.attach(link);
  const data = content(70_000, 3);
  const { transferId, offer, out } = ownerOffer(data, "k.bin", "");
  const key = toHex(transferId);
  ft.frame({ kind: 8, messageId: transferId, payload: offer.encode() });
  ft.accept(key);
  out.onAccept(0);
  const [chunk] = out.chunksOf(0, data.subarray(0, 65536));
  chunk[chunk.length - 1] ^= 1;
  for (let i = 0; i < RELAY_DAMAGE_RESUMES; i++) ft.chunk(chunk, true);
  assert.equal(views.get(key).state, State.RECEIVING);
  ft.chunk(chunk, true);
  assert.equal(views.get(key).state, State.FAILED);
  assert.equal(views.get(key).error, "the relay kept damaging the file (file-bad-ciphertext)");
  // On the data channel (inside DTLS) the first damaged chunk fails it, as before.
  const b = ownerOffer(data, "b.bin", "");
  ft.frame({ kind: 8, messageId: b.transferId, payload: b.offer.encode() });
  ft.accept(toHex(b.transferId));
  b.out.onAccept(0);
  const [bad] = b.out.chunksOf(0, data.subarray(0, 65536));
  bad[bad.length - 1] ^= 1;
  ft.chunk(bad);
  assert.equal(views.get(toHex(b.transferId)).state, State.FAILED);
});
