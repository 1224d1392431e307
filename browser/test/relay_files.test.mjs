// Relay-path chunks (relay_files.js): one FILE message each, sent only once the socket's
// buffer is at or under the bound, refused once the session is gone.
import { test } from "node:test";
import assert from "node:assert/strict";

import { FILE, relayChunkOf, sendRelayChunk } from "../src/relay_files.js";

function fakeSocket(buffered) {
  return { readyState: 1, bufferedAmount: buffered, sent: [], send(m) { this.sent.push(m); } };
}

test("a chunk goes at once as [FILE][chunk] when the buffer is low", async () => {
  const ws = fakeSocket(0);
  await sendRelayChunk(ws, Uint8Array.of(7, 8, 9), { low: 10, usable: () => true });
  assert.deepEqual(ws.sent, [Uint8Array.of(FILE, 7, 8, 9)]);
});

test("a chunk waits while the buffer is over the bound", async () => {
  const ws = fakeSocket(100);
  let naps = 0;
  const sleep = async () => {
    naps += 1;
    assert.equal(ws.sent.length, 0); // nothing before the buffer drained
    ws.bufferedAmount -= 30; // 100 → 70 → 40 → 10
  };
  await sendRelayChunk(ws, Uint8Array.of(1), { low: 10, usable: () => true, sleep });
  assert.equal(naps, 3);
  assert.deepEqual(ws.sent, [Uint8Array.of(FILE, 1)]);
});

test("a session gone while waiting throws and sends nothing", async () => {
  const ws = fakeSocket(100);
  let open = true;
  const sleep = async () => {
    open = false;
  };
  await assert.rejects(sendRelayChunk(ws, Uint8Array.of(1), { low: 10, usable: () => open, sleep }), /closed/);
  const closed = { ...fakeSocket(0), readyState: 3 };
  await assert.rejects(sendRelayChunk(closed, Uint8Array.of(1), { low: 10, usable: () => true }), /closed/);
  assert.equal(ws.sent.length + closed.sent.length, 0);
});

test("relayChunkOf takes FILE messages only", () => {
  assert.deepEqual(relayChunkOf(Uint8Array.of(FILE, 1, 2)), Uint8Array.of(1, 2));
  assert.equal(relayChunkOf(Uint8Array.of(0x02, 1, 2)), null);
  assert.equal(relayChunkOf(Uint8Array.of(FILE)), null);
});
