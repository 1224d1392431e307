// npm run build: write the deployable guest page to signaling/static/.
//
// No bundler: the page is plain ES modules. libsodium-wrappers-sumo (the sumo build: it
// has ristretto255 for the password PAKE) ships an ESM build (dist/modules-sumo-esm)
// whose only import is the bare specifier "libsodium-sumo"; browsers
// cannot resolve bare specifiers without an import map (and an inline import map
// would need 'unsafe-inline' in the CSP), so the build copies both files and
// rewrites that one specifier, and the same for src/sodium.js. The wasm is embedded
// in libsodium's module (instantiated under 'wasm-unsafe-eval').
//
// Deterministic: the output depends only on src/ and the locked node_modules.

import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
// --out DIR: build elsewhere (the tests check that the committed output is current).
const outArg = process.argv.indexOf("--out");
const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.resolve(here, "..", "signaling", "static");
const require = createRequire(import.meta.url);

function packageDir(name) {
  // package.json "exports" hides package.json itself: find the package from its main file.
  let dir = path.dirname(require.resolve(name));
  while (path.basename(dir) !== name) dir = path.dirname(dir);
  return dir;
}

function read(file) {
  return readFileSync(file, "utf8");
}

function replaceOnce(text, from, to, where) {
  const count = text.split(from).length - 1;
  if (count !== 1) throw new Error(`${where}: expected exactly one ${JSON.stringify(from)}, found ${count}`);
  return text.replace(from, to);
}

function licenseBanner(dir) {
  const pkg = JSON.parse(read(path.join(dir, "package.json")));
  const license = read(path.join(dir, "LICENSE")).trim().replaceAll("*/", "* /");
  return `/*! ${pkg.name} ${pkg.version} (${pkg.license}), copied unchanged except for the import path.\n${license}\n*/\n`;
}

// The output keeps the names libsodium-wrappers.js / libsodium.js (the page's preloads).
const wrappersDir = packageDir("libsodium-wrappers-sumo");
const sodiumDir = path.join(path.dirname(wrappersDir), "libsodium-sumo");

const files = new Map([
  ["index.html", read(path.join(here, "src", "index.html"))],
  ["style.css", read(path.join(here, "src", "style.css"))],
  ["app.js", read(path.join(here, "src", "app.js"))],
  ["fragment.js", read(path.join(here, "src", "fragment.js"))],
  ["crypto.js", read(path.join(here, "src", "crypto.js"))],
  ["session.js", read(path.join(here, "src", "session.js"))],
  ["cpace.js", read(path.join(here, "src", "cpace.js"))],
  ["group.js", read(path.join(here, "src", "group.js"))],
  ["warmup.js", read(path.join(here, "src", "warmup.js"))],
  ["ice.js", read(path.join(here, "src", "ice.js"))],
  ["files.js", read(path.join(here, "src", "files.js"))],
  ["file_wire.js", read(path.join(here, "src", "file_wire.js"))],
  ["file_crypto.js", read(path.join(here, "src", "file_crypto.js"))],
  ["file_transfer.js", read(path.join(here, "src", "file_transfer.js"))],
  ["file_names.js", read(path.join(here, "src", "file_names.js"))],
  ["relay_files.js", read(path.join(here, "src", "relay_files.js"))],
  [
    "sodium.js",
    replaceOnce(
      read(path.join(here, "src", "sodium.js")),
      'from "libsodium-wrappers-sumo"',
      'from "./libsodium-wrappers.js"',
      "src/sodium.js",
    ),
  ],
  [
    "libsodium-wrappers.js",
    licenseBanner(wrappersDir) +
      replaceOnce(
        read(path.join(wrappersDir, "dist", "modules-sumo-esm", "libsodium-wrappers.mjs")),
        'from"libsodium-sumo"',
        'from"./libsodium.js"',
        "libsodium-wrappers.mjs",
      ),
  ],
  [
    "libsodium.js",
    licenseBanner(sodiumDir) + read(path.join(sodiumDir, "dist", "modules-sumo-esm", "libsodium-sumo.mjs")),
  ],
]);

// Nothing may come from outside the node: no source maps, no remote URLs.
for (const [name, text] of files) {
  if (/sourceMappingURL/.test(text)) throw new Error(`${name}: has a source map reference`);
  if (/\b(?:https?|wss?):\/\//i.test(text)) throw new Error(`${name}: refers to a remote URL`);
}
// The CSP allows no inline script or style.
const html = files.get("index.html");
if (/<script(?![^>]*\bsrc=)/i.test(html) || /\sstyle=|<style/i.test(html) || /\son\w+=/i.test(html)) {
  throw new Error("index.html: inline script or style (the CSP refuses it)");
}

// Every module but the entry is preloaded: without it the browser fetches libsodium
// only after three levels of imports, one round trip each.
for (const name of files.keys()) {
  if (!name.endsWith(".js") || name === "app.js") continue;
  if (!html.includes(`<link rel="modulepreload" href="/static/${name}">`)) {
    throw new Error(`index.html: no <link rel="modulepreload"> for ${name}`);
  }
}

mkdirSync(out, { recursive: true });
const manifest = [];
for (const [name, text] of files) {
  writeFileSync(path.join(out, name), text);
  const digest = createHash("sha256").update(text).digest("hex").slice(0, 16);
  manifest.push(`${digest}  ${String(Buffer.byteLength(text)).padStart(7)}  ${name}`);
}
// What the committed page is built from, in sha256sum's format: scripts/install.sh
// compares it with browser/src (by content: a fresh clone's file times say nothing) and
// needs npm only when they differ. Written only for the committed output.
if (outArg < 0) {
  const repo = path.resolve(here, "..");
  const under = (dir) =>
    readdirSync(path.join(repo, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? under(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`],
    );
  const inputs = ["browser/build.mjs", "browser/package-lock.json", ...under("browser/src").sort()];
  const sha256 = (rel) => createHash("sha256").update(readFileSync(path.join(repo, rel))).digest("hex");
  writeFileSync(path.join(here, "static-inputs.sha256"), inputs.map((rel) => `${sha256(rel)}  ${rel}\n`).join(""));
}
if (process.argv.includes("--quiet")) process.exit(0);
console.log(`built ${files.size} files into ${path.relative(process.cwd(), out) || "."}:`);
console.log(manifest.join("\n"));
