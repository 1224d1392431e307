// Starts the slow, secret-free parts of joining while libsodium loads and the page
// shows its Join form: the WebSocket to /ws/<room> (TLS, upgrade) and the peer
// connection's offer with its ICE candidates (gathering takes ~100 ms in Chromium).
//
// app.js imports this right after fragment.js; like it, this module has no other
// dependency, so it runs before libsodium is even loaded. Nothing reaches the owner
// until the page sends its sealed OFFER after Join: the server hands a guest socket to
// the owner only with its first message, and the room id in the socket's path is the
// one the page's own address already sent. A tab that never joins spends nothing.

import { linkFragment, pathRoomId } from "./fragment.js";
import { iceMode, waitForIce } from "./ice.js";

export const ICE_GATHER_TIMEOUT_MS = 5000;
// The files channel (docs/protocol.md "Files"): pre-negotiated, so it needs no in-band
// open and the owner's node accepts no other; used only when both ends announce files=1.
export const FILES_CHANNEL = Object.freeze({ label: "p2pchat-files", id: 2 });
export const FILES_BUFFER_LOW = 256 * 1024; // send more chunks once the buffer is below this

export function socketUrl(roomId) {
  const scheme = location.protocol === "http:" ? "ws:" : "wss:";
  return `${scheme}//${location.host}/ws/${roomId}`;
}

/** Resolves once gathering is complete (or after timeoutMs: send what we have). */
export function iceGatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** A signaling socket (opening) and a peer connection with its data channel, whose
 * local offer is set and gathered once `ready` resolves.
 *
 * Page from a server with STUN/TURN (ice.js): the server's first message on the socket
 * carries them; gathering waits for it (at most ICE_WAIT_MS, else no servers) and
 * starts with them. The peer connection itself exists at once, as on the LAN, so its
 * users need not wait: before any gathering, setConfiguration may still change the
 * servers and the policy. */
export class Groundwork {
  constructor(roomId) {
    this.roomId = roomId;
    this.iceMode = iceMode();
    this.ice = null; // server mode: resolves to {iceServers, iceTransportPolicy}
    this.openSocket();
    this.pc = new RTCPeerConnection({ iceServers: [] });
    this.dc = this.pc.createDataChannel("p2pchat", { ordered: true });
    this.dc.binaryType = "arraybuffer";
    // Before the offer, as the chat channel (a negotiated one sends nothing until used).
    this.filesDc = this.pc.createDataChannel(FILES_CHANNEL.label, {
      negotiated: true,
      id: FILES_CHANNEL.id,
      ordered: true,
    });
    this.filesDc.binaryType = "arraybuffer";
    this.filesDc.bufferedAmountLowThreshold = FILES_BUFFER_LOW;
    this.ready = (async () => {
      if (this.ice !== null) {
        this.pc.setConfiguration(await this.ice);
        performance.mark?.("p2pchat:groundwork-ice");
      }
      await this.pc.setLocalDescription(await this.pc.createOffer());
      await iceGatheringComplete(this.pc, ICE_GATHER_TIMEOUT_MS);
      performance.mark?.("p2pchat:groundwork-gathered");
    })();
    this.ready.catch(() => {}); // the user of `ready` sees the error
  }

  /** A new socket (the server closed the last one, e.g. an owner that closes after a probe). */
  openSocket() {
    this.ws = new WebSocket(socketUrl(this.roomId));
    this.ws.binaryType = "arraybuffer";
    const ws = this.ws;
    // The first socket's ICE offer is the one gathering uses; later sockets' are ignored.
    if (this.iceMode === "server" && this.ice === null) this.ice = waitForIce(ws);
    ws.addEventListener("open", () => performance.mark?.("p2pchat:groundwork-ws-open"), { once: true });
    this.socketOpen = new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve, { once: true });
      ws.addEventListener("close", () => reject(new Error("the server closed the connection")), { once: true });
    });
    this.socketOpen.catch(() => {}); // whoever uses the socket reports its close
  }

  /** Still usable: the peer connection is not closed (a closed socket is opened again). */
  get usable() {
    if (this.pc.signalingState === "closed") return false;
    if (this.ws.readyState > WebSocket.OPEN) this.openSocket();
    return true;
  }

  close() {
    try {
      this.filesDc.close();
      this.dc.close();
      this.pc.close();
    } catch {
      // already closed
    }
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }
}

let early = null;
if (linkFragment && pathRoomId && typeof RTCPeerConnection === "function" && typeof WebSocket === "function") {
  try {
    early = new Groundwork(pathRoomId);
    performance.mark?.("p2pchat:groundwork");
  } catch (err) {
    console.warn("p2pchat: could not prepare the connection early:", err);
    early = null;
  }
  // Leaving before joining: nothing may stay open behind the page.
  window.addEventListener("pagehide", () => takeGroundwork(null)?.close());
}

/** The groundwork started as the page loaded, left in place (the probe uses its socket). */
export function peekGroundwork(roomId) {
  return early !== null && early.roomId === roomId ? early : null;
}

/**
 * The groundwork started as the page loaded, once, if it is still usable and for this
 * room; else null (the caller starts its own). Any other caller gets null.
 */
export function takeGroundwork(roomId) {
  const work = early;
  early = null;
  if (work === null) return null;
  if (work.roomId === roomId && work.usable) return work;
  work.close();
  return null;
}
