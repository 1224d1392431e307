// Runs browser/test-support/python_peer.py (p2pchat's own Python code) as a child
// process and talks to it one JSON line at a time.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";

import { REPO_ROOT } from "./helpers.mjs";

export const PYTHON = process.env.P2PCHAT_PYTHON ?? path.join(REPO_ROOT, ".venv", "bin", "python");

/** Why the interop tests cannot run here, or null. In CI they must run. */
export function pythonUnavailable() {
  if (!existsSync(PYTHON)) return `no Python virtualenv at ${PYTHON} (run scripts/install.sh)`;
  return null;
}

export class PythonPeer {
  constructor() {
    this.child = spawn(PYTHON, [path.join(REPO_ROOT, "browser", "test-support", "python_peer.py")], {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.waiting = [];
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on("line", (line) => this.waiting.shift()?.resolve(JSON.parse(line)));
    this.child.on("exit", (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`python exited with ${code}`));
    });
  }

  /** One request; resolves with the reply ({error, message} for a refusal). */
  call(op, args = {}) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ op, ...args })}\n`);
    });
  }

  /** Like call, but a refusal rejects. */
  async ok(op, args = {}) {
    const reply = await this.call(op, args);
    if (reply.error) throw new Error(`python ${op}: ${reply.error}: ${reply.message}`);
    return reply;
  }

  close() {
    this.child.stdin.end();
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) resolve();
      else this.child.on("exit", resolve);
    });
  }
}
