// The guest page: joins the owner's chat through the invite link.
//
// docs/guest-protocol.md: a WebSocket to /ws/<room> on this host (SIGNAL 0x01 carries the
// sealed OFFER/ANSWER, RELAY 0x02 carries secret-stream messages on the relay path),
// one WebRTC data channel "p2pchat" with no ICE servers, the guest's stream header
// on the direct path if the channel opens within 4 s of the ANSWER, else on the
// relay (at once when the ANSWER says `path: "relay"`: the owner found no direct path
// in our offer, e.g. Chromium offers no address on a LAN without a default route).
// Every chat frame is end-to-end encrypted either way (session.js). A tab new to the
// link first sends a sealed probe (probeLink), so a used-up link says so before Join,
// on the socket warmup.js opened as the page loaded; the Join uses it too.
//
// Groups (docs/guest-protocol.md, "Groups"): the offer announces groups=1 and a group key
// made for this page (gk); an owner that hosts us in a group answers groups=1 and sends
// the member list (GROUP_LIST) first. From then on the page shows the group, checks every
// GROUP_MESSAGE (group.js) and sends its own as signed group messages. A 1:1 invite never
// gets a list and chats with TEXT frames as before.
//
// Files (docs/guest-protocol.md, "Files"): the offer announces files=1; an owner that
// answers files=1 gets the file button, drag-and-drop and offers (files.js). Chunks go on
// a second, pre-negotiated channel "p2pchat-files" (id 2) on the direct path, and as FILE
// (0x03) socket messages on the relay path (relay_files.js).

// First: take the secret out of the address bar (no dependencies, runs at once).
import { forgetFragment, linkFragment, pathRoomId } from "./fragment.js";
// Second: open the socket and gather ICE while libsodium loads (nothing is sent).
import { FILES_BUFFER_LOW, Groundwork, peekGroundwork, socketUrl, takeGroundwork } from "./warmup.js";
import { reportPath } from "./ice.js";
import {
  LinkEnvelopes,
  MAX_FRAME_BODY_BYTES,
  ProtocolError,
  ReplayGuard,
  b64urlDecode,
  b64urlEncode,
  concatBytes,
  fromHex,
  linkFromFragment,
  randomBytes,
  safetyNumber,
  toHex,
  utf8Encode,
} from "./crypto.js";
import { normalizePassword } from "./cpace.js";
import { Role, Session, SessionState } from "./session.js";
import {
  MAX_TEXT_BYTES as MAX_GROUP_TEXT_BYTES,
  MemberKind,
  MessageKind,
  Status as GroupStatus,
  Verdict,
  copyIdOf,
  joinAsGuest,
  memberOf,
  groupKeysFromSeed,
  nextMessage,
  receiveList,
  receiveMessage,
  withOwnChain,
} from "./group.js";
import { FileTransfers, State as FileState } from "./files.js";
import { FILE, relayChunkOf, sendRelayChunk } from "./relay_files.js";

const SIGNAL = 0x01;
const RELAY = 0x02;
const DIRECT_WAIT_MS = 4000; // after the ANSWER, before falling back to the relay
const PING_EVERY_MS = 2000; // keep-alive as in peer_link.py
const SILENCE_LIMIT_MS = 7000;
const OPEN_LIMIT_MS = 15000; // from our header to the owner's, as for LAN channels
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const MAX_NAME_BYTES = 64;
const MAX_UNSENT = 200;
const MAX_SEEN_IDS = 2000;
const MAX_LOG_ENTRIES = 1000;
const SEND_BUFFER_LIMIT = 8 * 1024 * 1024;
const LINK_NOT_VALID = 4404;
const REFUSED = 4403; // the owner refused: link used up, expired, revoked, or not let in
const HANDSHAKE_FAILED = 4400; // the owner could not verify our offer (reason names the code)
const WRONG_PASSWORD = 4401; // a password link: wrong password (N tries left), or none given
const ANSWER_LIMIT_MS = 20000; // an answer that never comes: start over
const LINK_USABLE = 4100; // the owner's answer to our probe: the link takes a new guest
const PROBE_LIMIT_MS = 15000; // a probe that gets no answer: show the Join form anyway
const PROBE_SDP = "v=0\r\n"; // a probe carries no offer; the handshake needs some SDP
const USABLE_ANSWER = "usable"; // the SIGNAL payload that answers a probe kept open
const BASE_TITLE = "p2pchat";
const GROUP_LIST_WAIT_MS = 3000; // an owner with groups=1: wait this long for a member list
const GROUP_MESSAGE = 6;
const GROUP_LIST = 7;

// Start-up milestones on the page's own timeline (bench/bench_guest.py reads them;
// nothing leaves the page).
function mark(name) {
  try {
    performance.mark(`p2pchat:${name}`);
  } catch {
    // no User Timing: nothing to record
  }
}
mark("app");

// What each refusal means to a person; every code from docs/protocol.md "Errors".
const ERROR_TEXT = {
  tampered: "The owner's answer failed authentication: the link is wrong or someone tampered with it.",
  reflected: "Our own offer came back to us (reflected): someone on the network is interfering.",
  replayed: "An old answer was sent again (replayed): someone on the network is interfering.",
  stale: "The owner's answer is too old or from the future: check that both clocks are right.",
  "wrong-session": "The answer belongs to another session: someone on the network is interfering.",
  "wrong-kind": "Received a signaling message of the wrong kind.",
  malformed: "Received a damaged signaling message.",
  unsupported: "The owner runs a p2pchat version this page does not support.",
  "bad-handshake": "The owner's answer could not be read.",
  "bad-stream": "The encrypted stream broke (tampered, reordered or cut).",
  "bad-frame": "Received a damaged chat message.",
  closed: "Received data after the chat was closed.",
};

// -- page elements -------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  statusText: $("status-text"),
  error: $("error"),
  join: $("join"),
  joinForm: $("join-form"),
  name: $("name"),
  passwordRow: $("password-row"),
  password: $("password"),
  peer: $("peer"),
  peerName: $("peer-name"),
  peerLabel: $("peer-label"),
  group: $("group"),
  groupName: $("group-name"),
  groupState: $("group-state"),
  members: $("members"),
  path: $("path"),
  safety: $("safety"),
  log: $("log"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  attach: $("attach"),
  fileInput: $("file-input"),
};

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.statusText.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

