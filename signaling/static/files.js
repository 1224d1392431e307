// The page's file transfers with the owner, without the DOM: what to send when, what
// each transfer shows. app.js draws the views and gives a `link` per open session.
//
// Offers and controls go in the secret stream (chat frames 8/9), chunks on the files
// channel (docs/protocol.md "Files"). The page keeps what it receives in memory (a
// browser tab has no downloads folder) and offers it as a download link once the whole
// hash matched; so it takes files up to MAX_RECEIVE_BYTES, MAX_HELD_BYTES in all.
// Sending reads the File one block at a time (File.slice), so any size is fine.
//
// A link: {sendOffer(payload, transferId), sendControl(payload)} -> false when the
// session cannot send now, and async sendChunk(bytes) (waits for the files channel's
// buffer; throws when the channel is gone). A new session (after a reconnect) gets
// every unanswered offer again, and ACCEPT(blocks kept) for every file coming in: the
// owner's node resumes from there (the resume rule).

import { toHex } from "./crypto.js";
import { FileHasher } from "./file_crypto.js";
import { sanitizeFileName } from "./file_names.js";
import { IncomingTransfer, Outcome, OutgoingTransfer } from "./file_transfer.js";
import {
  BLOCK_BYTES,
  ControlKind,
  FileControl,
  FileOffer,
  MAX_FILE_BYTES,
  MAX_MIME_BYTES,
  MAX_NAME_BYTES,
  MAX_REASON_BYTES,
  TRANSFER_ID_BYTES,
  decodeChunkHeader,
  decodeControl,
  decodeOffer,
} from "./file_wire.js";

export const MAX_RECEIVE_BYTES = 512 * 1024 * 1024; // one file held in the tab
export const MAX_HELD_BYTES = 1024 * 1024 * 1024; // every file held in the tab
export const MAX_TRANSFERS = 64; // known to the page at once (finished ones are forgotten first)
const RATE_WINDOW_MS = 5000; // the rate shown: bytes over the last few seconds
// A relay (the signaling server on the relay path) can alter a chunk but not forge one:
// such a chunk resumes the transfer from the last verified block (ACCEPT again) instead
// of failing it, up to this many with no block verified in between (as the node does).
export const RELAY_DAMAGE_RESUMES = 32;
const RELAY_DAMAGE_CODES = new Set(["file-bad-ciphertext", "file-bad-chunk", "file-out-of-window", "file-malformed"]);

// Images the page previews inline (an <img> of a blob: URL); anything else is a download.
const PREVIEW_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"]);

export const State = Object.freeze({
  HASHING: "hashing", // out: reading the file for its hash
  OFFERED: "offered", // out: waiting for the owner's answer; in: waiting for ours
  SENDING: "sending",
  RECEIVING: "receiving",
  DONE: "done",
  FAILED: "failed",
  CANCELLED: "cancelled",
  DECLINED: "declined",
});
const FINISHED = new Set([State.DONE, State.FAILED, State.CANCELLED, State.DECLINED]);

/** A reason on the wire: clipped to its bound, no control characters. */
function wireReason(text) {
  let out = "";
  for (const ch of text.replace(/[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]/gu, "")) {
    if (new TextEncoder().encode(out + ch).length > MAX_REASON_BYTES) break;
    out += ch;
  }
  return out;
}

/** A name for the offer: the file's own, clipped to 255 bytes; "file" if it has none. */
function offerName(name) {
  let out = "";
  for (const ch of (name || "file").replace(/\p{Cs}/gu, "")) {
    if (new TextEncoder().encode(out + ch).length > MAX_NAME_BYTES) break;
    out += ch;
  }
  return out || "file";
}

function offerMime(type) {
  return typeof type === "string" && type.length <= MAX_MIME_BYTES && /^[ -~]*$/.test(type) ? type : "";
}

export class FileTransfers {
  /**
   * @param {{onUpdate: Function, onNote?: Function, now?: Function, randomBytes: Function}} hooks
   *   onUpdate(view) after every change of a transfer; onNote(text) for one-line notices;
   *   onForget(key) when a finished transfer is dropped to make room
   */
  constructor({ onUpdate, onNote = () => {}, onForget = () => {}, now = () => Date.now(), randomBytes }) {
    this._onUpdate = onUpdate;
    this._onForget = onForget;
    this._onNote = onNote;
    this._now = now;
    this._randomBytes = randomBytes;
    this._transfers = new Map(); // transfer id hex -> transfer record
    this._link = null;
  }

