// One chat session between two endpoints, sans I/O: mirrors p2pchat/protocol/session.py.
//
// The browser guest is the INITIATOR: it seals an OFFER (its SDP and an ephemeral
// crypto_kx key share) in a link envelope, opens the owner's ANSWER, derives rx/tx
// keys, sends its secret-stream header first, then chat frames. The RESPONDER role
// is here too (the owner's side), so tests can run both ends in JavaScript.
//
// The caller owns the I/O: it feeds envelopes and channel data in (with the current
// time, default Date.now()) and sends what comes back. Events are plain objects:
//   {type: "opened"}                                   both stream headers exchanged
//   {type: "message", messageId, timestampMs, text}    a TEXT frame
//   {type: "receipt", messageId}                       the peer got our TEXT
//   {type: "ping", pingId} / {type: "pong", pingId, timestampMs}
//   {type: "group", kind, messageId, timestampMs, payload}
//                                                      a GROUP_MESSAGE (6) or GROUP_LIST (7)
//                                                      frame; payload unchecked (group.js)
//   {type: "file", kind, messageId, timestampMs, payload}
//                                                      a FILE_OFFER (8) or FILE_CONTROL (9)
//                                                      frame; payload unchecked (file_wire.js)
//   {type: "closed"}                                   the peer ended its stream cleanly
//
// A password link (option `password`) adds CPace (cpace.js): the OFFER and ANSWER carry
// a share, the ISK is mixed into the rx/tx keys, and each side reports "opened" only
// once the peer's first sealed frame authenticated: the guest sends a ping right after
// its header (confirmation()), the owner's pong confirms back.

import {
  BATCH_CAPABILITY,
  Direction,
  EnvelopeError,
  EnvelopeKind,
  FILE_FRAME_TYPES,
  FrameType,
  GROUP_FRAME_TYPES,
  KxKeyPair,
  LocalProtocolError,
  MAX_FRAME_BODY_BYTES,
  RemoteProtocolError,
  SESSION_ID_BYTES,
  STREAM_HEADER_BYTES,
  StreamError,
  StreamReceiver,
  StreamSender,
  b64urlEncode,
  bytesEqual,
  decodeBatch,
  decodeFrame,
  decodeHandshake,
  encodeBatch,
  encodeFrame,
  encodeHandshake,
  newMessageId,
  oppositeDirection,
  randomBytes,
  utf8Encode,
} from "./crypto.js";
import { PakeError, cpaceIsk, cpaceStart, mixSessionKeys } from "./cpace.js";

// The handshake info entries for groups: we take frames 6 and 7; our group key.
export const GROUPS_CAPABILITY = Object.freeze(["groups", "1"]);
export const GROUP_KEY_INFO = "gk";
// We take frames 8 and 9 (and chunks on the files channel).
export const FILES_CAPABILITY = Object.freeze(["files", "1"]);

export const Role = Object.freeze({ INITIATOR: "INITIATOR", RESPONDER: "RESPONDER" });

export const SessionState = Object.freeze({
  NEW: "NEW",
  OFFER_SENT: "OFFER_SENT", // initiator, waiting for the answer
  OFFER_RECEIVED: "OFFER_RECEIVED", // responder, waiting for its own SDP to answer with
  KEYED: "KEYED", // keys derived; stream headers not both exchanged yet
  OPEN: "OPEN",
  CLOSED: "CLOSED",
});

const Input = Object.freeze({
  SEND_OFFER: "send offer",
  RECEIVE_OFFER: "receive offer",
  SEND_ANSWER: "send answer",
  RECEIVE_ANSWER: "receive answer",
  STREAMS_READY: "streams ready",
});

// Every legal transition, in one place (as in session.py's _TRANSITIONS).
const TRANSITIONS = new Map([
  [`${Role.INITIATOR}|${SessionState.NEW}|${Input.SEND_OFFER}`, SessionState.OFFER_SENT],
  [`${Role.INITIATOR}|${SessionState.OFFER_SENT}|${Input.RECEIVE_ANSWER}`, SessionState.KEYED],
  [`${Role.RESPONDER}|${SessionState.NEW}|${Input.RECEIVE_OFFER}`, SessionState.OFFER_RECEIVED],
  [`${Role.RESPONDER}|${SessionState.OFFER_RECEIVED}|${Input.SEND_ANSWER}`, SessionState.KEYED],
  [`${Role.INITIATOR}|${SessionState.KEYED}|${Input.STREAMS_READY}`, SessionState.OPEN],
  [`${Role.RESPONDER}|${SessionState.KEYED}|${Input.STREAMS_READY}`, SessionState.OPEN],
]);