// The owner closed our socket with 4400: say what it found, in its own words.
const REFUSAL_TEXT = {
  tampered: "our request failed authentication: someone on the network tampered with it, or the link is damaged (ask for a new one)",
  replayed: "our request arrived twice (replayed): someone on the network may be interfering",
  reflected: "our request came back the wrong way (reflected): someone on the network may be interfering",
  stale: "our request is too old or from the future: check that this device's clock and the owner's are right",
  "wrong-kind": "our request arrived as the wrong kind of message: someone on the network may be interfering",
  malformed: "our request arrived damaged",
  unsupported: "the owner runs a p2pchat version this page does not support",
  "bad-handshake": "our request could not be read: this page and the owner's p2pchat may not match",
};

function describeRefusal(err) {
  const why = Object.hasOwn(REFUSAL_TEXT, err.code) ? REFUSAL_TEXT[err.code] : err.message;
  return `The owner refused our connection request: ${why}. Reload the page to try again.`;
}

function describeError(err) {
  if (err instanceof ProtocolError && Object.hasOwn(ERROR_TEXT, err.code)) return ERROR_TEXT[err.code];
  return err instanceof Error ? err.message : String(err);
}

/** This tab's group key pair for a link: its seed kept in sessionStorage, made once. */
function pageGroupKeys(roomId) {
  const name = `p2pchat:${roomId}:gk`;
  let seed = null;
  try {
    seed = b64urlDecode(storage(name) ?? "");
  } catch {
    seed = null;
  }
  if (seed?.length !== 32) {
    seed = randomBytes(32);
    storage(name, b64urlEncode(seed));
  }
  return groupKeysFromSeed(seed);
}

/** Our own chain's end as a reload left it ({lastSeq, lastHash}), if for this group. */
function savedOwnChain(roomId, groupId) {
  const [group, seq, hash] = (storage(`p2pchat:${roomId}:gchain`) ?? "").split(":");
  if (group !== toHex(groupId) || !/^[0-9]{1,20}$/.test(seq ?? "") || !/^[0-9a-f]{64}$/.test(hash ?? "")) {
    return null;
  }
  return { lastSeq: BigInt(seq), lastHash: fromHex(hash) };
}

function saveOwnChain(roomId, state) {
  const value = `${toHex(state.members.groupId)}:${state.own.lastSeq}:${toHex(state.own.lastHash)}`;
  storage(`p2pchat:${roomId}:gchain`, value);
}

function storage(key, value) {
  try {
    if (value === undefined) return sessionStorage.getItem(key);
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // storage disabled: this tab just forgets
  }
  return null;
}

function timeText(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function appendEntry(kind, who, text, timestampMs) {
  const entry = document.createElement("div");
  entry.className = `msg ${kind}`;
  if (who) {
    const meta = document.createElement("span");
    meta.className = "meta";
    const whoEl = document.createElement("span");
    whoEl.className = "who";
    whoEl.textContent = who;
    const time = document.createElement("time");
    time.dateTime = new Date(timestampMs).toISOString();
    time.textContent = timeText(timestampMs);
    meta.append(whoEl, " ", time);
    entry.append(meta);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  entry.append(body);
  const stick = ui.log.scrollTop + ui.log.clientHeight >= ui.log.scrollHeight - 24;
  ui.log.append(entry);
  while (ui.log.childElementCount > MAX_LOG_ENTRIES) ui.log.firstElementChild.remove();
  if (stick) ui.log.scrollTop = ui.log.scrollHeight;
  return entry;
}

function systemNote(text) {
  appendEntry("system", null, text, Date.now());
}

function setReceipt(entry, state, text) {
  let receipt = entry.querySelector(".receipt");
  if (!receipt) {
    receipt = document.createElement("span");
    receipt.className = "receipt";
    entry.append(receipt);
  }
  receipt.dataset.state = state;
  receipt.textContent = text;
}

// -- outgoing messages: kept until the owner's receipt, resent after a reconnect -----

// local number -> {frameId, text, timestampMs, entry, mode: null | "text" | "group",
// group: null | encoded group message}. frameId: a random id for TEXT, the copy id for
// the owner once the item is a signed group message (so a resend is the same bytes).
const unsent = new Map();
let nextUnsent = 0;
const seenIncoming = new Set(); // de-duplicates resent messages

function rememberIncoming(idHex) {
  if (seenIncoming.has(idHex)) return false;
  seenIncoming.add(idHex);
  if (seenIncoming.size > MAX_SEEN_IDS) seenIncoming.delete(seenIncoming.values().next().value);
  return true;
}

// -- while the tab is in the background: unread count in the title, notifications ----

class Attention {
  constructor() {
    this.unread = 0;
    this.title = BASE_TITLE;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reset();
    });
  }

  /** On a user gesture only (browsers ignore or penalise other requests). */
  askPermission() {
    if (typeof Notification !== "function" || Notification.permission !== "default") return;
    try {
      Notification.requestPermission()?.catch?.(() => {});
    } catch {
      // old callback-only API or blocked: the title still counts
    }
  }

  incoming(from) {
    if (document.visibilityState !== "hidden") return;
    this.unread += 1;
    document.title = `(${this.unread}) ${this.title}`;
    if (typeof Notification !== "function" || Notification.permission !== "granted") return;
    try {
      // The sender and a count, never the text (as the TUI's notifications: pop-ups
      // show on lock screens and are often logged); the next one replaces it (same tag).
      const note = new Notification(`${from} (p2pchat)`, {
        body: this.unread === 1 ? "1 new message" : `${this.unread} new messages`,
        tag: "p2pchat-message",
      });
      note.addEventListener("click", () => {
        window.focus();
        note.close();
      });
    } catch {
      // Chromium on Android allows notifications only from a service worker
    }
  }

  reset() {
    this.unread = 0;
    document.title = this.title;
  }

  /** The tab's title without the unread count (a group's name, once in one). */
  setTitle(title) {
    this.title = title;
    document.title = this.unread ? `(${this.unread}) ${title}` : title;
  }
}

// -- before the Join form: may this link still take a new guest? ----------------------

/**
 * A new guest's tab proves it holds the link (a sealed OFFER envelope whose info says
 * `probe`, no SDP) and the owner answers: LINK_USABLE, or the refusal a Join would get
 * (4403 used up / expired / revoked, 4404, 4400), as a close. Nothing is reserved; the
 * server learns no more than it does from a Join. The probe goes on the socket that
 * warmup.js opened for the Join, with `probe: "keep"`: the owner then says "usable" in a
 * SIGNAL message and leaves the socket open for the OFFER (an older owner closes it with
 * LINK_USABLE; the Join then opens another). Resolves to {code, reason}, or null when
 * no answer came in time (then the Join form shows as before).
 */
