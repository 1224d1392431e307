// Groups for the browser guest: codecs and checks, pure functions over libsodium.js.
//
// Mirrors p2pchat/protocol/group_wire.py, group_members.py, group_messages.py and the
// receiving rules of group_state.py byte for byte (docs/protocol.md, "Groups"; pinned by
// tests/vectors/groups-v1.json). The guest's side of it (docs/guest-protocol.md,
// "Groups"): it joins with a first list from its host that lists its key as a guest,
// adopts newer lists, checks every message's signature and its sender's chain, and signs
// its own messages with a key it made for this page (never stored).
//
// seq is a BigInt (u64); timestamps are Numbers, as everywhere on the page.

import sodium from "./sodium.js";
import {
  LocalProtocolError,
  MAX_FRAME_BODY_BYTES,
  MESSAGE_ID_BYTES,
  RemoteProtocolError,
  bytesEqual,
  concatBytes,
  derive,
  toHex,
  utf8Decode,
  utf8Encode,
} from "./crypto.js";

export const GROUP_VERSION = 1;
export const GROUP_ID_BYTES = 16;
export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const HASH_BYTES = 32;
export const MAX_NAME_BYTES = 64;
export const MAX_LAN_MEMBERS = 32;
export const MAX_GUESTS = 8;
export const MAX_MEMBERS = MAX_LAN_MEMBERS + MAX_GUESTS;
export const MAX_EPOCH = 2 ** 32 - 1;
export const MAX_SEQ = 2n ** 64n - 1n;
export const MAX_PENDING_PER_GROUP = 256;
const LIST_HEAD_BYTES = 1 + GROUP_ID_BYTES + 4 + KEY_BYTES; // version, group id, epoch, admin
const MEMBER_MAX_BYTES = 1 + KEY_BYTES + 1 + MAX_NAME_BYTES + KEY_BYTES;
export const MAX_LIST_BYTES =
  LIST_HEAD_BYTES + 1 + MAX_NAME_BYTES + 1 + MAX_MEMBERS * MEMBER_MAX_BYTES + SIGNATURE_BYTES; // 5 383
export const MESSAGE_HEADER_BYTES = 104;
export const MAX_MESSAGE_BYTES = MAX_FRAME_BODY_BYTES; // one 1:1 frame body
export const MAX_TEXT_BYTES = MAX_MESSAGE_BYTES - MESSAGE_HEADER_BYTES - SIGNATURE_BYTES; // 65 342
export const ZERO_HASH = new Uint8Array(HASH_BYTES);

export const MemberKind = Object.freeze({ LAN: 1, GUEST: 2 });
export const MessageKind = Object.freeze({ TEXT: 1, LEAVE: 2 });

const MEMBERS_DOMAIN = utf8Encode("p2pchat/group-members/v1\0");
const MESSAGE_DOMAIN = utf8Encode("p2pchat/group-message/v1\0");
export const GROUP_PURPOSES = Object.freeze({
  MESSAGE_ID: utf8Encode("p2pchat/v1/group-message-id"),
  COPY_ID: utf8Encode("p2pchat/v1/group-copy-id"),
  CHAIN: utf8Encode("p2pchat/v1/group-chain"),
});

// -- errors --------------------------------------------------------------------------

/** A group object or input refused; `code` is the stable one of docs/protocol.md. */
export class GroupError extends RemoteProtocolError {
  constructor(message, code = "group-malformed") {
    super(message, code);
  }
}

/** We asked for something the group rules forbid (a bound, a removed group, ...). */
export class LocalGroupError extends LocalProtocolError {
  constructor(message, code = "group-local") {
    super(message);
    this.code = code;
  }
}

// -- names ---------------------------------------------------------------------------

// Controls, lone surrogates and bidi overrides (a name could display as another).
const BAD_NAME_CHARS = /[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]/u;

/** The UTF-8 bytes of a group or member name; throws Error if it breaks the rules. */
export function checkName(name, what) {
  if (typeof name !== "string" || BAD_NAME_CHARS.test(name)) {
    throw new Error(`${what} contains control characters`);
  }
  const raw = utf8Encode(name);
  if (raw.length === 0 || raw.length > MAX_NAME_BYTES) {
    throw new Error(`${what} must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8`);
  }
  return raw;
}

// -- reading untrusted bytes ---------------------------------------------------------