export class Session {
  /**
   * @param {string} role Role.INITIATOR (the guest) or Role.RESPONDER
   * @param {{seal: Function, open: Function}} envelopes e.g. a LinkEnvelopes
   * @param {{sessionId?: Uint8Array, kx?: KxKeyPair, batch?: boolean, groups?: boolean,
   *   groupKey?: Uint8Array, files?: boolean}} [options] fixed values for tests; batch: false
   *   acts as a peer from before batches; groups: true announces group frames (off by
   *   default, as in session.py: a session that did not announce refuses them); groupKey:
   *   our Ed25519 group key, announced as info.gk (b64url); files: true announces file
   *   frames (the same rule)
   */
  constructor(
    role,
    envelopes,
    {
      sessionId, kx, batch = true, groups = false, groupKey = null, files = false,
      password = null, linkRoom = null, pakeScalar = null,
    } = {},
  ) {
    if (role !== Role.INITIATOR && role !== Role.RESPONDER) throw new TypeError("unknown role");
    this.role = role;
    this.state = SessionState.NEW;
    this.sessionId = sessionId ?? randomBytes(SESSION_ID_BYTES);
    this.peerInfo = {};
    this._envelopes = envelopes;
    this._kx = kx ?? new KxKeyPair();
    this._keys = null;
    this._pendingKeys = null; // responder: keys before the answer
    this._sender = null;
    this._receiver = null;
    this._batch = batch;
    this._groups = groups;
    this._groupKey = groupKey;
    this._files = files;
    // Password links: the normalised password (cpace.js normalizePassword) and the raw
    // room id (CPace's channel id); pakeScalar only for test vectors.
    this._password = password;
    this._linkRoom = linkRoom;
    this._pakeScalar = pakeScalar;
    this._pake = null;
    this._confirmed = password === null;
    this.passwordMissing = false; // responder: a password link's offer came without a share
  }

  /** A password link whose peer's first sealed frame has not authenticated yet. */
  get awaitingConfirmation() {
    return !this._confirmed;
  }

  /** Both ends announced file frames: only then may FILE_* frames (and chunks) flow. */
  get files() {
    return this._files && this.peerInfo[FILES_CAPABILITY[0]] === FILES_CAPABILITY[1];
  }

  /** Both ends announced group frames: only then may GROUP_* frames be sent. */
  get groups() {
    return this._groups && this.peerInfo[GROUPS_CAPABILITY[0]] === GROUPS_CAPABILITY[1];
  }

  /** Both ends announced batches: every channel message after the header is one. */
  get batching() {
    return this._batch && this.peerInfo[BATCH_CAPABILITY[0]] === BATCH_CAPABILITY[1];
  }

  /** Our ephemeral crypto_kx public key (the guest's half of the safety number). */
  get kxPublicKey() {
    return this._kx.publicKey;
  }

  get direction() {
    return this.role === Role.INITIATOR ? Direction.INITIATOR : Direction.RESPONDER;
  }

  // -- handshake ---------------------------------------------------------------------

  /** Initiator: the sealed OFFER envelope to send. */
  makeOffer(sdp, info = {}, nowMs = Date.now()) {
    this._advance(Input.SEND_OFFER);
    if (this._password !== null) this._pake = this._startPake();
    return this._seal(EnvelopeKind.OFFER, sdp, info, nowMs);
  }

  /** Responder: open an OFFER envelope; returns {sessionId, sdp, info}. */
  receiveOffer(data, nowMs = Date.now()) {
    if (this.role !== Role.RESPONDER || this.state !== SessionState.NEW) {
      throw new LocalProtocolError(`cannot receive an offer as ${this._describe()}`);
    }
    const opened = this._openEnvelope(data, nowMs);
    const body = this._handshakeBody(opened, EnvelopeKind.OFFER);
    let keys = this._deriveKeys(() => this._kx.serverKeys(body.kxPublic));
    if (body.pake !== null && this._password === null) {
      throw new RemoteProtocolError("a password share on a link without a password", "bad-handshake");
    }
    this.sessionId = opened.sessionId;
    if (this._password !== null && body.pake === null) {
      this.passwordMissing = true;
    } else if (body.pake !== null) {
      this._pake = this._startPake();
      keys = mixSessionKeys(keys, cpaceIsk(this._pake, body.pake, { sid: this.sessionId, initiator: false }));
    }
    this._advance(Input.RECEIVE_OFFER);
    this._pendingKeys = keys;
    this.peerInfo = body.info;
    return { sessionId: opened.sessionId, sdp: body.sdp, info: body.info, kxPublic: body.kxPublic };
  }