function probeLink(link, guard, guestId) {
  return new Promise((resolve) => {
    const work = peekGroundwork(link.roomId);
    let ws;
    try {
      ws = work?.usable ? work.ws : new WebSocket(socketUrl(link.roomId));
    } catch {
      resolve(null);
      return;
    }
    ws.binaryType = "arraybuffer";
    const kept = ws === work?.ws;
    const timer = setTimeout(() => finish(null), PROBE_LIMIT_MS);
    let done = false;
    function finish(result) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeEventListener("open", onOpen);
      ws.removeEventListener("message", onMessage);
      ws.removeEventListener("close", onClose);
      if (!kept && ws.readyState <= WebSocket.OPEN) ws.close(1000);
      resolve(result);
    }
    function onOpen() {
      mark("probe-ws-open");
      try {
        const session = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, guard));
        const info = { guest: guestId, probe: kept ? "keep" : "1" };
        ws.send(concatBytes(Uint8Array.of(SIGNAL), session.makeOffer(PROBE_SDP, info)));
      } catch (err) {
        console.error("p2pchat: could not check the link:", err);
        finish(null);
      }
    }
    function onMessage(event) {
      const bytes = typeof event.data === "string" ? null : new Uint8Array(event.data);
      if (bytes?.[0] === SIGNAL && new TextDecoder().decode(bytes.subarray(1)) === USABLE_ANSWER) {
        mark("probe-answer");
        finish({ code: LINK_USABLE, reason: "" });
      }
    }
    function onClose(event) {
      mark("probe-answer");
      finish({ code: event.code, reason: event.reason });
    }
    if (ws.readyState === WebSocket.OPEN) onOpen();
    else ws.addEventListener("open", onOpen);
    ws.addEventListener("message", onMessage);
    ws.addEventListener("close", onClose);
  });
}

// -- one connection attempt: WebSocket + RTCPeerConnection + Session -----------------

class Attempt {
  constructor(link, guard, info, hooks, groupKey, password = null) {
    this.link = link;
    this.info = info;
    this.hooks = hooks;
    // Always groups=1 and our group key: an owner hosting us in a group lists that key.
    // A password link adds CPace (password: normalised bytes, memory only).
    this.session = new Session(Role.INITIATOR, new LinkEnvelopes(link.envelopeKey, guard), {
      groups: true,
      groupKey,
      files: true,
      password,
      linkRoom: link.roomIdRaw,
    });
    // Whether we know how to send: at once with a 1:1 owner; with an owner that announced
    // groups, once its first frame came (a member list first, if we are in a group).
    this.settled = false;
    this.settleTimer = null;
    this.path = null; // "direct" | "relay" once the guest's header is out
    this.ended = false;
    this.ws = null;
    this.pc = null;
    this.dc = null;
    this.filesDc = null;
    this.pingTimer = null;
    this.openTimer = null;
    this.lastHeard = 0;
  }

  get isOpen() {
    return !this.ended && this.session.state === SessionState.OPEN;
  }

  async start() {
    // The page's first attempt uses what warmup.js started as the page loaded.
    const work = takeGroundwork(this.link.roomId) ?? new Groundwork(this.link.roomId);
    const { ws, pc, dc, filesDc } = work;
    this.ws = ws;
    this.pc = pc;
    this.dc = dc;
    this.filesDc = filesDc;
    filesDc.addEventListener("message", (event) => this.onFilesMessage(event));
    ws.addEventListener("message", (event) => this.onSocketMessage(event));
    ws.addEventListener("close", (event) => this.onSocketClose(event));
    if (ws.readyState === WebSocket.OPEN) mark("ws-open");
    else ws.addEventListener("open", () => mark("ws-open"), { once: true });
    dc.addEventListener("message", (event) => this.onChannelMessage(event));
    dc.addEventListener("close", () => this.onDirectClosed());
    pc.addEventListener("connectionstatechange", () => {
      if (this.path === "direct" && pc.connectionState === "failed") {
        this.drop("the direct connection failed");
      }
    });

    await work.ready;
    mark("ice-gathered");
    if (this.ended) return;
    const offer = this.session.makeOffer(pc.localDescription.sdp, this.info);
    await work.socketOpen;
    if (this.ended) return;
    ws.send(concatBytes(Uint8Array.of(SIGNAL), offer));
    mark("offer-sent");
    this.hooks.status("connecting", "connecting: waiting for the owner to answer…");
    // A relay that swallows the offer or the answer must not leave us waiting forever.
    this.answerTimer = setTimeout(() => {
      if (this.session.state === SessionState.OFFER_SENT) this.drop("the owner did not answer");
    }, ANSWER_LIMIT_MS);
  }

  onSocketMessage(event) {
    if (this.ended) return;
    if (typeof event.data === "string") {
      this.onServerNotice(event.data);
      return;
    }
    const bytes = new Uint8Array(event.data);
    if (bytes.length === 0) return;
    const payload = bytes.slice(1);
    if (bytes[0] === SIGNAL) {
      this.onAnswer(payload).catch((err) => this.hooks.unexpected(err));
    } else if (bytes[0] === RELAY && this.path === "relay") {
      this.onStreamData(payload);
    } else if (bytes[0] === FILE && this.path === "relay") {
      const chunk = relayChunkOf(bytes);
      if (chunk !== null && this.session.files) this.hooks.fileChunk(chunk, true);
    } else {
      console.warn("p2pchat: ignored a relay message of type", bytes[0], "on path", this.path);
    }
  }

  onServerNotice(text) {
    let notice;
    try {
      notice = JSON.parse(text);
    } catch {
      console.warn("p2pchat: ignored a server message that is not JSON");
      return;
    }
    if (notice?.type === "error") {
      const message = typeof notice.message === "string" ? notice.message.slice(0, 300) : "unknown error";
      console.error("p2pchat: server error:", message);
      this.hooks.serverError(message);
    } else if (notice?.type === "ice") {
      // STUN/TURN for the groundwork (ice.js); it took the first one, later ones change nothing
    } else if (notice?.type === "owner_left" && this.path !== "direct") {
      this.drop("the owner left");
    }
  }

  onSocketClose(event) {
    if (this.ended) return;
    if (event.code === LINK_NOT_VALID || event.code === REFUSED) {
      this.end();
      this.hooks.linkInvalid(event.code === REFUSED ? event.reason : "");
      return;
    }
    if (event.code === WRONG_PASSWORD) {
      this.end();
      this.hooks.wrongPassword(event.reason);
      return;
    }
    if (event.code === HANDSHAKE_FAILED) {
      // The owner refused our offer as tampered, replayed, reflected or stale: someone
      // between us changed it. Say so and stop; a reload tries again.
      this.end();
      const code = /\(([a-z-]+)\)/.exec(event.reason ?? "")?.[1] ?? "error";
      this.hooks.handshakeError(Object.assign(new Error(event.reason || "handshake failed"), { code, byOwner: true }));
      this.hooks.stop();
      return;
    }
    // On the direct path the signaling socket is no longer needed (unless the channel
    // went first, on a password link that waited for this close: onDirectClosed).
    if (this.path !== "direct" || this.dc.readyState !== "open") this.drop("lost the connection to the server");
  }

