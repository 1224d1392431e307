"""Headless Debian Firefox ESR, driven over WebDriver BiDi, inside a network namespace.

``browser/test-support/firefox_driver.mjs`` (puppeteer-core, which never downloads a
browser) runs under ``ip netns exec``, so Firefox and its BiDi socket live in the
namespace; this side talks to the driver one JSON line at a time over its pipes. Root
is fine with HOME pointing at a fresh temporary directory (and a fresh profile).

    firefox = await FirefoxPage.async_launch(host)
    await firefox.goto(url)
    state = await firefox.evaluate("() => document.title")
    await firefox.close()

Page interactions are plain functions run in the page (``evaluate``), polled with
``wait_for``; Firefox's own mDNS host candidates are left as they are (no prefs that
hide them), as for Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.lan.netns import Host

FIREFOX = "/usr/bin/firefox-esr"
REPO_ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = REPO_ROOT / "browser"
DRIVER = BROWSER_DIR / "test-support" / "firefox_driver.mjs"
PUPPETEER = BROWSER_DIR / "node_modules" / "puppeteer-core"
#: Catches a hang only: Firefox starts in a few seconds.
LAUNCH_S = 90.0
CALL_S = 60.0


def firefox_missing() -> str | None:
    """Why Firefox tests cannot run here, or None."""
    if not Path(FIREFOX).exists():
        return f"{FIREFOX} not found (apt-get install firefox-esr)"
    if shutil.which("node") is None:
        return "node not found"
    if not PUPPETEER.exists():
        return f"{PUPPETEER} not found (cd browser && npm ci)"
    return None


class FirefoxError(RuntimeError):
    """The driver or the page refused a request (the message says what it said)."""


class FirefoxPage:
    """One Firefox with one tab, in ``host``'s namespace."""

    def __init__(self, proc: asyncio.subprocess.Process, home: Path) -> None:
        self._proc = proc
        self._home = home
        #: Where a click on a ``download`` link saves the file (no dialog).
        self.downloads = home / "Downloads"
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._stderr: list[str] = []
        self._reader = asyncio.ensure_future(self._read())
        self._err_reader = asyncio.ensure_future(self._read_stderr())
        self.version = ""

    @classmethod
    async def async_launch(cls, host: Host) -> FirefoxPage:
        home = Path(tempfile.mkdtemp(prefix="p2pchat-firefox-"))
        env = dict(
            os.environ,
            HOME=str(home),
            MOZ_CRASHREPORTER_DISABLE="1",
            P2PCHAT_FIREFOX_DOWNLOADS=str(home / "Downloads"),
        )
        env.pop("DISPLAY", None)
        proc = await asyncio.create_subprocess_exec(
            *host.exec_argv(["node", str(DRIVER)]),
            cwd=str(BROWSER_DIR), env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        page = cls(proc, home)
        try:
            async with asyncio.timeout(LAUNCH_S):
                ready = await asyncio.shield(page._ready)
        except BaseException:
            await page.close()
            raise
        page.version = str(ready.get("version", ""))
        return page

    async def goto(self, url: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("goto", url=url)
        return result

    async def evaluate(self, fn: str, arg: Any = None) -> Any:
        """The JSON value of ``fn(arg)`` in the page (``fn``: a JS function's source)."""
        return await self._call("eval", fn=fn, arg=arg)

    async def set_files(self, selector: str, *paths: Path) -> None:
        """Choose ``paths`` in the ``<input type=file>`` at ``selector`` (BiDi
        input.setFiles: the page gets its change event, as from the file picker)."""
        await self._call("setFiles", selector=selector, paths=[str(p) for p in paths])

    async def click(self, selector: str) -> None:
        """A real mouse click on the element at ``selector``."""
        await self._call("click", selector=selector)

    async def wait_download(self, name: str, size: int, *, timeout: float = 120.0) -> Path:
        """The file a download saved as ``name``, once complete: Firefox writes
        ``name.part`` and renames it when done."""
        path = self.downloads / name
        deadline = time.monotonic() + timeout
        while not (path.is_file() and path.stat().st_size == size and not _part_of(path).exists()):
            if time.monotonic() > deadline:
                found = (
                    sorted(p.name for p in self.downloads.glob("*"))
                    if self.downloads.exists()
                    else []
                )
                raise AssertionError(f"firefox: no complete download {name!r}; found {found}")
            await asyncio.sleep(0.1)
        return path

    async def wait_for(self, fn: str, arg: Any = None, *, timeout: float = 45.0) -> Any:
        """Poll ``fn(arg)`` until it returns something truthy; return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(fn, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"firefox: timed out waiting for {fn} ({arg!r})")
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(15):
                    await self._call("close")
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(15):
                await self._proc.wait()
        self._reader.cancel()
        self._err_reader.cancel()
        shutil.rmtree(self._home, ignore_errors=True)

    def stderr_tail(self, chars: int = 3000) -> str:
        return "".join(self._stderr)[-chars:]

    # -- private ------------------------------------------------------------------------

    async def _call(self, op: str, **fields: Any) -> Any:
        assert self._proc.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({"id": request_id, "op": op, **fields}) + "\n"
        self._proc.stdin.write(line.encode())
        await self._proc.stdin.drain()
        try:
            async with asyncio.timeout(CALL_S):
                return await future
        finally:
            self._pending.pop(request_id, None)

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if message.get("event") == "ready" and not self._ready.done():
                self._ready.set_result(message)
                continue
            future = self._pending.get(message.get("id", -1))
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(FirefoxError(str(message["error"])))
            else:
                future.set_result(message.get("value"))
        gone = FirefoxError(f"the Firefox driver exited: {self.stderr_tail()}")
        for future in [self._ready, *self._pending.values()]:
            if not future.done():
                future.set_exception(gone)

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            self._stderr.append(line.decode("utf-8", "replace"))
            del self._stderr[:-200]


def _part_of(path: Path) -> Path:
    return path.with_name(path.name + ".part")


# -- the guest page (browser/README.md lists its elements) ------------------------------

# The join form shows once the page's module has started (after libsodium loads,
# which may be after the load event): only then does submitting it join.
_JOIN = """(name) => {
  if (document.querySelector("#join").hidden) return false;
  document.querySelector("#name").value = name;
  document.querySelector("#join-form").requestSubmit();
  return true;
}"""
_SEND = """(text) => {
  document.querySelector("#message").value = text;
  document.querySelector("#composer").requestSubmit();
  return true;
}"""
_STATE = """() => {
  const error = document.querySelector("#error");
  return {
    state: document.querySelector("#status").dataset.state,
    status: document.querySelector("#status").innerText,
    error: error.hidden ? "" : error.innerText,
    path: document.querySelector("#path").innerText,
  };
}"""
_LOG_HAS = """(text) => document.querySelector("#log").innerText.includes(text)"""
_RECEIPT = """(text) => {
  for (const msg of document.querySelectorAll(".msg.out")) {
    if (msg.innerText.includes(text)) return msg.querySelector(".receipt")?.dataset.state ?? "";
  }
  return "";
}"""


async def guest_join(page: FirefoxPage, name: str) -> None:
    await page.wait_for(_JOIN, name, timeout=20.0)


async def guest_state(page: FirefoxPage) -> dict[str, str]:
    state: dict[str, str] = await page.evaluate(_STATE)
    return state


async def guest_wait_connected(page: FirefoxPage, timeout: float = 45.0) -> dict[str, str]:
    """Wait for ``#status[data-state=connected]``; the page state then."""
    deadline = time.monotonic() + timeout
    while (state := await guest_state(page))["state"] != "connected":
        if time.monotonic() > deadline:
            raise AssertionError(
                f"firefox guest not connected: {state}; driver: {page.stderr_tail()}"
            )
        await asyncio.sleep(0.1)
    return state


async def guest_send(page: FirefoxPage, text: str) -> None:
    await page.evaluate(_SEND, text)


async def guest_wait_in_log(page: FirefoxPage, text: str, timeout: float = 20.0) -> None:
    await page.wait_for(_LOG_HAS, text, timeout=timeout)


async def guest_wait_delivered(page: FirefoxPage, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (receipt := await page.evaluate(_RECEIPT, text)) != "delivered":
        if time.monotonic() > deadline:
            raise AssertionError(f"firefox guest: {text!r} is {receipt!r}, not delivered")
        await asyncio.sleep(0.1)
