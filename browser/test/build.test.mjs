// The committed signaling/static/ is what `npm run build` makes from src/, and the
// page obeys the CSP the server sends (no inline code, nothing from elsewhere).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { REPO_ROOT } from "../test-support/helpers.mjs";

const STATIC = path.join(REPO_ROOT, "signaling", "static");

test("signaling/static is up to date with browser/src (run npm run build)", () => {
  const out = mkdtempSync(path.join(tmpdir(), "p2pchat-build-"));
  try {
    execFileSync(process.execPath, [path.join(REPO_ROOT, "browser", "build.mjs"), "--out", out, "--quiet"]);
    const built = readdirSync(out).sort();
    assert.ok(built.includes("index.html") && built.includes("libsodium.js"));
    for (const name of built) {
      const fresh = readFileSync(path.join(out, name));
      const committed = readFileSync(path.join(STATIC, name));
      assert.ok(fresh.equals(committed), `signaling/static/${name} differs from a fresh build`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("index.html: module script and stylesheet from /static, no inline code", () => {
  const html = readFileSync(path.join(STATIC, "index.html"), "utf8");
  assert.match(html, /<script type="module" src="\/static\/app\.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="\/static\/style\.css">/);
  assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=|javascript:/i);
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  assert.match(html, /<meta name="viewport"/);
  assert.match(html, /role="log"[^>]*aria-live="polite"|aria-live="polite"[^>]*role="log"/);
  assert.match(html, /<label for="message"[^>]*>Message<\/label>/);
  assert.match(html, /<button id="send" type="submit"[^>]*>Send<\/button>/);
});

test("modules import only each other, by relative path; no eval, no remote origins", () => {
  const names = readdirSync(STATIC).filter((n) => n.endsWith(".js"));
  for (const name of names) {
    const text = readFileSync(path.join(STATIC, name), "utf8");
    for (const [, spec] of text.matchAll(/\bfrom\s*"([^"]+)"/g)) {
      assert.match(spec, /^\.\/[\w-]+\.js$/, `${name} imports ${spec}`);
      assert.ok(names.includes(spec.slice(2)), `${name} imports missing ${spec}`);
    }
    assert.doesNotMatch(text, /sourceMappingURL|\bhttps?:\/\//, name);
    if (!name.startsWith("libsodium")) assert.doesNotMatch(text, /\beval\(|new Function\(|innerHTML|\.style\./, name);
  }
  const css = readFileSync(path.join(STATIC, "style.css"), "utf8");
  assert.doesNotMatch(css, /@import|url\(|@font-face/);
});