  async onAnswer(envelope) {
    if (this.session.state !== SessionState.OFFER_SENT) {
      console.warn("p2pchat: ignored an answer in state", this.session.state);
      return;
    }
    let answer;
    try {
      answer = this.session.receiveAnswer(envelope);
      mark("answer");
    } catch (err) {
      // Refuse it and keep waiting: a genuine answer may still come.
      this.hooks.handshakeError(err);
      return;
    }
    this.hooks.peer(answer.info, this.session.kxPublicKey);
    this.hooks.status("connecting", "connecting: opening the encrypted channel…");
    let remoteOk = answer.info.path !== "relay"; // "relay": no direct path, don't wait
    if (remoteOk) {
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
        mark("remote-set");
      } catch (err) {
        remoteOk = false;
        console.warn("p2pchat: the owner's SDP was refused, using the relay:", err);
      }
    }
    const direct = remoteOk && (await channelOpen(this.dc, DIRECT_WAIT_MS));
    if (this.ended) return;
    mark("channel-open");
    const header = this.session.streamHeader();
    if (direct) {
      this.path = "direct";
      this.dc.send(header);
    } else {
      this.path = "relay";
      this.closePeerConnection(); // the whole session stays on the relay
      this.ws.send(concatBytes(Uint8Array.of(RELAY), header));
    }
    this.sendConfirmation();
    this.lastHeard = Date.now();
    this.openTimer = setTimeout(() => {
      if (this.session.state !== SessionState.OPEN) this.drop("the owner did not start the session");
    }, OPEN_LIMIT_MS);
    this.hooks.status("connecting", `connecting (${this.path}): waiting for the owner…`);
  }

  onDirectClosed() {
    if (this.path !== "direct") return;
    // A password link not confirmed yet: a wrong password closes the channel and the
    // socket (4401), in either order; wait for the socket's word (or the open timer).
    if (this.session.awaitingConfirmation && this.ws.readyState !== WebSocket.CLOSED) return;
    this.drop("the direct connection closed");
  }

  // A password link: a ping right behind our header, so the owner learns at once whether
  // our keys match (its pong, the first frame we can open, opens the session here).
  sendConfirmation() {
    const confirmation = this.session.confirmation();
    if (confirmation !== null) this.transmit(confirmation);
  }

  onChannelMessage(event) {
    if (this.ended || this.path !== "direct") return;
    if (typeof event.data === "string") {
      this.protocolFailure(new ProtocolError("text message on the data channel", "bad-stream"));
      return;
    }
    this.onStreamData(new Uint8Array(event.data));
  }

  /** Chunks count only with an owner that announced files, on the path in use. */
  get filesUsable() {
    if (!this.isOpen || !this.session.files) return false;
    if (this.path === "relay") return this.ws.readyState === WebSocket.OPEN;
    return this.path === "direct" && this.filesDc.readyState === "open";
  }

  onFilesMessage(event) {
    if (this.ended || this.path !== "direct" || !this.session.files) return;
    if (typeof event.data === "string") {
      console.warn("p2pchat: ignored a text message on the files channel");
      return;
    }
    this.hooks.fileChunk(new Uint8Array(event.data));
  }

  /** What files.js sends through while this attempt is open. */
  fileLink() {
    return {
      sendOffer: (payload, transferId) =>
        this.isOpen && this.transmit(this.session.sendFileOffer(payload, Date.now(), { messageId: transferId })),
      sendControl: (payload) => this.isOpen && this.transmit(this.session.sendFileControl(payload)),
      sendChunk: (data) => this.sendFileChunk(data),
    };
  }

  /** One chunk on the files channel (relay: the socket), once its buffer is under FILES_BUFFER_LOW. */
  async sendFileChunk(data) {
    if (this.path === "relay") {
      await sendRelayChunk(this.ws, data, { low: FILES_BUFFER_LOW, usable: () => this.isOpen });
      return;
    }
    const dc = this.filesDc;
    while (!this.ended && dc.readyState === "open" && dc.bufferedAmount > FILES_BUFFER_LOW) {
      await bufferedLow(dc);
    }
    if (this.ended || dc.readyState !== "open") throw new Error("the files channel closed");
    dc.send(data);
  }

  onStreamData(bytes) {
    this.lastHeard = Date.now();
    let events;
    try {
      events = this.session.receiveData(bytes);
    } catch (err) {
      this.protocolFailure(err);
      return;
    }
    for (const ev of events) {
      if (ev.type === "opened") {
        mark("opened");
        this.startKeepAlive();
        this.hooks.opened(this);
      } else if (ev.type === "message") {
        this.transmit(this.session.sendReceipt(ev.messageId));
        this.hooks.message(ev);
      } else if (ev.type === "group") {
        // Acknowledged as a TEXT is, refused or not: a refusal is final, a resend is no use.
        this.transmit(this.session.sendReceipt(ev.messageId));
        this.hooks.group(ev);
      } else if (ev.type === "file") {
        // An offer is acknowledged as a TEXT is (the owner's outbox keeps it until then).
        if (ev.kind === 8) this.transmit(this.session.sendReceipt(ev.messageId));
        this.hooks.file(ev);
      } else if (ev.type === "receipt") {
        this.hooks.receipt(ev.messageId);
      } else if (ev.type === "ping") {
        this.transmit(this.session.pong(ev.pingId));
      } else if (ev.type === "closed") {
        this.drop("the owner closed the chat");
      }
    }
    if (!this.ended && this.session.state === SessionState.OPEN && events.some((ev) => ev.type !== "opened")) {
      this.hooks.heard(this);
    }
  }

  /** Send one secret-stream message on the path in use. */
  transmit(data) {
    if (this.ended) return false;
    if (this.path === "direct" && this.dc.readyState === "open") {
      if (this.dc.bufferedAmount > SEND_BUFFER_LIMIT) throw new Error("the connection is congested");
      this.dc.send(data);
      return true;
    }
    if (this.path === "relay" && this.ws.readyState === WebSocket.OPEN) {
      if (this.ws.bufferedAmount > SEND_BUFFER_LIMIT) throw new Error("the connection is congested");
      this.ws.send(concatBytes(Uint8Array.of(RELAY), data));
      return true;
    }
    return false;
  }

  sendText(text, messageId, timestampMs) {
    return this.transmit(this.session.sendText(text, timestampMs, { messageId }).data);
  }

  sendGroupMessage(encoded, copyId, timestampMs) {
    return this.transmit(this.session.sendGroupMessage(encoded, timestampMs, { messageId: copyId }));
  }

  startKeepAlive() {
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        this.drop(`no sign of the owner for ${SILENCE_LIMIT_MS / 1000} s`);
        return;
      }
      try {
        this.transmit(this.session.ping().data);
      } catch (err) {
        this.drop(describeError(err));
      }
    }, PING_EVERY_MS);
  }

  protocolFailure(err) {
    console.error(`p2pchat: refused data from the owner (${err.code ?? "error"}):`, err.message);
    this.drop(describeError(err));
  }

  /** The path broke: clean up and let the page reconnect. */
  drop(reason) {
    if (this.ended) return;
    const wasOpen = this.session.state === SessionState.OPEN;
    this.end();
    this.hooks.dropped(reason, wasOpen);
  }

  /** Leave cleanly (page closing): our CLOSE frame, then tear down. */
  leave() {
    if (this.isOpen) {
      try {
        this.transmit(this.session.close());
      } catch {
        // best effort
      }
    }
    this.end();
  }

  end() {
    this.ended = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.openTimer);
    clearTimeout(this.answerTimer);
    clearTimeout(this.settleTimer);
    this.closePeerConnection();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }

  closePeerConnection() {
    try {
      this.filesDc?.close();
      this.dc?.close();
      this.pc?.close();
    } catch {
      // already closed
    }
  }
}

