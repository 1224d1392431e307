// ice.js: the server's IceOffer (bounds like p2pchat/transport/ice_config.py), the wait
// for it on a socket, and the path read from getStats().
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  NO_ICE,
  iceFromMessage,
  iceMode,
  parseIceOffer,
  pathOfStats,
  reportPath,
  waitForIce,
} from "../src/ice.js";

const TURN = { urls: ["turn:turn.example.org:3478?transport=udp"], username: "1800000000:rAbC", credential: "XLm/N/g=" };
const STUN = { urls: ["stun:turn.example.org:3478"] };
const OFFER = { ice_servers: [TURN, STUN], policy: "relay", expires_at: 1800000000 };

test("an offer becomes the RTCConfiguration part, in order, with its policy", () => {
  assert.deepEqual(parseIceOffer(OFFER), { iceServers: [TURN, STUN], iceTransportPolicy: "relay" });
  assert.deepEqual(parseIceOffer({ ice_servers: [{ urls: "stun:10.0.0.1" }] }), {
    iceServers: [{ urls: ["stun:10.0.0.1"] }],
    iceTransportPolicy: "all",
  });
});

test("offers that break a bound count as none", () => {
  const long = "turn:" + "a".repeat(252);
  const bad = [
    null,
    "turn:x",
    [],
    { ice_servers: "stun:x" },
    { ice_servers: Array(5).fill(STUN) },
    { ice_servers: [{ urls: Array(5).fill("stun:x") }] },
    { ice_servers: [{ urls: [] }] },
    { ice_servers: [{ urls: [long] }] },
    { ice_servers: [{ urls: ["http://x"] }] },
    { ice_servers: [{ urls: ["turn:[::1]:3478"] }] },
    { ice_servers: [{ urls: [7] }] },
    { ice_servers: [{ ...TURN, credential: "c".repeat(257) }] },
    { ice_servers: [{ ...TURN, username: 5 }] },
    { ice_servers: [TURN], policy: "none" },
    { ice_servers: [STUN], policy: "relay" },
  ];
  for (const offer of bad) assert.equal(parseIceOffer(offer), null, JSON.stringify(offer));
  assert.notEqual(parseIceOffer({ ice_servers: [{ urls: [long.slice(0, 256)] }] }), null);
});

test("only a {type: ice} text message is an offer", () => {
  assert.deepEqual(iceFromMessage(JSON.stringify({ type: "ice", ...OFFER })), parseIceOffer(OFFER));
  assert.equal(iceFromMessage(JSON.stringify({ type: "error", ...OFFER })), null);
  assert.equal(iceFromMessage("not json"), null);
  assert.equal(iceFromMessage(new ArrayBuffer(4)), null);
});

test("the page's meta says lan or server", () => {
  const doc = (content) => ({
    querySelector: (sel) => (sel === 'meta[name="p2pchat-ice"]' ? { getAttribute: () => content } : null),
  });
  assert.equal(iceMode(doc("server")), "server");
  assert.equal(iceMode(doc("lan")), "lan");
  assert.equal(iceMode({ querySelector: () => null }), "lan");
  assert.equal(iceMode(undefined), "lan");
});

function socket() {
  const ws = new EventTarget();
  ws.receive = (data) => ws.dispatchEvent(Object.assign(new Event("message"), { data }));
  return ws;
}

test("waitForIce takes the first text message and ignores binary ones", async () => {
  const ws = socket();
  const waiting = waitForIce(ws, 60000);
  ws.receive(new ArrayBuffer(3));
  ws.receive(JSON.stringify({ type: "ice", ...OFFER }));
  ws.receive(JSON.stringify({ type: "ice", ice_servers: [] }));
  assert.deepEqual(await waiting, parseIceOffer(OFFER));
});

test("waitForIce gives no servers on a bad offer, a close, or after its time", async () => {
  const bad = socket();
  const onBad = waitForIce(bad, 60000);
  bad.receive(JSON.stringify({ type: "ice", ice_servers: "x" }));
  assert.deepEqual(await onBad, NO_ICE);

  const closing = socket();
  const onClose = waitForIce(closing, 60000);
  closing.dispatchEvent(new Event("close"));
  assert.deepEqual(await onClose, NO_ICE);

  const silent = socket();
  assert.deepEqual(await waitForIce(silent, 1), NO_ICE);
});

function stats(localType, remoteType, { viaTransport = true } = {}) {
  const entries = [
    ["L", { type: "local-candidate", candidateType: localType }],
    ["R", { type: "remote-candidate", candidateType: remoteType }],
    ["X", { type: "candidate-pair", localCandidateId: "R", remoteCandidateId: "R", nominated: false, state: "failed" }],
    ["P", { type: "candidate-pair", localCandidateId: "L", remoteCandidateId: "R", nominated: true, state: "succeeded" }],
  ];
  if (viaTransport) entries.unshift(["T", { type: "transport", selectedCandidatePairId: "P" }]);
  return new Map(entries);
}

test("the path is turn iff either candidate of the selected pair is relayed", () => {
  assert.equal(pathOfStats(stats("host", "prflx")), "direct");
  assert.equal(pathOfStats(stats("srflx", "srflx", { viaTransport: false })), "direct");
  assert.equal(pathOfStats(stats("relay", "host")), "turn");
  assert.equal(pathOfStats(stats("host", "relay", { viaTransport: false })), "turn");
  assert.equal(pathOfStats(new Map()), null);
});

test("reportPath marks the page: direct, turn, or websocket on the relay", async () => {
  const page = () => ({ documentElement: { dataset: {} } });
  const pc = (report) => ({ getStats: async () => report });
  const a = page();
  await reportPath(pc(stats("relay", "relay")), "direct", a);
  assert.equal(a.documentElement.dataset.path, "turn");
  const b = page();
  await reportPath(pc(stats("host", "host")), "direct", b);
  assert.equal(b.documentElement.dataset.path, "direct");
  const c = page();
  await reportPath(null, "relay", c);
  assert.equal(c.documentElement.dataset.path, "websocket");
});

test("reportPath follows the ICE transport when it selects another pair", async () => {
  const doc = { documentElement: { dataset: {} } };
  const listeners = [];
  const iceTransport = { addEventListener: (type, fn) => type === "selectedcandidatepairchange" && listeners.push(fn) };
  let report = stats("relay", "host");
  const pc = { getStats: async () => report, sctp: { transport: { iceTransport } } };
  await reportPath(pc, "direct", doc);
  assert.equal(doc.documentElement.dataset.path, "turn");
  assert.equal(listeners.length, 1);
  report = stats("srflx", "srflx");
  await listeners[0]();
  assert.equal(doc.documentElement.dataset.path, "direct");
});
