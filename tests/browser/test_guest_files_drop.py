"""A file dropped on the guest page's conversation is offered like one from the File
button (issue 13: "file picker and drag-and-drop"), headless Chromium on the direct path.

The drop is a synthetic one: ``dragover`` then ``drop`` events carrying a real
``DataTransfer`` that holds a ``File`` (what a drag from the desktop hands the page),
dispatched by Playwright on ``#log``. No timing thresholds: the timeouts catch hangs.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.conftest import LaunchBrowser
from tests.browser.test_guest_chat import CONNECT_MS, GuestLan
from tests.browser.test_guest_files import (
    FILE_MS,
    MiB,
    files_lan,
    joined_guest,
    png_of_size,
    seed,
    sha256_of,
)

__all__ = ["files_lan", "seed"]  # fixtures, used by name

pytestmark = [pytest.mark.browser, pytest.mark.lan]

# A DataTransfer holding one File made in the page from the bytes (base64).
_DATA_TRANSFER = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}"""


async def test_a_file_dropped_on_the_conversation_goes_to_the_owner(
    files_lan: GuestLan, launch_browser: LaunchBrowser, seed: int
) -> None:
    gl = files_lan
    page, label = await joined_guest(gl, launch_browser, "dora")
    await expect(page.locator("#attach")).to_be_visible(timeout=CONNECT_MS)
    source = gl.tmp / f"dropped-{seed}.png"
    digest = png_of_size(source, 2 * MiB, seed)
    b64 = base64.b64encode(source.read_bytes()).decode()
    transfer = await page.evaluate_handle(_DATA_TRANSFER, [source.name, "image/png", b64])

    await page.dispatch_event("#log", "dragover", {"dataTransfer": transfer})
    # The page took the drag: the conversation shows where to drop.
    await expect(page.locator("#log")).to_have_class(re.compile(r"\bdrop\b"))
    await page.dispatch_event("#log", "drop", {"dataTransfer": transfer})
    await expect(page.locator("#log")).not_to_have_class(re.compile(r"\bdrop\b"))

    done = await asyncio.to_thread(gl.take_upload, label, source.name, 2 * MiB)
    assert sha256_of(Path(done["path"])) == digest, f"seed {seed}"
    entry = page.locator(".msg.file.out", has_text=source.name)
    await expect(entry).to_have_attribute("data-state", "done", timeout=FILE_MS)
    await page.context.close()