/** Resolves when the channel's buffer drops under its threshold, or it closes. */
function bufferedLow(dc) {
  return new Promise((resolve) => {
    function done() {
      dc.removeEventListener("bufferedamountlow", done);
      dc.removeEventListener("close", done);
      resolve();
    }
    dc.addEventListener("bufferedamountlow", done);
    dc.addEventListener("close", done);
  });
}

function channelOpen(dc, timeoutMs) {
  if (dc.readyState === "open") return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(ok) {
      clearTimeout(timer);
      dc.removeEventListener("open", onOpen);
      dc.removeEventListener("close", onClose);
      resolve(ok);
    }
    const onOpen = () => finish(true);
    const onClose = () => finish(false);
    dc.addEventListener("open", onOpen);
    dc.addEventListener("close", onClose);
  });
}

// -- the page: join, reconnect with backoff, chat ------------------------------------

class GuestPage {
  constructor(link) {
    this.link = link;
    this.guard = new ReplayGuard(); // one per page: answers from earlier attempts stay refused
    this.guestId = storage(`p2pchat:${link.roomId}:guest`);
    if (!this.guestId) {
      this.guestId = b64urlEncode(randomBytes(16));
      storage(`p2pchat:${link.roomId}:guest`, this.guestId);
    }
    this.ownerName = "owner";
    this.ownerKey = null; // the owner's Ed25519 key from its answer (our host in a group)
    // Per link and tab (sessionStorage): a reload comes back as the same group member.
    this.groupKeys = pageGroupKeys(link.roomId);
    this.group = null; // group.js state once a member list made us a member
    this.names = new Map(); // member key hex -> the name shown (names are not unique)
    this.leaveShown = new Set(); // members whose leave message was shown already
    this.attempt = null;
    this.failures = 0;
    this.retryTimer = null;
    this.stopped = false;
    this.password = null; // a password link's, normalised: this tab's reconnects reuse it
    this.attention = new Attention();
    this.files = new FileTransfers({
      onUpdate: (view) => this.fileViews.show(view),
      onNote: (text) => showError(text),
      onForget: (key) => this.fileViews.forget(key),
      randomBytes,
    });
    this.fileViews = new FileViews(this);
  }

  start() {
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    window.addEventListener("pagehide", () => this.attempt?.leave());
    this.fileViews.bind();
    window.addEventListener("pageshow", (event) => {
      // Back from the back/forward cache: the attempt was closed on pagehide.
      if (event.persisted && this.attempt?.ended && !this.retryTimer) this.connect();
    });
    const name = storage("p2pchat:name") ?? "";
    ui.name.value = name;
    // A password link after a reload: the password was in memory only, so ask again.
    if (storage(`p2pchat:${this.link.roomId}:joined`) && !this.link.password) {
      this.join(name);
      return;
    }
    // A new guest: ask the owner first, so a used-up link says so before asking a name.
    setStatus("connecting", "checking the link…");
    mark("probe-start");
    probeLink(this.link, this.guard, this.guestId).then((result) => this.probed(result));
  }

  probed(result) {
    const hooks = this.hooks();
    if (result?.code === LINK_NOT_VALID || result?.code === REFUSED) {
      hooks.linkInvalid(result.code === REFUSED ? result.reason : "");
      return;
    }
    if (result?.code === HANDSHAKE_FAILED) {
      const code = /\(([a-z-]+)\)/.exec(result.reason ?? "")?.[1] ?? "error";
      hooks.handshakeError(Object.assign(new Error(result.reason || "handshake failed"), { code, byOwner: true }));
      hooks.stop();
      return;
    }
    // Usable, or no clear answer (server busy, network): the Join attempt will tell.
    ui.join.hidden = false;
    setStatus("connecting", "ready to join");
    mark("join-shown");
    this.showPasswordField();
    ui.joinForm.addEventListener("submit", (event) => {
      event.preventDefault();
      mark("join-submit");
      this.attention.askPermission(); // a user gesture: the one moment to ask
      if (this.takePassword()) this.join(ui.name.value);
    });
    ui.name.focus();
  }

  // -- password links ("<secret>.pw"): the password lives in this object only ----------

  showPasswordField() {
    if (!this.link.password) return;
    ui.passwordRow.hidden = false;
    ui.password.required = true;
    ui.password.value = "";
  }

  /** The Join form's password, normalised; false (and a line why) if it is unusable. */
  takePassword() {
    if (!this.link.password) return true;
    try {
      this.password = normalizePassword(ui.password.value);
    } catch {
      showError("Type the password the owner gave you (1 to 128 bytes).");
      ui.password.focus();
      return false;
    }
    ui.password.value = "";
    return true;
  }

  /** 4401: wrong password (N tries left), or none: stop, ask again; Join tries once more. */
  wrongPassword(reason) {
    this.password = null;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = null;
    takeGroundwork(null)?.close();
    const why = typeof reason === "string" && reason ? reason.slice(0, 120) : "wrong password";
    showError(`The owner refused: ${why}.`);
    setStatus("failed", why);
    ui.message.disabled = true;
    ui.send.disabled = true;
    ui.join.hidden = false;
    this.showPasswordField();
    ui.password.focus();
  }