class Reader {
  constructor(data) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.offset = 0;
  }

  take(n, what) {
    if (n > this.data.length - this.offset) throw new GroupError(`ends inside the ${what}`, "group-truncated");
    const chunk = this.data.slice(this.offset, this.offset + n);
    this.offset += n;
    return chunk;
  }

  u8(what) {
    return this.take(1, what)[0];
  }

  u16(what) {
    this.take(2, what);
    return this.view.getUint16(this.offset - 2, false);
  }

  u32(what) {
    this.take(4, what);
    return this.view.getUint32(this.offset - 4, false);
  }

  u64(what) {
    this.take(8, what);
    return this.view.getBigUint64(this.offset - 8, false);
  }

  name(what) {
    const raw = this.take(this.u8(`${what} length`), what);
    let text;
    try {
      text = utf8Decode(raw);
    } catch {
      throw new GroupError(`${what} is not valid UTF-8`, "group-bad-name");
    }
    try {
      checkName(text, what);
    } catch (err) {
      throw new GroupError(err.message, "group-bad-name");
    }
    return text;
  }

  /** Where the signature starts: exactly 64 bytes must be left. */
  signedPartEnd() {
    const left = this.data.length - this.offset;
    if (left < SIGNATURE_BYTES) throw new GroupError("ends inside the signature", "group-truncated");
    if (left > SIGNATURE_BYTES) {
      throw new GroupError(`${left - SIGNATURE_BYTES} bytes after the last field`, "group-trailing");
    }
    return this.offset;
  }
}

/**
 * The start both group objects share: checks the size bound and the version, reads the
 * group id and the epoch. Returns {r, groupId, epoch}, `r` standing just after the epoch.
 * The epoch is not checked here: a list refuses 0 at once, a message after its layout.
 */
function readHead(data, what, maxBytes) {
  if (data.length > maxBytes) throw new GroupError(`${what} over ${maxBytes} bytes`, "group-too-large");
  const r = new Reader(data);
  const version = r.u8("version");
  if (version !== GROUP_VERSION) {
    throw new GroupError(`${what} version ${version} is not supported`, "group-version");
  }
  return { r, groupId: r.take(GROUP_ID_BYTES, "group id"), epoch: r.u32("epoch") };
}

function sign(domain, data, privateKey) {
  return sodium.crypto_sign_detached(concatBytes(domain, data), privateKey);
}

function verify(domain, data, signature, publicKey) {
  try {
    return sodium.crypto_sign_verify_detached(signature, concatBytes(domain, data), publicKey) === true;
  } catch {
    return false;
  }
}

function isEd25519Key(key) {
  try {
    sodium.crypto_sign_ed25519_pk_to_curve25519(key);
    return true;
  } catch {
    return false;
  }
}

function u32(value) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

function u64(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value), false);
  return out;
}

/** A fresh group key pair ({publicKey, privateKey}). */
export function newGroupKeys() {
  return sodium.crypto_sign_keypair();
}

/**
 * The group key pair of a 32-byte seed. The page keeps its seed for one link in its
 * tab's sessionStorage (as fragment.js keeps the link secret): a reload or a reconnect
 * is then the same member, which its host may keep listed while the page is away.
 */
export function groupKeysFromSeed(seed) {
  return sodium.crypto_sign_seed_keypair(seed);
}

/** `state` continuing our own chain from {lastSeq, lastHash} (kept across a reload). */
export function withOwnChain(state, lastSeq, lastHash) {
  return replace(state, { own: Object.freeze({ lastSeq, lastHash }) });
}

// -- member list ---------------------------------------------------------------------

/** {kind, key, name, hostKey|null} as the list's bytes. */
function encodeMember(m) {
  const raw = utf8Encode(m.name);
  const parts = [Uint8Array.of(m.kind), m.key, Uint8Array.of(raw.length), raw];
  if (m.kind === MemberKind.GUEST) parts.push(m.hostKey);
  return concatBytes(...parts);
}

