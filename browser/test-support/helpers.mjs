// Shared by the tests: the known-answer vectors and hex helpers.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const vectors = JSON.parse(
  readFileSync(path.join(REPO_ROOT, "tests", "vectors", "v1.json"), "utf8"),
);

export { fromHex as hex, toHex } from "../src/crypto.js";
