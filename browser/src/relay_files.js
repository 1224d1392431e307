// File chunks on the relay path (docs/guest-protocol.md "Files"): each sealed chunk is its
// own FILE (0x03) WebSocket message, apart from the secret stream (RELAY 0x02), so the
// server forwards ciphertext it cannot tell from any other and the owner's node takes
// chunks without unwrapping chat. A WebSocket has no "bufferedamountlow" event: the
// sender polls bufferedAmount, so at most `low` bytes (plus one chunk) wait in the page
// and a chat message sent meanwhile is not stuck behind a megabyte of chunks.

export const FILE = 0x03;
export const POLL_MS = 4;
const OPEN = 1; // WebSocket.OPEN (also where there is no WebSocket global: the tests)

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Send one sealed chunk as a FILE message once the socket's buffer is at most `low`
 * bytes. `usable()` says whether this session may still send (false: throw, the files
 * code resumes from the owner's next ACCEPT).
 */
export async function sendRelayChunk(ws, data, { low, usable, sleep = pause }) {
  while (usable() && ws.readyState === OPEN && ws.bufferedAmount > low) await sleep(POLL_MS);
  if (!usable() || ws.readyState !== OPEN) throw new Error("the connection to the owner closed");
  const message = new Uint8Array(1 + data.length);
  message[0] = FILE;
  message.set(data, 1);
  ws.send(message);
}

/** A FILE message from the socket: its chunk (the bytes after the type), else null. */
export function relayChunkOf(bytes) {
  return bytes.length > 1 && bytes[0] === FILE ? bytes.slice(1) : null;
}