  /** Responder: the sealed ANSWER envelope to send. */
  makeAnswer(sdp, info = {}, nowMs = Date.now()) {
    if (this.passwordMissing) throw new LocalProtocolError("this link needs a password: the offer had no share");
    this._advance(Input.SEND_ANSWER);
    this._keys = this._pendingKeys;
    return this._seal(EnvelopeKind.ANSWER, sdp, info, nowMs);
  }

  /** Initiator: open the ANSWER envelope; returns {sdp, info}. */
  receiveAnswer(data, nowMs = Date.now()) {
    if (this.role !== Role.INITIATOR || this.state !== SessionState.OFFER_SENT) {
      throw new LocalProtocolError(`cannot receive an answer as ${this._describe()}`);
    }
    const opened = this._openEnvelope(data, nowMs);
    const body = this._handshakeBody(opened, EnvelopeKind.ANSWER);
    if (!bytesEqual(opened.sessionId, this.sessionId)) {
      throw new RemoteProtocolError("answer belongs to another session", "wrong-session");
    }
    let keys = this._deriveKeys(() => this._kx.clientKeys(body.kxPublic));
    if (this._pake === null) {
      if (body.pake !== null) {
        throw new RemoteProtocolError("a password share on a link without a password", "bad-handshake");
      }
    } else if (body.pake === null) {
      throw new PakeError("the answer has no password share");
    } else {
      keys = mixSessionKeys(keys, cpaceIsk(this._pake, body.pake, { sid: this.sessionId, initiator: true }));
    }
    this._keys = keys;
    this._advance(Input.RECEIVE_ANSWER);
    this.peerInfo = body.info;
    return { sdp: body.sdp, info: body.info, kxPublic: body.kxPublic };
  }

  // -- the channel -------------------------------------------------------------------

  /** The first message to send on the path once it is up (idempotent). */
  streamHeader() {
    if (this._sender !== null) return this._sender.header;
    if (this.state !== SessionState.KEYED || this._keys === null) {
      throw new LocalProtocolError(`no stream to start as ${this._describe()}`);
    }
    this._sender = new StreamSender(this._keys.tx);
    // If the peer's header came first, this completes the session (check `state`);
    // otherwise receiveData reports {type: "opened"}.
    this._maybeOpen();
    return this._sender.header;
  }

  /** Feed one channel message (Uint8Array); returns the events it means. */
  receiveData(data, nowMs = Date.now()) {
    void nowMs; // frame timestamps are not checked (as in Python)
    if (this.state === SessionState.CLOSED) {
      throw new RemoteProtocolError("data after the session closed", "closed");
    }
    if (this._keys === null) {
      throw new LocalProtocolError(`channel data before the handshake as ${this._describe()}`);
    }
    if (this._receiver === null) return this._receiveHeader(data);
    if (!this.batching) return this._receiveSealed(data, true);
    const items = decodeBatch(data);
    return items.flatMap((item, index) => this._receiveSealed(item, index === items.length - 1));
  }

  /** Encrypt a text message; returns {messageId, data}. Pass messageId to resend. */
  sendText(text, nowMs = Date.now(), { messageId } = {}) {
    const body = utf8Encode(text);
    if (body.length > MAX_FRAME_BODY_BYTES) {
      throw new LocalProtocolError(
        `message is ${body.length} bytes; the limit is ${MAX_FRAME_BODY_BYTES} bytes`,
      );
    }
    const id = messageId ?? newMessageId();
    return { messageId: id, data: this._send({ type: FrameType.TEXT, messageId: id, timestampMs: nowMs, body }) };
  }

  /** One copy of an encoded group message; `messageId`: its copy id (group.js copyIdOf). */
  sendGroupMessage(payload, nowMs = Date.now(), { messageId }) {
    return this._sendGroup(FrameType.GROUP_MESSAGE, payload, nowMs, messageId);
  }