  join(rawName) {
    const name = clipUtf8(rawName.trim().replace(/[\p{Cc}\p{Cf}]/gu, ""), MAX_NAME_BYTES);
    storage("p2pchat:name", name || null);
    storage(`p2pchat:${this.link.roomId}:joined`, "1");
    this.name = name;
    this.stopped = false; // a Join after a wrong password starts again
    this.failures = 0;
    ui.join.hidden = true;
    ui.message.disabled = false;
    ui.send.disabled = false;
    ui.message.focus();
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.retryTimer = null;
    setStatus(this.failures ? "reconnecting" : "connecting", this.failures ? "reconnecting…" : "connecting…");
    const info = { guest: this.guestId };
    if (this.name) info.name = this.name;
    const attempt = new Attempt(
      this.link, this.guard, info, this.hooks(), this.groupKeys.publicKey, this.password,
    );
    this.attempt = attempt;
    attempt.start().catch((err) => {
      console.error("p2pchat: could not start a connection:", err);
      attempt.drop(err instanceof Error ? err.message : String(err));
    });
  }

  hooks() {
    return {
      status: (state, text) => setStatus(state, text),
      peer: (info, ourKxKey) => this.showPeer(info, ourKxKey),
      stop: () => {
        this.stopped = true;
        takeGroundwork(null)?.close();
      },
      handshakeError: (err) => {
        const text = err.byOwner ? describeRefusal(err) : describeError(err);
        console.error(`p2pchat: handshake refused (${err.code ?? "error"}): ${err.message}`);
        showError(text);
        setStatus("failed", `failed: ${err.code ?? "error"}`);
      },
      serverError: (message) => showError(`Server: ${message}`),
      linkInvalid: (reason) => {
        this.stopped = true;
        takeGroundwork(null)?.close();
        forgetFragment();
        storage(`p2pchat:${this.link.roomId}:joined`, null);
        const why = typeof reason === "string" && reason ? reason.slice(0, 120) : "";
        showError(
          why
            ? `The owner refused: ${why}.`
            : "This link is not valid (expired, used up or revoked): ask for a new one.",
        );
        setStatus("failed", "failed: link not valid");
        ui.message.disabled = true;
        ui.send.disabled = true;
      },
      wrongPassword: (reason) => this.wrongPassword(reason),
      opened: (attempt) => this.opened(attempt),
      message: (ev) => this.received(ev),
      group: (ev) => this.receivedGroup(ev),
      file: (ev) => this.files.frame(ev),
      fileChunk: (data, viaRelay) => this.files.chunk(data, viaRelay),
      heard: (attempt) => this.settle(attempt),
      receipt: (messageId) => this.delivered(messageId),
      dropped: (reason, wasOpen) => this.dropped(reason, wasOpen),
      unexpected: (err) => {
        console.error("p2pchat:", err);
        this.attempt?.drop(err instanceof Error ? err.message : String(err));
      },
    };
  }

  showPeer(info, ourKxKey) {
    this.ownerName = typeof info.name === "string" && info.name ? info.name : "owner";
    ui.peerName.textContent = this.ownerName;
    ui.peer.hidden = false;
    let ownerKey = null;
    try {
      ownerKey = typeof info.pk === "string" ? b64urlDecode(info.pk) : null;
    } catch {
      ownerKey = null;
    }
    this.ownerKey = ownerKey && ownerKey.length === 32 ? ownerKey : null;
    ui.safety.replaceChildren();
    if (ownerKey && ownerKey.length === 32) {
      const sn = safetyNumber(ownerKey, ourKxKey);
      for (const group of sn.groups) {
        const span = document.createElement("span");
        span.textContent = group;
        ui.safety.append(span);
      }
      ui.safety.setAttribute("aria-label", `Safety number: ${sn.digits}`);
    } else {
      ui.safety.textContent = "unavailable: the owner sent no public key";
    }
  }

  opened(attempt) {
    this.failures = 0;
    clearError();
    setStatus("connected", `connected (${attempt.path})`);
    ui.path.textContent = attempt.path;
    ui.path.dataset.path = attempt.path;
    ui.path.hidden = false;
    reportPath(attempt.pc, attempt.path); // <html data-path>: direct | turn | websocket
    // Files first: an owner that was receiving from us says where to go on at once.
    if (attempt.filesUsable) this.files.attach(attempt.fileLink());
    this.fileViews.setUsable(attempt.filesUsable);
    // An owner that hosts groups sends the member list first: wait for it (or anything
    // else from the owner, or a few seconds) before sending what waits, so nothing typed
    // in a group goes out as a 1:1 message.
    if (!attempt.session.groups || this.group !== null) {
      this.settle(attempt);
    } else {
      attempt.settleTimer = setTimeout(() => this.settle(attempt), GROUP_LIST_WAIT_MS);
    }
  }

  settle(attempt) {
    if (attempt !== this.attempt || attempt.settled) return;
    attempt.settled = true;
    clearTimeout(attempt.settleTimer);
    for (const item of unsent.values()) this.transmit(item);
  }

  // -- groups ------------------------------------------------------------------------

  receivedGroup(ev) {
    if (ev.kind === GROUP_LIST) {
      this.receivedList(ev.payload);
    } else if (ev.kind !== GROUP_MESSAGE) {
      return;
    } else if (this.group === null) {
      console.warn("p2pchat: ignored a group message (group-unknown): no member list yet");
    } else if (rememberIncoming(toHex(ev.messageId))) {
      this.receivedGroupMessage(ev.payload); // a frame id seen before is a resend
    }
  }

  receivedList(payload) {
    const myKey = this.groupKeys.publicKey;
    const first = this.group === null;
    const out = first ? joinAsGuest(payload, myKey, this.ownerKey) : receiveList(this.group, payload);
    if (out.verdict === Verdict.REFUSED) {
      console.warn(`p2pchat: ignored a member list (${out.code}): ${out.reason}`);
      return;
    }
    if (out.verdict !== Verdict.ADOPTED) return;
    const before = this.group;
    const oldNames = this.names;
    // Back after a reload with the same key: our chain goes on where it was (a restart
    // at seq 1 would be refused as a replay by everyone who holds it).
    const own = first ? savedOwnChain(this.link.roomId, out.state.members.groupId) : null;
    this.group = own ? withOwnChain(out.state, own.lastSeq, own.lastHash) : out.state;
    this.names = memberNames(out.state.members);
    if (first) {
      const n = out.state.members.members.length;
      systemNote(`You joined the group “${out.state.members.name}” (${n} members).`);
    } else {
      for (const m of out.removed) {
        const key = toHex(m.key);
        if (key === toHex(myKey)) systemNote("You were removed from the group.");
        else if (!this.leaveShown.delete(key)) systemNote(`${oldNames.get(key) ?? m.name} left the group.`);
      }
      for (const m of out.added) {
        if (toHex(m.key) === toHex(myKey)) systemNote("You were added to the group again.");
        else systemNote(`${this.names.get(toHex(m.key))} joined the group.`);
      }
      if (before.members.name !== out.state.members.name) {
        systemNote(`The group is now called “${out.state.members.name}”.`);
      }
    }
    this.showGroup();
    for (const released of out.released) this.showGroupOutcome(released);
  }