  /** A session that takes files opened (or null: it closed). */
  attach(link) {
    this._link = link;
    if (link === null) return;
    for (const t of this._transfers.values()) {
      if (t.direction === "out" && t.state !== State.HASHING && !FINISHED.has(t.state)) {
        // Unanswered offers again (the owner de-duplicates by transfer id); a transfer
        // under way waits for the owner's ACCEPT, which every session open brings.
        t.pumping = false;
        if (!t.receipted) link.sendOffer(t.offer.encode(), t.id);
        if (t.pendingStart) {
          // Its ACCEPT came before this link: go on from there.
          t.pendingStart = false;
          this._pump(t);
        }
      } else if (t.direction === "in" && t.state === State.RECEIVING) {
        link.sendControl(t.inc.accept().encode());
      }
    }
  }

  get transfers() {
    return [...this._transfers.values()].map((t) => this._view(t));
  }

  // -- sending -----------------------------------------------------------------------

  /** Offer a File (or Blob with a name): hash it block by block, then offer it. */
  async sendFile(file) {
    if (file.size > MAX_FILE_BYTES) throw new Error("That file is too big to send (the limit is 1 TiB).");
    if (!this._makeRoom()) throw new Error("Too many files at once: wait for some to finish.");
    const id = this._randomBytes(TRANSFER_ID_BYTES);
    const t = {
      id,
      key: toHex(id),
      direction: "out",
      file,
      name: offerName(file.name),
      mime: offerMime(file.type),
      size: file.size,
      state: State.HASHING,
      done: 0,
      samples: [],
      receipted: false,
      pumping: false,
      pendingStart: false,
      offer: null,
      out: null,
      error: "",
    };
    this._transfers.set(t.key, t);
    this._update(t);
    const hasher = new FileHasher();
    try {
      for (let at = 0; at < file.size && t.state === State.HASHING; at += BLOCK_BYTES) {
        hasher.update(await readSlice(file, at, Math.min(file.size, at + BLOCK_BYTES)));
        t.done = Math.min(file.size, at + BLOCK_BYTES);
        this._update(t);
      }
    } catch (err) {
      return this._finish(t, State.FAILED, `could not read the file: ${err?.message ?? err}`);
    }
    if (t.state !== State.HASHING) return undefined; // cancelled while hashing
    const fileKey = this._randomBytes(32);
    t.offer = new FileOffer({
      size: file.size,
      blockBytes: BLOCK_BYTES,
      fileHash: hasher.digest(),
      fileKey,
      mime: t.mime,
      name: t.name,
    });
    t.out = new OutgoingTransfer(id, fileKey, file.size, BLOCK_BYTES);
    t.state = State.OFFERED;
    t.done = 0;
    this._update(t);
    this._link?.sendOffer(t.offer.encode(), id);
    return undefined;
  }

  /** A RECEIPT: true when it answers one of our offers. */
  receipted(messageId) {
    const t = this._transfers.get(toHex(messageId));
    if (!t || t.direction !== "out") return false;
    t.receipted = true;
    this._update(t);
    return true;
  }

  async _pump(t) {
    if (this._link === null) {
      t.pendingStart = true;
      return;
    }
    if (t.pumping) return;
    t.pumping = true;
    const link = this._link;
    try {
      for (;;) {
        const blocks = t.out.blocksToSend();
        if (!blocks.length || t.state !== State.SENDING || this._link !== link) break;
        for (const index of blocks) {
          const start = index * t.out.blockBytes;
          const data = await readSlice(t.file, start, start + t.out.blockLen(index));
          // Stopped, or another session: the owner's next ACCEPT says where to go on.
          if (t.state !== State.SENDING || this._link !== link) return;
          for (const chunk of t.out.chunksOf(index, data)) await link.sendChunk(chunk);
        }
      }
    } catch (err) {
      if (t.state === State.SENDING && this._link === link && err?.name === "NotReadableError") {
        this._cancel(t, "the file can no longer be read");
      } else {
        console.warn("p2pchat: file sending stopped:", err?.message ?? err);
      }
    } finally {
      if (this._link === link) t.pumping = false;
    }
  }

  // -- receiving ---------------------------------------------------------------------

  /** A FILE_OFFER (8) or FILE_CONTROL (9) frame's event from the session. */
  frame(ev) {
    if (ev.kind === 8) this._offered(ev.messageId, ev.payload);
    else if (ev.kind === 9) this._control(ev.payload);
  }