  /** An encoded member list (the owner's side; here for tests). */
  sendGroupList(payload, nowMs = Date.now(), { messageId }) {
    return this._sendGroup(FrameType.GROUP_LIST, payload, nowMs, messageId);
  }

  /** An encoded FileOffer; `messageId`: the transfer id (a resend is the same frame). */
  sendFileOffer(payload, nowMs = Date.now(), { messageId }) {
    return this._sendFile(FrameType.FILE_OFFER, payload, nowMs, messageId);
  }

  /** An encoded FileControl, under a fresh id: never queued, never receipted. */
  sendFileControl(payload, nowMs = Date.now()) {
    return this._sendFile(FrameType.FILE_CONTROL, payload, nowMs, newMessageId());
  }

  sendReceipt(messageId, nowMs = Date.now()) {
    return this._send({ type: FrameType.RECEIPT, messageId, timestampMs: nowMs });
  }

  /** Initiator on a password link: a ping to send right after the stream header, so the
   * owner learns at once whether our keys (our password) match; null otherwise. */
  confirmation(nowMs = Date.now()) {
    if (this.role !== Role.INITIATOR || this._pake === null) return null;
    return this.ping(nowMs).data;
  }

  /** Returns {pingId, data}. */
  ping(nowMs = Date.now()) {
    const pingId = newMessageId();
    return { pingId, data: this._send({ type: FrameType.PING, messageId: pingId, timestampMs: nowMs }) };
  }

  pong(pingId, nowMs = Date.now()) {
    return this._send({ type: FrameType.PONG, messageId: pingId, timestampMs: nowMs });
  }

  /** The last frame of our stream (TAG_FINAL); the session is closed after it. */
  close(nowMs = Date.now()) {
    const data = this._send(
      { type: FrameType.CLOSE, messageId: new Uint8Array(16), timestampMs: nowMs },
      { final: true },
    );
    this.state = SessionState.CLOSED;
    return data;
  }

  // -- private -----------------------------------------------------------------------

  _receiveHeader(data) {
    if (!(data instanceof Uint8Array) || data.length !== STREAM_HEADER_BYTES) {
      throw new RemoteProtocolError("first channel message is not a stream header", "bad-stream");
    }
    this._receiver = new StreamReceiver(this._keys.rx, data);
    return this._maybeOpen();
  }

  _receiveSealed(data, last) {
    let opened;
    try {
      opened = this._receiver.open(data);
    } catch (exc) {
      if (exc instanceof StreamError) throw new RemoteProtocolError(exc.message, "bad-stream");
      throw exc;
    }
    const frame = decodeFrame(opened.plaintext);
    if (GROUP_FRAME_TYPES.has(frame.type) && !this._groups) {
      throw new RemoteProtocolError(`unknown frame type ${frame.type}`, "bad-frame"); // as before groups
    }
    if (FILE_FRAME_TYPES.has(frame.type) && !this._files) {
      throw new RemoteProtocolError(`unknown frame type ${frame.type}`, "bad-frame"); // as before files
    }
    if (opened.final !== (frame.type === FrameType.CLOSE)) {
      throw new RemoteProtocolError(
        "only a close frame may end the stream, and it must end it",
        "bad-frame",
      );
    }
    const confirmed = this._confirm();
    if (opened.final) {
      if (!last) throw new RemoteProtocolError("messages after the close frame in a batch", "bad-batch");
      this.state = SessionState.CLOSED;
      return [...confirmed, { type: "closed" }];
    }
    return [...confirmed, frameEvent(frame)];
  }

  // A sealed frame authenticated: on a password link, the password matched.
  _confirm() {
    if (this._confirmed) return [];
    this._confirmed = true;
    return this._maybeOpen();
  }

  _startPake() {
    return cpaceStart(this._password, this._linkRoom, this.sessionId, this._pakeScalar);
  }