function checkMembers(adminKey, members) {
  const hexes = members.map((m) => toHex(m.key));
  if (new Set(hexes).size !== hexes.length) throw new GroupError("a key is listed twice", "group-duplicate-key");
  const lan = new Set(members.filter((m) => m.kind === MemberKind.LAN).map((m) => toHex(m.key)));
  if (lan.size > MAX_LAN_MEMBERS) {
    throw new GroupError(`${lan.size} members; a group holds at most ${MAX_LAN_MEMBERS}`, "group-too-many-members");
  }
  const guests = members.length - lan.size;
  if (guests > MAX_GUESTS) {
    throw new GroupError(`${guests} guests; a group holds at most ${MAX_GUESTS}`, "group-too-many-guests");
  }
  if (!lan.has(toHex(adminKey))) {
    throw new GroupError("the admin is not a member of its list", "group-admin-not-member");
  }
  for (const m of members) {
    if (m.kind === MemberKind.GUEST && !lan.has(toHex(m.hostKey))) {
      throw new GroupError("a guest's host is not a member", "group-bad-host");
    }
  }
  for (const m of members) {
    if (!isEd25519Key(m.key)) throw new GroupError("a member key is not an Ed25519 key", "group-bad-key");
  }
}

/**
 * Parse, check and verify a signed member list. Returns
 * {groupId, epoch, adminKey, name, members: [{kind, key, name, hostKey}], signature, encoded};
 * throws GroupError (with its code) if refused.
 */
export function decodeMemberList(data) {
  const { r, groupId, epoch } = readHead(data, "member list", MAX_LIST_BYTES);
  if (epoch === 0) throw new GroupError("member list epoch 0 (epochs start at 1)", "group-bad-epoch");
  const adminKey = r.take(KEY_BYTES, "admin key");
  const name = r.name("group name");
  const count = r.u8("member count");
  if (count === 0) throw new GroupError("member list with no member", "group-bad-count");
  if (count > MAX_MEMBERS) throw new GroupError(`member list of ${count} members`, "group-too-many-members");
  const members = [];
  for (let i = 0; i < count; i++) {
    const kind = r.u8("member kind");
    if (kind !== MemberKind.LAN && kind !== MemberKind.GUEST) {
      throw new GroupError(`unknown member kind ${kind}`, "group-bad-member-kind");
    }
    const key = r.take(KEY_BYTES, "member key");
    const memberName = r.name("member name");
    const hostKey = kind === MemberKind.GUEST ? r.take(KEY_BYTES, "host key") : null;
    members.push(Object.freeze({ kind, key, name: memberName, hostKey }));
  }
  const end = r.signedPartEnd();
  checkMembers(adminKey, members);
  const signature = data.slice(end);
  if (!verify(MEMBERS_DOMAIN, data.subarray(0, end), signature, adminKey)) {
    throw new GroupError("member list signature does not verify", "group-bad-signature");
  }
  const frozen = Object.freeze(members);
  return Object.freeze({ groupId, epoch, adminKey, name, members: frozen, signature, encoded: data.slice() });
}

/** Sign a list (tests: the page never makes one); LocalGroupError for a broken rule. */
export function makeMemberList(groupId, epoch, name, members, admin) {
  const adminKey = admin.publicKey;
  try {
    if (groupId.length !== GROUP_ID_BYTES) throw new GroupError("malformed group id");
    if (!(Number.isInteger(epoch) && epoch >= 1 && epoch <= MAX_EPOCH)) {
      throw new GroupError(`epoch must be 1 to ${MAX_EPOCH}`, "group-bad-epoch");
    }
    for (const [text, what] of [[name, "group name"], ...members.map((m) => [m.name, "member name"])]) {
      try {
        checkName(text, what);
      } catch (err) {
        throw new GroupError(err.message, "group-bad-name");
      }
    }
    for (const m of members) {
      if (m.key.length !== KEY_BYTES || (m.kind === MemberKind.GUEST) !== (m.hostKey != null)) {
        throw new GroupError("malformed member");
      }
    }
    checkMembers(adminKey, members);
  } catch (err) {
    if (err instanceof GroupError) throw new LocalGroupError(err.message, err.code);
    throw err;
  }
  const raw = utf8Encode(name);
  const body = concatBytes(
    Uint8Array.of(GROUP_VERSION),
    groupId,
    u32(epoch),
    adminKey,
    Uint8Array.of(raw.length),
    raw,
    Uint8Array.of(members.length),
    ...members.map((m) => encodeMember({ hostKey: null, ...m })),
  );
  return decodeMemberList(concatBytes(body, sign(MEMBERS_DOMAIN, body, admin.privateKey)));
}

/** The member with this key, or null. */
export function memberOf(list, key) {
  return list.members.find((m) => bytesEqual(m.key, key)) ?? null;
}

// -- messages ------------------------------------------------------------------------

/** A message's id: the same on every member. */
export function messageIdOf(encoded) {
  return derive(GROUP_PURPOSES.MESSAGE_ID, encoded, MESSAGE_ID_BYTES);
}