  _offered(transferId, payload) {
    const key = toHex(transferId);
    if (this._transfers.has(key)) return; // a resend: receipted already, nothing new
    let offer;
    try {
      offer = decodeOffer(payload);
    } catch (err) {
      console.warn(`p2pchat: refused a file offer (${err.code ?? "error"}): ${err.message}`);
      return;
    }
    if (!this._makeRoom()) {
      const control = new FileControl({ kind: ControlKind.DECLINE, transferId, reason: "too many files at once" });
      this._link?.sendControl(control.encode());
      return;
    }
    const t = {
      id: transferId,
      key,
      direction: "in",
      offer,
      name: sanitizeFileName(offer.name),
      mime: offer.mime,
      size: offer.size,
      state: State.OFFERED,
      done: 0,
      samples: [],
      inc: null,
      parts: [],
      hasher: null,
      hashed: 0,
      blob: null,
      error: "",
    };
    this._transfers.set(key, t);
    if (offer.size > MAX_RECEIVE_BYTES) {
      this._decline(t, `too big for a browser guest (the limit is ${MAX_RECEIVE_BYTES / 2 ** 20} MiB)`);
      return;
    }
    this._update(t);
  }

  /** The person accepted an offered file: false (and a note) if it cannot be held. */
  accept(key) {
    const t = this._transfers.get(key);
    if (!t || t.direction !== "in" || t.state !== State.OFFERED) return false;
    if (this._heldBytes() + t.size > MAX_HELD_BYTES) {
      this._onNote("Not enough room in this page for that file: save the files you have, then reload.");
      return false;
    }
    t.inc = new IncomingTransfer(t.id, t.offer);
    t.hasher = new FileHasher();
    t.state = State.RECEIVING;
    this._update(t);
    this._link?.sendControl(t.inc.accept().encode());
    return true;
  }

  decline(key) {
    const t = this._transfers.get(key);
    if (t?.direction === "in" && t.state === State.OFFERED) this._decline(t, "declined");
  }

  /** Stop a transfer either way (tells the owner). */
  cancel(key) {
    const t = this._transfers.get(key);
    if (t && !FINISHED.has(t.state)) this._cancel(t, "cancelled");
  }

  /** One message from the files channel, or (`viaRelay`) a FILE message on the relay path. */
  chunk(data, viaRelay = false) {
    let header;
    try {
      header = decodeChunkHeader(data);
    } catch (err) {
      console.warn(`p2pchat: ignored a file chunk (${err.code}): ${err.message}`);
      return;
    }
    const t = this._transfers.get(toHex(header.transferId));
    if (!t || t.direction !== "in" || t.state !== State.RECEIVING) return; // a late one
    let result;
    try {
      result = t.inc.receiveChunk(data);
    } catch (err) {
      const onRelay = viaRelay && RELAY_DAMAGE_CODES.has(err.code);
      console.warn(`p2pchat: refused a file chunk (${err.code ?? "error"}): ${err.message}`);
      if (onRelay && this._resumeAfterDamage(t)) return;
      const what = onRelay ? "the relay kept damaging the file" : "refused a damaged part of the file";
      this._fail(t, `${what} (${err.code ?? "error"})`);
      return;
    }
    if (result.kind !== Outcome.READY) return;
    t.parts[result.index] = result.data;
    const ack = t.inc.blockWritten(result.index);
    // Hashed in order as the kept prefix grows: no second pass at the end.
    while (t.hashed < t.inc.verified) t.hasher.update(t.parts[t.hashed++]);
    t.done = Math.min(t.size, t.inc.verified * t.inc.blockBytes);
    this._sample(t);
    this._link?.sendControl(ack.encode());
    if (t.inc.complete) this._complete(t);
    else this._update(t);
  }

  /** ACCEPT(verified) again after a chunk damaged on the relay: the owner resends from
   * there. False once RELAY_DAMAGE_RESUMES came with no block verified in between. */
  _resumeAfterDamage(t) {
    if (t.damageMark !== t.inc.verified) {
      t.damageMark = t.inc.verified;
      t.damaged = 0;
    }
    t.damaged += 1;
    if (t.damaged > RELAY_DAMAGE_RESUMES) return false;
    this._link?.sendControl(this._controlBytes(t, ControlKind.ACCEPT, t.inc.verified));
    return true;
  }

  _complete(t) {
    if (!t.inc.wholeHashOk(t.hasher.digest())) {
      this._fail(t, "the file's hash does not match");
      return;
    }
    const type = PREVIEW_TYPES.has(t.mime) ? t.mime : "application/octet-stream";
    t.blob = new Blob(t.parts, { type });
    t.parts = [];
    this._link?.sendControl(this._controlBytes(t, ControlKind.DONE, t.size));
    this._finish(t, State.DONE);
  }