  _sendGroup(type, payload, nowMs, messageId) {
    if (!this.groups) throw new LocalProtocolError("the peer did not announce group frames (groups=1)");
    if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > MAX_FRAME_BODY_BYTES) {
      throw new LocalProtocolError(`group payload must be 1 to ${MAX_FRAME_BODY_BYTES} bytes`);
    }
    return this._send({ type, messageId, timestampMs: nowMs, body: payload });
  }

  _sendFile(type, payload, nowMs, messageId) {
    if (!this.files) throw new LocalProtocolError("the peer did not announce file frames (files=1)");
    if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > MAX_FRAME_BODY_BYTES) {
      throw new LocalProtocolError(`file payload must be 1 to ${MAX_FRAME_BODY_BYTES} bytes`);
    }
    return this._send({ type, messageId, timestampMs: nowMs, body: payload });
  }

  _maybeOpen() {
    if (this._sender !== null && this._receiver !== null && this._confirmed) {
      this._advance(Input.STREAMS_READY);
      return [{ type: "opened" }];
    }
    return [];
  }

  _send(frame, { final = false } = {}) {
    // Sending may start as soon as our own header is out: the path is ordered, so
    // the peer reads our header before our first frame.
    if (
      this._sender === null ||
      (this.state !== SessionState.KEYED && this.state !== SessionState.OPEN)
    ) {
      throw new LocalProtocolError(`cannot send as ${this._describe()}`);
    }
    const sealed = this._sender.seal(encodeFrame(frame), { final });
    // One message per batch: the page sends a handful a second, the owner's node batches.
    return this.batching ? encodeBatch([sealed]) : sealed;
  }

  _seal(kind, sdp, info, nowMs) {
    if (this._batch) info = { ...info, [BATCH_CAPABILITY[0]]: BATCH_CAPABILITY[1] };
    if (this._groups) info = { ...info, [GROUPS_CAPABILITY[0]]: GROUPS_CAPABILITY[1] };
    if (this._files) info = { ...info, [FILES_CAPABILITY[0]]: FILES_CAPABILITY[1] };
    if (this._groupKey) info = { ...info, [GROUP_KEY_INFO]: b64urlEncode(this._groupKey) };
    const pake = this._pake === null ? null : this._pake.share;
    const body = encodeHandshake({ sdp, kxPublic: this._kx.publicKey, info, pake });
    return this._envelopes.seal(kind, this.direction, this.sessionId, body, nowMs);
  }

  _openEnvelope(data, nowMs) {
    try {
      return this._envelopes.open(data, oppositeDirection(this.direction), nowMs);
    } catch (exc) {
      if (exc instanceof EnvelopeError) throw new RemoteProtocolError(exc.message, exc.code);
      throw exc;
    }
  }

  _handshakeBody(opened, kind) {
    if (opened.kind !== kind) {
      const name = kind === EnvelopeKind.OFFER ? "offer" : "answer";
      throw new RemoteProtocolError(
        `expected an ${name} envelope, got kind ${opened.kind}`,
        "wrong-kind",
      );
    }
    if (opened.direction === this.direction) {
      throw new RemoteProtocolError("envelope goes the wrong way (reflected)", "reflected");
    }
    return decodeHandshake(opened.body);
  }

  _deriveKeys(derive) {
    try {
      return derive();
    } catch (exc) {
      if (exc instanceof StreamError) throw new RemoteProtocolError(exc.message, "bad-handshake");
      throw exc;
    }
  }

  _advance(input) {
    const next = TRANSITIONS.get(`${this.role}|${this.state}|${input}`);
    if (next === undefined) throw new LocalProtocolError(`cannot ${input} as ${this._describe()}`);
    this.state = next;
  }

  _describe() {
    return `${this.role.toLowerCase()} in state ${this.state}`;
  }
}

function frameEvent(frame) {
  switch (frame.type) {
    case FrameType.TEXT:
      return { type: "message", messageId: frame.messageId, timestampMs: frame.timestampMs, text: frame.text };
    case FrameType.RECEIPT:
      return { type: "receipt", messageId: frame.messageId };
    case FrameType.PING:
      return { type: "ping", pingId: frame.messageId };
    case FrameType.PONG:
      return { type: "pong", pingId: frame.messageId, timestampMs: frame.timestampMs };
    case FrameType.GROUP_MESSAGE:
    case FrameType.GROUP_LIST:
      return {
        type: "group",
        kind: frame.type,
        messageId: frame.messageId,
        timestampMs: frame.timestampMs,
        payload: frame.body,
      };
    case FrameType.FILE_OFFER:
    case FrameType.FILE_CONTROL:
      return {
        type: "file",
        kind: frame.type,
        messageId: frame.messageId,
        timestampMs: frame.timestampMs,
        payload: frame.body,
      };
    default:
      throw new Error(`unhandled frame type ${frame.type}`); // CLOSE is handled by the caller
  }
}