/** The id of the copy for one member: its 1:1 frame's message id. */
export function copyIdOf(messageId, memberKey) {
  return derive(GROUP_PURPOSES.COPY_ID, concatBytes(messageId, memberKey), MESSAGE_ID_BYTES);
}

/** What the sender's next message carries as prevHash. */
export function chainHash(encoded) {
  return derive(GROUP_PURPOSES.CHAIN, encoded, HASH_BYTES);
}

/** The group a message or list claims (unverified), or null. */
export function groupIdOf(data) {
  if (data.length < 1 + GROUP_ID_BYTES || data[0] !== GROUP_VERSION) return null;
  return data.slice(1, 1 + GROUP_ID_BYTES);
}

function checkFields(epoch, seq, prevHash, kind, body) {
  if (!(epoch >= 1 && epoch <= MAX_EPOCH)) {
    throw new GroupError("group message epoch 0 (epochs start at 1)", "group-bad-epoch");
  }
  if (!(seq >= 1n && seq <= MAX_SEQ)) throw new GroupError("group message seq 0 (seqs start at 1)", "group-bad-seq");
  if (seq === 1n && !bytesEqual(prevHash, ZERO_HASH)) {
    throw new GroupError("first message of a chain with a previous hash", "group-bad-seq");
  }
  if (kind !== MessageKind.TEXT && kind !== MessageKind.LEAVE) {
    throw new GroupError(`unknown group message kind ${kind}`, "group-bad-kind");
  }
  if (body.length > MAX_TEXT_BYTES) {
    throw new GroupError(
      `group message text is ${body.length} bytes; the limit is ${MAX_TEXT_BYTES} bytes`,
      "group-too-large",
    );
  }
  if (kind === MessageKind.LEAVE && body.length) {
    throw new GroupError("a leave message carries no text", "group-bad-body");
  }
  try {
    return utf8Decode(body);
  } catch {
    throw new GroupError("group message text is not valid UTF-8", "group-bad-body");
  }
}

/**
 * Parse, check and verify a signed group message. Returns {groupId, epoch, senderKey,
 * seq (BigInt), prevHash, timestampMs, kind, body, text, signature, encoded, messageId};
 * throws GroupError (with its code) if refused.
 */
export function decodeGroupMessage(data) {
  const { r, groupId, epoch } = readHead(data, "group message", MAX_MESSAGE_BYTES);
  const senderKey = r.take(KEY_BYTES, "sender key");
  const seq = r.u64("seq");
  const prevHash = r.take(HASH_BYTES, "previous hash");
  // Above 2^53 ms the shown time loses precision; the bytes (and the id) stay exact.
  const timestampMs = Number(r.u64("timestamp"));
  const kind = r.u8("kind");
  const body = r.take(r.u16("body length"), "body");
  const end = r.signedPartEnd();
  const text = checkFields(epoch, seq, prevHash, kind, body);
  const signature = data.slice(end);
  if (!verify(MESSAGE_DOMAIN, data.subarray(0, end), signature, senderKey)) {
    throw new GroupError("group message signature does not verify", "group-bad-signature");
  }
  const encoded = data.slice();
  return Object.freeze({
    groupId, epoch, senderKey, seq, prevHash, timestampMs, kind, body, text, signature, encoded,
    messageId: messageIdOf(encoded),
  }); // prettier-ignore
}

/** Sign a message with `sender` ({publicKey, privateKey}); LocalGroupError for a bad value. */
export function makeGroupMessage(groupId, epoch, sender, seq, prevHash, timestampMs, kind, body) {
  seq = BigInt(seq);
  try {
    checkFields(epoch, seq, prevHash, kind, body);
    if (groupId.length !== GROUP_ID_BYTES || prevHash.length !== HASH_BYTES) {
      throw new GroupError("malformed group id or previous hash");
    }
    if (!(Number.isSafeInteger(timestampMs) && timestampMs >= 0)) {
      throw new GroupError("timestamp must be a non-negative integer (Unix milliseconds)");
    }
  } catch (err) {
    if (err instanceof GroupError) throw new LocalGroupError(err.message, err.code);
    throw err;
  }
  const head = concatBytes(
    Uint8Array.of(GROUP_VERSION),
    groupId,
    u32(epoch),
    sender.publicKey,
    u64(seq),
    prevHash,
    u64(timestampMs),
    Uint8Array.of(kind),
    Uint8Array.of(body.length >> 8, body.length & 0xff),
    body,
  );
  return decodeGroupMessage(concatBytes(head, sign(MESSAGE_DOMAIN, head, sender.privateKey)));
}

