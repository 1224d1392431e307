// STUN/TURN for a page served by a standalone server, and which path the session took.
//
// A server with STUN/TURN serves the page with <meta name="p2pchat-ice" content="server">
// and sends, as the first message on every guest socket, the text
// {"type":"ice","ice_servers":[…],"policy":"all"|"relay","expires_at":…} with TURN
// credentials minted for this socket (docs/guest-protocol.md "Standalone"). The page's
// own index.html says "lan": the owner's embedded server sends nothing and the peer
// connection keeps `iceServers: []` (no stall on STUN servers a LAN cannot reach).
//
// The server is not trusted: the offer is bounded like the node bounds it
// (p2pchat/transport/ice_config.py). A bad one counts as none: the chat still works
// over host candidates or the relay.
//
// No imports: warmup.js loads this before libsodium.

export const ICE_WAIT_MS = 5000;
export const MAX_ICE_SERVERS = 4;
export const MAX_ICE_URLS_PER_SERVER = 4;
export const MAX_ICE_URL_LENGTH = 256;
export const MAX_CREDENTIAL_LENGTH = 256;
export const NO_ICE = Object.freeze({ iceServers: [], iceTransportPolicy: "all" });

const URL_SCHEME = /^(stun|turn|turns):[^\s[\]]+$/;

/** "server" when the page came from a server that sends STUN/TURN, else "lan". */
export function iceMode(doc = globalThis.document) {
  const meta = doc?.querySelector?.('meta[name="p2pchat-ice"]');
  return meta?.getAttribute?.("content") === "server" ? "server" : "lan";
}

/** The RTCConfiguration part of an IceOffer object, or null when it breaks a bound. */
export function parseIceOffer(offer) {
  if (offer === null || typeof offer !== "object") return null;
  const servers = offer.ice_servers;
  if (!Array.isArray(servers) || servers.length > MAX_ICE_SERVERS) return null;
  const policy = offer.policy ?? "all";
  if (policy !== "all" && policy !== "relay") return null;
  const iceServers = [];
  for (const server of servers) {
    if (server === null || typeof server !== "object") return null;
    const urls = typeof server.urls === "string" ? [server.urls] : server.urls;
    if (!Array.isArray(urls) || urls.length < 1 || urls.length > MAX_ICE_URLS_PER_SERVER) return null;
    if (!urls.every((u) => typeof u === "string" && u.length <= MAX_ICE_URL_LENGTH && URL_SCHEME.test(u))) {
      return null;
    }
    const entry = { urls: [...urls] };
    for (const key of ["username", "credential"]) {
      const value = server[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== "string" || value.length < 1 || value.length > MAX_CREDENTIAL_LENGTH) return null;
      entry[key] = value;
    }
    iceServers.push(entry);
  }
  if (policy === "relay" && !iceServers.some((s) => s.urls.some((u) => u.startsWith("turn")))) return null;
  return { iceServers, iceTransportPolicy: policy };
}

/** The configuration in a socket message if it is the server's {"type":"ice"}, else null. */
export function iceFromMessage(data) {
  if (typeof data !== "string" || data.length > 16384) return null;
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  return message?.type === "ice" ? parseIceOffer(message) : null;
}

/**
 * Resolves to the configuration of the first {"type":"ice"} message on `ws`; to NO_ICE
 * after `timeoutMs`, when the socket closes or fails first, or when the offer is bad.
 * Listens from the call on: call it right after creating the socket.
 */
export function waitForIce(ws, timeoutMs = ICE_WAIT_MS) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(NO_ICE), timeoutMs);
    function finish(config) {
      clearTimeout(timer);
      ws.removeEventListener("message", onMessage);
      ws.removeEventListener("close", onEnd);
      ws.removeEventListener("error", onEnd);
      resolve(config);
    }
    function onMessage(event) {
      if (typeof event.data !== "string") return;
      const config = iceFromMessage(event.data);
      if (config === null) console.warn("p2pchat: the server's first text message is no usable ICE offer");
      finish(config ?? NO_ICE);
    }
    function onEnd() {
      finish(NO_ICE);
    }
    ws.addEventListener("message", onMessage);
    ws.addEventListener("close", onEnd);
    ws.addEventListener("error", onEnd);
  });
}

/** "turn" if the selected candidate pair in a getStats() report has a relayed
 * candidate on either side, "direct" for any other pair, null when none is selected. */
export function pathOfStats(report) {
  let pair = null;
  for (const stat of report.values()) {
    if (stat.type === "transport" && stat.selectedCandidatePairId) {
      pair = report.get(stat.selectedCandidatePairId) ?? pair;
      break;
    }
  }
  if (pair === null) {
    for (const stat of report.values()) {
      if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") {
        pair = stat;
        break;
      }
    }
  }
  if (pair === null) return null;
  const types = [pair.localCandidateId, pair.remoteCandidateId].map((id) => report.get(id)?.candidateType);
  return types.includes("relay") ? "turn" : "direct";
}

/**
 * Marks the page with the path its session takes: <html data-path="direct|turn">
 * from the peer connection's selected pair, or "websocket" when the session runs on
 * the server's relay (`sessionPath` "relay"). ICE may select another pair after the
 * open (Chromium starts on the first pair that answers, often the TURN one, and moves
 * to a direct one a moment later): the mark follows the ICE transport's
 * selectedcandidatepairchange. Tests and the curious read it.
 */
export async function reportPath(pc, sessionPath, doc = globalThis.document) {
  const root = doc?.documentElement;
  if (!root) return;
  if (sessionPath === "relay") {
    root.dataset.path = "websocket";
    return;
  }
  let asked = 0;
  const mark = async () => {
    const mine = ++asked;
    try {
      const path = pathOfStats(await pc.getStats());
      // getStats answers may cross: only the latest question may mark.
      if (path !== null && mine === asked) root.dataset.path = path;
    } catch (err) {
      console.warn("p2pchat: could not read the connection's path:", err);
    }
  };
  // Listen before the first look, so a change in between is not missed.
  pc.sctp?.transport?.iceTransport?.addEventListener?.("selectedcandidatepairchange", mark);
  await mark();
}