  receivedGroupMessage(payload) {
    const out = receiveMessage(this.group, payload);
    this.group = out.state;
    this.showGroupOutcome(out);
  }

  showGroupOutcome(out) {
    if (out.verdict === Verdict.REFUSED) {
      console.warn(`p2pchat: refused a group message (${out.code}): ${out.reason}`);
      return;
    }
    if (out.verdict !== Verdict.ACCEPTED) return; // held for a newer list, or a duplicate
    const msg = out.message;
    const key = toHex(msg.senderKey);
    const name = this.names.get(key) ?? "a member";
    if (out.missing > 0n) {
      const n = out.missing;
      systemNote(`${n} earlier message${n === 1n ? "" : "s"} from ${name} did not reach this page.`);
    }
    if (msg.kind === MessageKind.LEAVE) {
      this.leaveShown.add(key);
      systemNote(`${name} left the group.`);
      return;
    }
    appendEntry("in", name, msg.text, msg.timestampMs);
    this.attention.incoming(name);
  }

  showGroup() {
    const list = this.group.members;
    const myKey = toHex(this.groupKeys.publicKey);
    ui.group.hidden = false;
    ui.groupName.textContent = list.name;
    ui.peerLabel.textContent = "in the group through";
    this.attention.setTitle(`${list.name} · ${BASE_TITLE}`);
    const items = list.members.map((m) => {
      const li = document.createElement("li");
      const key = toHex(m.key);
      li.dataset.kind = m.kind === MemberKind.GUEST ? "guest" : "member";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = key === myKey ? "me" : this.names.get(key);
      li.append(name);
      const tags = [];
      if (key === myKey) tags.push("you");
      if (key === toHex(list.adminKey)) tags.push("admin");
      if (m.kind === MemberKind.GUEST) tags.push("guest");
      if (tags.length) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = ` (${tags.join(", ")})`;
        li.append(tag);
      }
      if (key === myKey) li.classList.add("you");
      return li;
    });
    ui.members.replaceChildren(...items);
    ui.members.setAttribute("aria-label", `Members (${items.length})`);
    const active = this.group.status === GroupStatus.ACTIVE;
    ui.groupState.hidden = active;
    ui.groupState.textContent = active ? "" : "You are no longer in this group.";
    ui.message.disabled = !active;
    ui.send.disabled = !active;
  }

  received(ev) {
    if (!rememberIncoming(toHex(ev.messageId))) return;
    appendEntry("in", this.ownerName, ev.text, ev.timestampMs);
    this.attention.incoming(this.ownerName);
  }

  delivered(messageId) {
    if (this.files.receipted(messageId)) return;
    const key = toHex(messageId);
    for (const [local, item] of unsent) {
      if (toHex(item.frameId) !== key) continue;
      unsent.delete(local);
      setReceipt(item.entry, "delivered", "delivered");
      return;
    }
  }

  dropped(reason, wasOpen) {
    this.files.attach(null);
    this.fileViews.setUsable(false);
    if (this.stopped) return;
    ui.path.hidden = true;
    if (wasOpen) {
      this.failures = 0;
      systemNote(`connection lost: ${reason}`);
    }
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    this.failures += 1;
    setStatus("reconnecting", `reconnecting in ${Math.ceil(jittered / 1000)} s: ${reason}`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), jittered);
  }

  send() {
    const text = ui.message.value;
    if (!text.trim()) return;
    mark("send");
    const limit = this.group ? MAX_GROUP_TEXT_BYTES : MAX_FRAME_BODY_BYTES;
    if (utf8Encode(text).length > limit) {
      showError(`That message is too long (the limit is ${limit} bytes).`);
      return;
    }
    if (this.group && this.group.status !== GroupStatus.ACTIVE) {
      showError("You are no longer in this group.");
      return;
    }
    if (unsent.size >= MAX_UNSENT) {
      showError("Too many messages are waiting to be delivered: wait for the connection to come back.");
      return;
    }
    const timestampMs = Date.now();
    const entry = appendEntry("out", this.group ? "me" : this.name || "you", text, timestampMs);
    const item = { frameId: randomBytes(16), text, timestampMs, entry, mode: null, group: null };
    unsent.set(nextUnsent++, item);
    ui.message.value = "";
    ui.log.scrollTop = ui.log.scrollHeight;
    if (!this.transmit(item)) setReceipt(entry, "waiting", "waiting for the connection…");
  }

  transmit(item) {
    const attempt = this.attempt;
    if (!attempt?.isOpen || !attempt.settled) return false;
    // Fixed at the first send: a resend is the same frame (the owner de-duplicates it).
    item.mode ??= this.group ? "group" : "text";
    try {
      if (item.mode === "group") {
        if (!attempt.session.groups) return false; // wait for an owner that takes them
        if (item.group === null && !this.signGroupMessage(item)) return false;
        if (!attempt.sendGroupMessage(item.group, item.frameId, item.timestampMs)) return false;
      } else if (!attempt.sendText(item.text, item.frameId, item.timestampMs)) {
        return false;
      }
    } catch (err) {
      console.error("p2pchat: could not send:", err);
      setReceipt(item.entry, "failed", "not sent");
      return false;
    }
    setReceipt(item.entry, "sent", "sent");
    return true;
  }

  /** Make `item` our next signed group message, its frame id the copy id for our host. */
  signGroupMessage(item) {
    const me = memberOf(this.group.members, this.groupKeys.publicKey);
    try {
      const sent = nextMessage(this.group, this.groupKeys, item.text, item.timestampMs);
      this.group = sent.state;
      saveOwnChain(this.link.roomId, sent.state);
      item.group = sent.encoded;
      item.frameId = copyIdOf(sent.messageId, me.hostKey);
    } catch (err) {
      console.error(`p2pchat: could not send to the group (${err.code ?? "error"}):`, err.message);
      for (const [local, other] of unsent) if (other === item) unsent.delete(local);
      setReceipt(item.entry, "failed", "not sent");
      return false;
    }
    const who = item.entry.querySelector(".who");
    if (who) who.textContent = "me";
    return true;
  }
}

// -- files: the button, drag-and-drop and one log entry per transfer ------------------

