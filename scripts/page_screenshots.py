"""Screenshots of the guest page's files for docs/user-guide.md, made again on demand.

    sudo env PYTHONPATH=$PWD .venv/bin/python scripts/page_screenshots.py [--out DIR]

Needs root (network namespaces, as the LAN tests), Debian's Chromium and the built page
(signaling/static). It makes a two-host LAN (tests/lan/netns.py): a daemon "olivia" in
host 1, headless Chromium in host 2 joining a real invite link as "pia" (800x760 pixels). The
owner sends a picture (previewed inline), the guest sends a file, then the owner sends a
bigger one through a slowed link (tc tbf on host 1) so that its progress can be caught:

    guest-files-progress.png   the picture done with its preview, a file coming in
    guest-files.png            the same once every file is done, with their Save links

The pictures show real transfers, so the numbers in them (rate, time left) differ from
run to run. Nothing here is a test: no test looks at these pixels.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright, expect

from tests.browser.chromium import launch_chromium, new_context
from tests.lan.chat_nodes import ChatNode
from tests.lan.netns import Lan

REPO = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 800, "height": 760}  # the whole conversation in view
WAIT_MS = 120_000  # a hang, not a speed
EVENT_S = 120.0
# Host 1's egress while the big file moves (a token bucket: netem is not in every kernel).
SLOW = ("tbf", "rate", "24mbit", "burst", "32kb", "latency", "400ms")
BIG_BYTES = 24 << 20


def landscape_png(path: Path, width: int = 320, height: int = 180) -> None:
    """A small picture to preview: sky, sun, hills and a lake (no files from outside)."""

    def mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> bytes:
        return bytes(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))

    rows = []
    horizon = height * 0.62
    for y in range(height):
        row = bytearray(b"\x00")  # filter: none
        for x in range(width):
            hill = horizon - 28 * math.sin(x / width * math.pi * 1.6 + 0.4) - 14
            if y < hill:
                sun = math.hypot(x - width * 0.72, y - height * 0.28)
                pixel = (
                    b"\xff\xe6\x8c" if sun < 22 else mix((96, 158, 224), (250, 206, 160), y / hill)
                )
            elif y < horizon:
                pixel = mix((62, 112, 72), (40, 84, 52), (y - hill) / max(horizon - hill, 1))
            else:
                ripple = 0.08 * math.sin(x / 9 + y / 3)
                pixel = mix(
                    (70, 120, 190), (24, 52, 98), (y - horizon) / (height - horizon) + ripple
                )
            row += pixel
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def wait_event(owner: ChatNode, type_: str, **fields: Any) -> dict[str, Any]:
    return owner.wait_for(
        lambda e: e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items()),
        timeout=EVENT_S,
    )


async def shoot(page: Page, path: Path) -> None:
    # The newest entry wholly in view (entries grow after the log scrolled to them).
    await page.evaluate("""() => new Promise((resolve) => requestAnimationFrame(() => {
      const log = document.querySelector("#log");
      log.scrollTop = log.scrollHeight;
      requestAnimationFrame(() => resolve(null));
    }))""")
    shot = await page.screenshot(path=str(path), type="png", animations="disabled", caret="hide")
    print(f"wrote {path} ({len(shot)} bytes)")


async def make(out: Path, tmp: Path) -> None:
    files = tmp / "files"
    files.mkdir()
    picture = files / "lake.png"
    landscape_png(picture)
    notes = files / "trip-notes.txt"
    notes.write_text("Saturday: train at 8:40, platform 3.\n" * 400)
    big = files / "holiday.mp4"
    big.write_bytes(random.Random(13).randbytes(BIG_BYTES))  # any bytes: only its name shows

    with Lan(2) as lan:
        owner_host, guest_host = lan.hosts
        owner = ChatNode(owner_host, tmp / "owner", "olivia")
        owner.daemon_args = ["--downloads", str(tmp / "downloads")]
        owner.start()
        try:
            invite = owner.cli_json("invite")
            async with async_playwright() as playwright:
                browser = await launch_chromium(guest_host.name, playwright=playwright)
                context = await new_context(browser, viewport=VIEWPORT, device_scale_factor=1)
                page = await context.new_page()
                await page.goto(invite["url"], timeout=WAIT_MS)
                await page.get_by_label("Your name").fill("pia")
                await page.get_by_role("button", name="Join").click()
                await page.wait_for_selector("#status[data-state=connected]", timeout=WAIT_MS)
                joined = await asyncio.to_thread(
                    wait_event, owner, "guest_joined", invite_id=invite["invite_id"]
                )
                label = joined["peer_id"]
                await expect(page.locator("#attach")).to_be_visible(timeout=WAIT_MS)

                # The owner's picture: accepted on the page, previewed inline.
                owner.cli("send-file", label, str(picture), "--no-wait", check=True)
                entry = page.locator(".msg.file.in", has_text=picture.name)
                await entry.get_by_role("button", name="Accept").click(timeout=WAIT_MS)
                await expect(entry).to_have_attribute("data-state", "done", timeout=WAIT_MS)
                await entry.locator("img.file-preview").evaluate("img => img.decode()")

                # The guest's file, with the File button's input; the owner accepts it.
                await page.set_input_files("#file-input", str(notes))
                offered = await asyncio.to_thread(
                    wait_event, owner, "file_offered", peer_id=label, name=notes.name
                )
                owner.cli("files", "accept", offered["transfer_id"][:12], check=True)
                mine = page.locator(".msg.file.out", has_text=notes.name)
                await expect(mine).to_have_attribute("data-state", "done", timeout=WAIT_MS)

                # A bigger one through a slowed link: caught on its way.
                owner_host.run(["tc", "qdisc", "add", "dev", "eth0", "root", *SLOW], check=True)
                owner.cli("send-file", label, str(big), "--no-wait", check=True)
                entry = page.locator(".msg.file.in", has_text=big.name)
                await entry.get_by_role("button", name="Accept").click(timeout=WAIT_MS)
                progress = entry.locator("progress")
                deadline = time.monotonic() + EVENT_S
                while await progress.evaluate("p => p.value / p.max") < 0.4:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the big file did not move")
                    await asyncio.sleep(0.1)
                await shoot(page, out / "guest-files-progress.png")
                owner_host.run(["tc", "qdisc", "del", "dev", "eth0", "root"], check=True)
                await expect(entry).to_have_attribute("data-state", "done", timeout=WAIT_MS)
                await shoot(page, out / "guest-files.png")
                await context.close()
                await browser.close()
        finally:
            owner.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="p2pchat-shots-") as tmp:
        try:
            asyncio.run(make(args.out, Path(tmp)))
        except (subprocess.CalledProcessError, RuntimeError, AssertionError) as exc:
            print(f"page_screenshots: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