  _control(payload) {
    let control;
    try {
      control = decodeControl(payload);
    } catch (err) {
      console.warn(`p2pchat: refused a file control (${err.code ?? "error"}): ${err.message}`);
      return;
    }
    const t = this._transfers.get(toHex(control.transferId));
    if (!t || FINISHED.has(t.state)) return; // unknown or over: nothing to do
    const reason = control.reason || "no reason given";
    if (control.kind === ControlKind.CANCEL) {
      this._finish(t, State.CANCELLED, `the owner cancelled: ${reason}`);
      return;
    }
    if (t.direction !== "out" || t.state === State.HASHING) return;
    try {
      switch (control.kind) {
        case ControlKind.ACCEPT:
          t.out.onAccept(control.value);
          t.receipted = true;
          t.state = State.SENDING;
          t.done = Math.min(t.size, t.out.acked * t.out.blockBytes);
          this._update(t);
          this._pump(t);
          break;
        case ControlKind.ACK:
          if (t.state !== State.SENDING) return;
          t.out.onAck(control.value);
          t.done = Math.min(t.size, t.out.acked * t.out.blockBytes);
          this._sample(t);
          this._update(t);
          this._pump(t);
          break;
        case ControlKind.DONE:
          t.done = t.size;
          this._finish(t, State.DONE);
          break;
        case ControlKind.DECLINE:
          this._finish(t, State.DECLINED, `the owner declined: ${reason}`);
          break;
        case ControlKind.FAIL:
          this._finish(t, State.FAILED, `the owner's side failed: ${reason}`);
          break;
        default:
          break;
      }
    } catch (err) {
      console.warn(`p2pchat: refused a file control (${err.code ?? "error"}): ${err.message}`);
      this._cancel(t, `protocol error (${err.code ?? "error"})`);
    }
  }

  // -- common ------------------------------------------------------------------------

  _controlBytes(t, kind, value = 0, reason = "") {
    return new FileControl({ kind, transferId: t.id, value, reason: wireReason(reason) }).encode();
  }

  _cancel(t, reason) {
    if (t.state !== State.HASHING) this._link?.sendControl(this._controlBytes(t, ControlKind.CANCEL, 0, reason));
    this._finish(t, State.CANCELLED, reason === "cancelled" ? "" : reason);
  }

  _decline(t, reason) {
    this._link?.sendControl(this._controlBytes(t, ControlKind.DECLINE, 0, reason));
    this._finish(t, State.DECLINED, reason === "declined" ? "" : reason);
  }

  _fail(t, reason) {
    this._link?.sendControl(this._controlBytes(t, ControlKind.FAIL, 0, reason));
    this._finish(t, State.FAILED, reason);
  }

  _finish(t, state, error = "") {
    t.state = state;
    t.error = error;
    if (t.direction === "in" && state !== State.DONE) t.parts = [];
    if (t.direction === "out") t.file = null; // nothing more to read
    t.samples = [];
    this._update(t);
  }

  _heldBytes() {
    let total = 0;
    for (const t of this._transfers.values()) {
      if (t.direction === "in" && (t.state === State.RECEIVING || t.blob)) total += t.size;
    }
    return total;
  }

  /** Room for one more transfer: forgets the oldest finished one (not a file still held)
   * past the cap; false when every one is still under way. */
  _makeRoom() {
    if (this._transfers.size < MAX_TRANSFERS) return true;
    for (const [key, t] of this._transfers) {
      if (FINISHED.has(t.state) && !t.blob) {
        this._transfers.delete(key);
        this._onForget(key);
        return true;
      }
    }
    return false;
  }

  _sample(t) {
    const now = this._now();
    t.samples.push([now, t.done]);
    while (t.samples.length > 2 && now - t.samples[0][0] > RATE_WINDOW_MS) t.samples.shift();
  }

  _update(t) {
    this._onUpdate(this._view(t));
  }

  _view(t) {
    let rate = 0;
    if (t.samples.length >= 2) {
      const [[t0, b0], [t1, b1]] = [t.samples[0], t.samples[t.samples.length - 1]];
      if (t1 > t0) rate = ((b1 - b0) * 1000) / (t1 - t0);
    }
    return {
      key: t.key,
      direction: t.direction,
      name: t.name,
      mime: t.mime,
      size: t.size,
      done: t.done,
      state: t.state,
      rate,
      etaSeconds: rate > 0 ? Math.ceil((t.size - t.done) / rate) : null,
      error: t.error,
      blob: t.blob ?? null,
      preview: Boolean(t.blob) && PREVIEW_TYPES.has(t.mime),
      receipted: t.receipted ?? true,
    };
  }
}

async function readSlice(file, start, end) {
  return new Uint8Array(await file.slice(start, end).arrayBuffer());
}
