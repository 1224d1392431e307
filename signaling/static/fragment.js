// Takes the link secret out of the address bar before anything else runs.
//
// app.js imports this module first: it has no dependencies and no top-level await,
// so it runs before libsodium is even loaded. The fragment is kept for this tab
// only (sessionStorage, to reconnect after a reload) and replaced in the history
// entry, so it does not linger in the address bar, history or bookmarks.

// The module graph is fetched (modules run only then); bench_guest reads this mark.
performance.mark?.("p2pchat:modules-fetched");

const ROOM_PATH = /^\/c\/([A-Za-z0-9_-]{1,64})\/?$/;

/** The room id from the path /c/<room>, or null (e.g. the page opened as a file). */
export const pathRoomId = ROOM_PATH.exec(location.pathname)?.[1] ?? null;

const storageKey = `p2pchat:${pathRoomId ?? "-"}:secret`;

function take() {
  const hash = location.hash;
  if (hash.length > 1) {
    history.replaceState(history.state, "", location.pathname + location.search);
    try {
      sessionStorage.setItem(storageKey, hash.slice(1));
    } catch {
      // storage disabled: the secret lives in memory for this page only
    }
    return hash.slice(1);
  }
  try {
    return sessionStorage.getItem(storageKey);
  } catch {
    return null;
  }
}

/** The fragment from the link (or from this tab's storage after a reload), or null. */
export const linkFragment = take();

export function forgetFragment() {
  try {
    sessionStorage.removeItem(storageKey);
  } catch {
    // nothing stored
  }
}
