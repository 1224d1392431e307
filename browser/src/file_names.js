// A received file name made safe to save: mirrors p2pchat/protocol/file_names.py.
//
// The page saves through a download link whose `download` attribute the browser
// sanitizes too, but each browser in its own way (and some keep bidi overrides or
// Windows device names): so the page applies the same rules as the node, and a name
// looks the same in the TUI and in the page.

const MAX_SAFE_NAME_BYTES = 200;
const MAX_EXTENSION_BYTES = 16; // kept when a long name is cut (".tar.gz" counts as ".gz")
export const FALLBACK_NAME = "file";
const SEPARATORS = /[/\\]+/;
const DROPPED = /[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]/gu; // control, lone surrogate, bidi
const WINDOWS_RESERVED = /[<>:"|?*]/g; // refused by Windows in names
const DEVICES = new Set(["con", "prn", "aux", "nul"]);
for (let n = 1; n <= 9; n++) DEVICES.add(`com${n}`).add(`lpt${n}`);

const encoder = new TextEncoder();
const utf8Length = (text) => encoder.encode(text).length;

/** The longest prefix of `text` within `limit` UTF-8 bytes (at a character edge). */
function cutUtf8(text, limit) {
  let out = "";
  let size = 0;
  for (const ch of text) {
    size += utf8Length(ch);
    if (size > limit) break;
    out += ch;
  }
  return out;
}

function trim(name) {
  return name.replace(/^\.+/, "").replace(/[. ]+$/, "");
}

/** A name with no path, no control or bidi characters, not hidden, not a device, at most
 * 200 UTF-8 bytes (keeping a short extension); "file" if nothing is left. */
export function sanitizeFileName(name) {
  name = name.replace(DROPPED, "");
  // Each path component stays, joined with "_", except empty, "." and ".." ones.
  const parts = name.split(SEPARATORS).filter((p) => !["", ".", ".."].includes(p.replace(/^ +| +$/g, "")));
  name = parts.join("_").replace(WINDOWS_RESERVED, "_");
  name = trim(name);
  if (utf8Length(name) > MAX_SAFE_NAME_BYTES) {
    const dot = name.lastIndexOf(".");
    let stem = dot < 0 ? "" : name.slice(0, dot);
    let suffix = dot < 0 ? "" : name.slice(dot);
    if (!stem || utf8Length(suffix) > MAX_EXTENSION_BYTES) {
      stem = name;
      suffix = "";
    }
    name = trim(trim(cutUtf8(stem, MAX_SAFE_NAME_BYTES - utf8Length(suffix))) + suffix);
  }
  if (!name) return FALLBACK_NAME;
  // Windows opens a device for "CON", "con.txt" and "Con .tar.gz" alike.
  if (DEVICES.has(name.split(".", 1)[0].replace(/ +$/, "").toLowerCase())) name = `_${name}`;
  return name;
}