// -- the group as a guest holds it (group_state.py, the receiving side) ---------------

export const Status = Object.freeze({ ACTIVE: "active", LEFT: "left", REMOVED: "removed" });
export const Verdict = Object.freeze({
  ADOPTED: "adopted", // a newer list is now held
  DUPLICATE: "duplicate", // nothing changed
  ACCEPTED: "accepted", // show the message
  HELD: "held", // from a newer epoch: kept until its list arrives
  REFUSED: "refused",
});

/**
 * State: {members (a decoded list), joinedEpoch, myKey, own: {lastSeq, lastHash},
 * chains: Map(sender key hex -> {lastSeq, lastHash}), status, pending: [encoded]}.
 * Every function returns a new state and never mutates the one it got.
 */
function newState(members, myKey) {
  return Object.freeze({
    members,
    joinedEpoch: members.epoch,
    myKey,
    own: Object.freeze({ lastSeq: 0n, lastHash: ZERO_HASH }),
    chains: new Map(),
    status: Status.ACTIVE,
    pending: Object.freeze([]),
  });
}

function replace(state, changes) {
  return Object.freeze({ ...state, ...changes });
}

function refused(state, code, reason) {
  return { state, verdict: Verdict.REFUSED, code, reason };
}

/**
 * A first list, from the host that invited us (`hostKey`: its key from the answer, or
 * null if it gave none). Accepted only if it lists `myKey` as a guest of that host.
 * Returns {state|null, verdict, added, code, reason}.
 */
export function joinAsGuest(data, myKey, hostKey) {
  let list;
  try {
    list = decodeMemberList(data);
  } catch (err) {
    if (!(err instanceof GroupError)) throw err;
    return refused(null, err.code, err.message);
  }
  const me = memberOf(list, myKey);
  if (me === null || me.kind !== MemberKind.GUEST) {
    return refused(null, "group-join-not-listed", "a first list that does not list me as a guest");
  }
  if (hostKey !== null && !bytesEqual(me.hostKey, hostKey)) {
    return refused(null, "group-join-not-listed", "a first list that gives me another host");
  }
  const added = list.members.filter((m) => !bytesEqual(m.key, myKey));
  return { state: newState(list, myKey), verdict: Verdict.ADOPTED, added, removed: [], released: [] };
}

/** A later list for the group we hold: {state, verdict, added, removed, released, code, reason}. */
export function receiveList(state, data) {
  let list;
  try {
    list = decodeMemberList(data);
  } catch (err) {
    if (!(err instanceof GroupError)) throw err;
    return refused(state, err.code, err.message);
  }
  const held = state.members;
  if (!bytesEqual(list.groupId, held.groupId)) return refused(state, "group-unknown", "list for another group");
  if (!bytesEqual(list.adminKey, held.adminKey)) {
    return refused(state, "group-wrong-admin", "list not signed by the group's admin");
  }
  if (list.epoch < held.epoch) {
    return refused(state, "group-stale-list", `epoch ${list.epoch} is older than the held ${held.epoch}`);
  }
  if (list.epoch === held.epoch) {
    if (bytesEqual(list.encoded, held.encoded)) {
      return { state, verdict: Verdict.DUPLICATE, added: [], removed: [], released: [] };
    }
    return refused(state, "group-fork", `a different list for the held epoch ${list.epoch}`);
  }
  const oldKeys = new Set(held.members.map((m) => toHex(m.key)));
  const newKeys = new Set(list.members.map((m) => toHex(m.key)));
  const added = list.members.filter((m) => !oldKeys.has(toHex(m.key)));
  const removed = held.members.filter((m) => !newKeys.has(toHex(m.key)));
  const me = toHex(state.myKey);
  let { status, joinedEpoch } = state;
  if (status === Status.ACTIVE && !newKeys.has(me)) {
    status = Status.REMOVED;
  } else if (status !== Status.ACTIVE && newKeys.has(me) && !oldKeys.has(me)) {
    [status, joinedEpoch] = [Status.ACTIVE, list.epoch]; // added again
  }
  let adopted = replace(state, { members: list, status, joinedEpoch, pending: Object.freeze([]) });
  const released = [];
  for (const encoded of state.pending) {
    const msg = decodeGroupMessage(encoded); // held ones were verified already
    if (msg.epoch > list.epoch) {
      adopted = replace(adopted, { pending: Object.freeze([...adopted.pending, encoded]) });
      continue;
    }
    const outcome = checkMessage(adopted, msg, false);
    adopted = outcome.state;
    released.push(outcome);
  }
  return { state: adopted, verdict: Verdict.ADOPTED, added, removed, released };
}

