// Drives headless Firefox ESR (Debian's /usr/bin/firefox-esr) for tests/browser/firefox.py.
//
// puppeteer-core speaks WebDriver BiDi to the browser and never downloads one. Run it
// where Firefox must run (`ip netns exec NS node firefox_driver.mjs`): the browser
// inherits this process's network namespace, and BiDi's WebSocket stays on that
// namespace's loopback. A fresh profile each run (puppeteer makes one, with prefs that
// keep Firefox off the network); HOME should point at a temporary directory.
//
// One JSON object per line. Out: {"event": "ready", "version"} once, then one reply per
// request: {"id", "value"} or {"id", "error"}. In: {"id", "op", ...}:
//   {"op": "goto", "url"}                         load a page (one tab per driver)
//   {"op": "eval", "fn", "arg"}                   the JSON value of fn(arg) in the page
//   {"op": "setFiles", "selector", "paths"}       choose files in an <input type=file>
//   {"op": "click", "selector"}                   a real mouse click on an element
//   {"op": "close"}                               close the browser and exit
// `fn` is a function's source; it runs through BiDi's script.callFunction, not the
// page's eval, so the page's CSP (no 'unsafe-eval') does not stop it.
//
// Downloads (a click on a `download` link) go without a dialog into
// P2PCHAT_FIREFOX_DOWNLOADS (default $HOME/Downloads): Firefox writes `NAME.part`,
// then renames it to NAME when the download is complete.
import { createInterface } from "node:readline";

import puppeteer from "puppeteer-core";

const FIREFOX = process.env.P2PCHAT_FIREFOX ?? "/usr/bin/firefox-esr";
const DOWNLOADS = process.env.P2PCHAT_FIREFOX_DOWNLOADS ?? `${process.env.HOME}/Downloads`;

function reply(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const browser = await puppeteer.launch({
  browser: "firefox",
  protocol: "webDriverBiDi",
  executablePath: FIREFOX,
  headless: true,
  acceptInsecureCerts: true, // the node's self-signed certificate
  extraPrefsFirefox: {
    "browser.download.folderList": 2, // 2: the folder in browser.download.dir
    "browser.download.dir": DOWNLOADS,
    "browser.download.useDownloadDir": true,
    "browser.download.always_ask_before_handling_new_types": false,
  },
});
const page = (await browser.pages())[0] ?? (await browser.newPage());
page.on("console", (msg) => process.stderr.write(`firefox console: ${msg.type()}: ${msg.text()}\n`));
reply({ event: "ready", version: await browser.version() });

async function handle(request) {
  switch (request.op) {
    case "goto": {
      const response = await page.goto(request.url, { waitUntil: "load" });
      return { status: response?.status() ?? null, url: page.url() };
    }
    case "eval": {
      // The function arrives as source text: rebuild it here, run it in the page.
      const fn = new Function(`return (${request.fn});`)();
      return (await page.evaluate(fn, request.arg ?? null)) ?? null;
    }
    case "setFiles": {
      const input = await page.$(request.selector);
      if (input === null) throw new Error(`no element ${request.selector}`);
      await input.uploadFile(...request.paths); // BiDi input.setFiles: fires input and change
      return null;
    }
    case "click":
      await page.click(request.selector);
      return null;
    case "close":
      await browser.close();
      return null;
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    continue;
  }
  try {
    reply({ id: request.id, value: await handle(request) });
  } catch (err) {
    reply({ id: request.id, error: err instanceof Error ? err.message : String(err) });
  }
  if (request.op === "close") break;
}
if (browser.connected) await browser.close();
process.exit(0);