const FILE_STATE_TEXT = {
  [FileState.HASHING]: "reading",
  [FileState.OFFERED]: "offered",
  [FileState.SENDING]: "sending",
  [FileState.RECEIVING]: "receiving",
  [FileState.DONE]: "done",
  [FileState.FAILED]: "failed",
  [FileState.CANCELLED]: "cancelled",
  [FileState.DECLINED]: "declined",
};

function bytesText(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function durationText(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

class FileViews {
  constructor(page) {
    this.page = page;
    this.entries = new Map(); // transfer key -> {entry, ...elements}
    this.pending = new Map(); // key -> the newest view, drawn on the next frame
    this.frame = 0;
    this.usable = false;
  }

  bind() {
    ui.attach.addEventListener("click", () => ui.fileInput.click());
    ui.fileInput.addEventListener("change", () => {
      this.sendAll(ui.fileInput.files);
      ui.fileInput.value = "";
    });
    // Drop files onto the conversation (only while files can go).
    const accepts = (event) => this.usable && [...(event.dataTransfer?.types ?? [])].includes("Files");
    ui.log.addEventListener("dragover", (event) => {
      if (!accepts(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      ui.log.classList.add("drop");
    });
    ui.log.addEventListener("dragleave", () => ui.log.classList.remove("drop"));
    ui.log.addEventListener("drop", (event) => {
      ui.log.classList.remove("drop");
      if (!accepts(event)) return;
      event.preventDefault();
      this.sendAll(event.dataTransfer.files);
    });
  }

  setUsable(usable) {
    this.usable = usable;
    ui.attach.hidden = !usable;
  }

  sendAll(fileList) {
    for (const file of fileList ?? []) {
      this.page.files.sendFile(file).catch((err) => showError(err instanceof Error ? err.message : String(err)));
    }
  }

  show(view) {
    this.pending.set(view.key, view);
    if (!this.entries.has(view.key)) this.create(view); // at once: the log keeps its order
    this.frame ||= requestAnimationFrame(() => {
      this.frame = 0;
      for (const v of this.pending.values()) this.draw(v);
      this.pending.clear();
    });
  }

  forget(key) {
    const e = this.entries.get(key);
    if (e?.url) URL.revokeObjectURL(e.url);
    this.entries.delete(key);
  }

  create(view) {
    const incoming = view.direction === "in";
    const who = incoming ? this.page.ownerName : this.page.group ? "me" : this.page.name || "you";
    const entry = appendEntry(`file ${incoming ? "in" : "out"}`, who, `${view.name} (${bytesText(view.size)})`, Date.now());
    const progress = document.createElement("progress");
    progress.max = Math.max(view.size, 1);
    const status = document.createElement("span");
    status.className = "file-status";
    const actions = document.createElement("span");
    actions.className = "file-actions";
    entry.append(progress, status, actions);
    this.entries.set(view.key, { entry, progress, status, actions, url: null, state: null });
    if (incoming) this.page.attention.incoming(this.page.ownerName);
  }

  draw(view) {
    const e = this.entries.get(view.key);
    if (!e) return;
    e.entry.dataset.state = view.state;
    e.progress.value = view.done;
    const active = view.state === FileState.SENDING || view.state === FileState.RECEIVING || view.state === FileState.HASHING;
    e.progress.hidden = !active;
    const parts = [FILE_STATE_TEXT[view.state] ?? view.state];
    if (active) {
      parts.push(`${bytesText(view.done)} of ${bytesText(view.size)}`);
      if (view.rate > 0) parts.push(`${bytesText(Math.round(view.rate))}/s`);
      if (view.etaSeconds !== null && view.state !== FileState.HASHING) parts.push(`${durationText(view.etaSeconds)} left`);
    } else if (view.state === FileState.OFFERED) {
      parts.push(view.direction === "in" ? "accept to receive it" : "waiting for the owner to accept");
    }
    if (view.error) parts.push(view.error);
    e.status.textContent = parts.join(" · ");
    if (e.state === view.state) return; // the buttons change only with the state
    e.state = view.state;
    const key = view.key;
    const buttons = [];
    if (view.state === FileState.OFFERED && view.direction === "in") {
      buttons.push(button("Accept", () => this.page.files.accept(key)));
      buttons.push(button("Decline", () => this.page.files.decline(key)));
    } else if (active || view.state === FileState.OFFERED) {
      buttons.push(button("Cancel", () => this.page.files.cancel(key)));
    }
    if (view.state === FileState.DONE && view.blob) {
      e.url = URL.createObjectURL(view.blob);
      const link = document.createElement("a");
      link.href = e.url;
      link.download = view.name; // sanitized as the node does (file_names.js)
      link.textContent = `Save ${view.name}`;
      link.className = "file-save";
      buttons.push(link);
      if (view.preview) {
        const img = document.createElement("img");
        img.className = "file-preview";
        img.alt = view.name;
        img.addEventListener("error", () => img.remove()); // e.g. a CSP without blob: images
        img.src = e.url;
        buttons.push(img);
      }
    }
    e.actions.replaceChildren(...buttons);
  }
}

/** Each member's shown name; a name two members share gets a short key suffix. */
function memberNames(list) {
  const count = new Map();
  for (const m of list.members) count.set(m.name, (count.get(m.name) ?? 0) + 1);
  return new Map(
    list.members.map((m) => {
      const key = toHex(m.key);
      return [key, count.get(m.name) > 1 ? `${m.name} #${key.slice(0, 4)}` : m.name];
    }),
  );
}

function clipUtf8(text, maxBytes) {
  let out = "";
  let size = 0;
  for (const ch of text) {
    const n = utf8Encode(ch).length;
    if (size + n > maxBytes) break;
    out += ch;
    size += n;
  }
  return out;
}

function main() {
  if (!linkFragment) {
    showError("This page needs the whole invite link (the part after # is missing): ask for a new one.");
    setStatus("failed", "failed: no invite secret");
    return;
  }
  let link;
  try {
    link = linkFromFragment(linkFragment);
    if (pathRoomId !== null && link.roomId !== pathRoomId) {
      throw new Error("the link is damaged: ask for a new one");
    }
  } catch (err) {
    forgetFragment();
    takeGroundwork(null)?.close();
    console.error("p2pchat:", err.message);
    showError(`This invite link is damaged: ask for a new one.`);
    setStatus("failed", "failed: damaged link");
    return;
  }
  if (typeof RTCPeerConnection !== "function" || typeof WebSocket !== "function") {
    showError("This browser cannot join: it has no WebRTC or WebSocket support.");
    setStatus("failed", "failed: unsupported browser");
    return;
  }
  new GuestPage(link).start();
}

main();