/** A group message: {state, verdict, message, missing, code, reason}. Never throws for bad data. */
export function receiveMessage(state, data) {
  let msg;
  try {
    msg = decodeGroupMessage(data);
  } catch (err) {
    if (!(err instanceof GroupError)) throw err;
    return refused(state, err.code, err.message);
  }
  return checkMessage(state, msg, true);
}

function checkMessage(state, msg, hold) {
  if (!bytesEqual(msg.groupId, state.members.groupId)) {
    return refused(state, "group-unknown", "message for another group");
  }
  if (state.status !== Status.ACTIVE) return refused(state, "group-inactive", `I have ${state.status} this group`);
  if (bytesEqual(msg.senderKey, state.myKey)) {
    return refused(state, "group-from-self", "a message signed by my own key");
  }
  if (msg.epoch > state.members.epoch) {
    if (!hold) throw new Error("released messages are never from a newer epoch");
    if (state.pending.some((p) => bytesEqual(p, msg.encoded))) {
      return { state, verdict: Verdict.DUPLICATE, message: msg };
    }
    if (state.pending.length >= MAX_PENDING_PER_GROUP) {
      const reason = `${MAX_PENDING_PER_GROUP} messages already wait for a newer member list`;
      return refused(state, "group-pending-full", reason);
    }
    const pending = Object.freeze([...state.pending, msg.encoded]);
    return { state: replace(state, { pending }), verdict: Verdict.HELD, message: msg };
  }
  if (msg.epoch < state.joinedEpoch) {
    return refused(state, "group-before-join", `epoch ${msg.epoch} is before I joined (${state.joinedEpoch})`);
  }
  if (memberOf(state.members, msg.senderKey) === null) {
    return refused(state, "group-not-member", "the sender is not in the member list I hold");
  }
  const sender = toHex(msg.senderKey);
  const chain = state.chains.get(sender);
  let missing = 0n;
  if (chain !== undefined) {
    if (msg.seq <= chain.lastSeq) {
      return refused(state, "group-replay", `seq ${msg.seq} after seq ${chain.lastSeq} (replayed or reordered)`);
    }
    if (msg.seq === chain.lastSeq + 1n && !bytesEqual(msg.prevHash, chain.lastHash)) {
      return refused(state, "group-broken-chain", "the previous hash is not the last message's");
    }
    missing = msg.seq - chain.lastSeq - 1n;
  }
  const chains = new Map(state.chains);
  chains.set(sender, Object.freeze({ lastSeq: msg.seq, lastHash: chainHash(msg.encoded) }));
  return { state: replace(state, { chains }), verdict: Verdict.ACCEPTED, message: msg, missing };
}

/**
 * Sign our next text message (`me`: the page's {publicKey, privateKey}). Returns
 * {state, encoded, messageId}; LocalGroupError if we cannot send to this group.
 */
export function nextMessage(state, me, text, nowMs) {
  if (/\p{Cs}/u.test(text)) { // a lone surrogate: TextEncoder would turn it into U+FFFD
    throw new LocalGroupError("the message is not valid UTF-8", "group-bad-body");
  }
  if (!bytesEqual(me.publicKey, state.myKey)) throw new LocalGroupError("not this group's key for me");
  if (state.status !== Status.ACTIVE) {
    throw new LocalGroupError(`you have ${state.status} this group`, "group-inactive");
  }
  if (state.own.lastSeq >= MAX_SEQ) {
    throw new LocalGroupError("this group's message counter is exhausted", "group-bad-seq");
  }
  const seq = state.own.lastSeq + 1n;
  const msg = makeGroupMessage(
    state.members.groupId, state.members.epoch, me, seq, state.own.lastHash, nowMs, MessageKind.TEXT, utf8Encode(text),
  ); // prettier-ignore
  const own = Object.freeze({ lastSeq: seq, lastHash: chainHash(msg.encoded) });
  return { state: replace(state, { own }), encoded: msg.encoded, messageId: msg.messageId };
}
