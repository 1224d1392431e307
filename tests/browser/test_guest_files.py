"""Browser guests send and receive files (issue 13): a real ``p2pchat daemon`` in host 1,
headless Chromium in host 2 on a real invite link (docs/guest-protocol.md, "Files").
Both directions end with the same SHA-256 on the other side, on the direct path and on
the relay path (UDP dropped in host 2; chunks as FILE socket messages), the latter
through a recording proxy that must see only ciphertext.

No timing thresholds: the timeouts only catch hangs.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LaunchBrowser
from tests.browser.relay_proxy import RELAY
from tests.browser.test_guest_chat import (
    CONNECT_MS,
    GuestLan,
    RelayProxy,
    guest_context,
    join,
    open_link,
    owner_with_downloads,
    wait_connected,
)
from tests.conftest import require_chromium, require_netns

pytestmark = [pytest.mark.browser, pytest.mark.lan]

MiB = 1 << 20
FILE_MS = 240_000  # a hang, not a speed: 20 MB through a headless page
EVENT_S = 240.0


@pytest.fixture(scope="module")
def files_lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestLan]:
    """Two hosts; the owner "olivia" in host 1 with its own downloads dir."""
    require_netns()
    require_chromium()
    with owner_with_downloads(tmp_path_factory.mktemp("guest-files")) as gl:
        yield gl


@pytest.fixture
def seed() -> int:
    value = random.randrange(2**32)
    print(f"random seed: {value}")
    return value


def png_of_size(path: Path, size: int, seed: int) -> str:
    """A valid PNG of exactly ``size`` bytes (random RGB rows, stored uncompressed, then
    an ancillary chunk pads it); returns its SHA-256."""
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    width, height = 512, 1024  # 1.5 MiB of pixels: random data does not compress
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    head = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )
    body = chunk(b"IDAT", zlib.compress(rows, 0))
    tail = chunk(b"IEND", b"")
    pad = size - len(head) - len(body) - len(tail) - 12  # a chunk's own 12 bytes
    assert pad >= 0
    text = b"pad\x00" + bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=pad - 4))
    data = head + body + chunk(b"tEXt", text) + tail
    assert len(data) == size
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


async def joined_guest(gl: GuestLan, launch_browser: LaunchBrowser, name: str) -> tuple[Page, str]:
    invite = gl.invite()
    context = await guest_context(launch_browser, gl)
    page = await open_link(context, invite["url"])
    await join(page, name)
    await wait_connected(page)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    return page, joined["peer_id"]


async def test_guest_sends_a_png_that_waits_for_the_owner(
    files_lan: GuestLan, launch_browser: LaunchBrowser, seed: int
) -> None:
    gl = files_lan
    page, label = await joined_guest(gl, launch_browser, "pia")
    await expect(page.locator("#attach")).to_be_visible(timeout=CONNECT_MS)
    source = gl.tmp / f"photo-{seed}.png"
    digest = png_of_size(source, 5 * MiB, seed)
    await page.set_input_files("#file-input", str(source))

    offered = await asyncio.to_thread(
        gl.wait_event, "file_offered", EVENT_S, peer_id=label, name=source.name
    )
    assert offered["size"] == 5 * MiB
    assert "guest" in offered["reason"], offered  # a guest's file always waits
    tid = offered["transfer_id"]
    (view,) = [f for f in gl.owner.cli_json("files") if f["transfer_id"] == tid]
    assert view["state"] == "offered", view  # nothing moved before the owner said yes
    assert view["peer_name"] == "pia", view

    accepted = await asyncio.to_thread(gl.owner.cli, "files", "accept", tid[:12])
    assert accepted.returncode == 0, accepted.stderr
    done = await asyncio.to_thread(
        gl.wait_event, "file_done", EVENT_S, transfer_id=tid, direction="in"
    )
    saved = Path(done["path"])
    assert saved == gl.tmp / "downloads" / source.name
    assert sha256_of(saved) == digest, f"seed {seed}"
    await expect(page.locator(".msg.file.out")).to_have_attribute(
        "data-state", "done", timeout=FILE_MS
    )
    await page.context.close()


async def test_owner_sends_20mb_to_the_guest(
    files_lan: GuestLan, launch_browser: LaunchBrowser, seed: int
) -> None:
    gl = files_lan
    page, label = await joined_guest(gl, launch_browser, "otto")
    source = gl.tmp / f"report-{seed}.bin"
    source.write_bytes(random.Random(seed).randbytes(20 * MiB))
    digest = sha256_of(source)
    sent = await asyncio.to_thread(gl.owner.cli_json, "send-file", label, str(source), "--no-wait")
    (view,) = sent
    assert (view["peer_id"], view["peer_name"]) == (label, "otto"), view
    assert view["state"] in ("hashing", "queued"), view  # it answers before or after the hash

    entry = page.locator(".msg.file.in")
    await entry.get_by_role("button", name="Accept").click(timeout=CONNECT_MS)
    await expect(entry).to_have_attribute("data-state", "done", timeout=FILE_MS)
    save = entry.locator("a.file-save")
    await expect(save).to_have_attribute("download", source.name)
    async with page.expect_download(timeout=FILE_MS) as download_info:
        await save.click()
    download = await download_info.value
    got = Path(await download.path())
    assert sha256_of(got) == digest, f"seed {seed}"
    await asyncio.to_thread(
        gl.wait_event, "file_done", EVENT_S, transfer_id=view["transfer_id"], direction="out"
    )
    await page.context.close()


async def test_an_image_to_the_guest_shows_its_preview(
    files_lan: GuestLan, launch_browser: LaunchBrowser, seed: int
) -> None:
    """The page previews images from a ``blob:`` URL: the CSP's img-src allows it."""
    gl = files_lan
    page, label = await joined_guest(gl, launch_browser, "ivy")
    source = gl.tmp / f"small-{seed}.png"
    png_of_size(source, 2 * MiB, seed)
    sent = await asyncio.to_thread(gl.owner.cli, "send-file", label, str(source), "--no-wait")
    assert sent.returncode == 0, sent.stderr
    entry = page.locator(".msg.file.in")
    await entry.get_by_role("button", name="Accept").click(timeout=CONNECT_MS)
    await expect(entry).to_have_attribute("data-state", "done", timeout=FILE_MS)
    preview = entry.locator("img.file-preview")
    await expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    # Loaded, not refused by the CSP (a refused image has no natural size).
    await preview.evaluate("img => img.decode()")
    assert await preview.evaluate("img => img.naturalWidth") == 512
    await page.context.close()


async def test_a_guest_transfer_fails_when_the_node_run_ends(
    files_lan: GuestLan, launch_browser: LaunchBrowser, seed: int
) -> None:
    """A guest has no outbox beyond its page's session: a transfer still waiting when the
    node stops fails with one line, "the guest left" (the owner is restarted for it)."""
    gl = files_lan
    page, label = await joined_guest(gl, launch_browser, "wes")
    await expect(page.locator("#attach")).to_be_visible(timeout=CONNECT_MS)
    source = gl.tmp / f"left-{seed}.png"
    png_of_size(source, 2 * MiB, seed)
    await page.set_input_files("#file-input", str(source))
    offered = await asyncio.to_thread(
        gl.wait_event, "file_offered", EVENT_S, peer_id=label, name=source.name
    )
    await page.context.close()
    await asyncio.to_thread(gl.owner.stop)
    await asyncio.to_thread(gl.owner.start)
    (view,) = [f for f in gl.owner.cli_json("files") if f["transfer_id"] == offered["transfer_id"]]
    assert (view["state"], view["error"]) == ("failed", "the guest left"), view


RelayGuest = Callable[..., Awaitable[tuple[Page, str, RelayProxy]]]


@pytest.fixture
def relay_guest(files_lan: GuestLan, launch_browser: LaunchBrowser) -> Iterator[RelayGuest]:
    """A guest on the relay path (no UDP for host 2) behind a recording proxy: call it
    with the guest's name (and the proxy's mode), await the page and its label. The proxy
    is stopped after."""
    gl = files_lan
    proxies: list[RelayProxy] = []

    async def start(name: str, mode: str = "pass") -> tuple[Page, str, RelayProxy]:
        invite = gl.invite()
        proxy = RelayProxy(gl, invite["url"], mode)
        proxies.append(proxy)
        context = await guest_context(launch_browser, gl)
        page = await open_link(context, proxy.url)
        await join(page, name)
        await wait_connected(page)
        await expect(page.locator("#path")).to_contain_text("relay")
        joined = await asyncio.to_thread(
            gl.wait_event, "guest_joined", invite_id=invite["invite_id"]
        )
        assert joined["path"] == "relay", joined
        return page, joined["peer_id"], proxy

    gl.guest_host.drop_udp(100)  # no WebRTC for host 2: relay only
    try:
        yield start
    finally:
        gl.guest_host.clear_drops()
        for proxy in proxies:
            proxy.stop()


FILE = 0x03


def assert_only_ciphertext(proxy: RelayProxy, source: Path, seed: int, *, up: bool) -> None:
    """The proxy forwarded FILE messages the way the file went, and no 48-byte piece of
    the file (at random places) is anywhere in what it saw."""
    records = proxy.records()
    tag = "g" if up else "G"
    files = [d for t, d in records if t == tag and d[:1] == bytes([FILE])]
    assert len(files) >= source.stat().st_size // (64 * 1024), len(files)
    assert any(t == tag and d[:1] == bytes([RELAY]) for t, d in records)  # chat beside it
    everything = b"".join(data for _, data in records)
    data = source.read_bytes()
    rng = random.Random(seed)
    for _ in range(200):
        at = rng.randrange(len(data) - 48)
        assert data[at : at + 48] not in everything, f"the relay saw plaintext (seed {seed})"


async def test_relay_guest_sends_a_5mb_png(
    files_lan: GuestLan, relay_guest: RelayGuest, seed: int
) -> None:
    gl = files_lan
    page, label, proxy = await relay_guest("rae")
    await expect(page.locator("#attach")).to_be_visible(timeout=CONNECT_MS)
    source = gl.tmp / f"relay-photo-{seed}.png"
    digest = png_of_size(source, 5 * MiB, seed)
    await page.set_input_files("#file-input", str(source))
    done = await asyncio.to_thread(gl.take_upload, label, source.name, 5 * MiB)
    tid = done["transfer_id"]
    assert done["path_used"] == "relay", done
    saved = Path(done["path"])
    assert saved == gl.tmp / "downloads" / source.name
    assert sha256_of(saved) == digest, f"seed {seed}"
    await expect(page.locator(".msg.file.out")).to_have_attribute(
        "data-state", "done", timeout=FILE_MS
    )
    # History has it as a file: its row is the transfer, found by the file's name.
    hits = gl.owner.cli_json("history", "--search", f"relay-photo-{seed}")["hits"]
    assert [(h["text"], h["message_id"]) for h in hits] == [(source.name, tid)], hits
    await page.context.close()
    await asyncio.to_thread(proxy.stop)  # every frame it forwarded is in the recording
    assert_only_ciphertext(proxy, source, seed, up=True)


async def test_relay_guest_receives_20mb(
    files_lan: GuestLan, relay_guest: RelayGuest, seed: int
) -> None:
    gl = files_lan
    page, label, proxy = await relay_guest("otis")
    source = gl.tmp / f"relay-report-{seed}.bin"
    source.write_bytes(random.Random(seed).randbytes(20 * MiB))
    digest = sha256_of(source)
    sent = await asyncio.to_thread(gl.owner.cli_json, "send-file", label, str(source), "--no-wait")
    (view,) = sent
    entry = page.locator(".msg.file.in")
    await entry.get_by_role("button", name="Accept").click(timeout=CONNECT_MS)
    await expect(entry).to_have_attribute("data-state", "done", timeout=FILE_MS)
    save = entry.locator("a.file-save")
    async with page.expect_download(timeout=FILE_MS) as download_info:
        await save.click()
    download = await download_info.value
    got = Path(await download.path())
    assert sha256_of(got) == digest, f"seed {seed}"
    done = await asyncio.to_thread(
        gl.wait_event, "file_done", EVENT_S, transfer_id=view["transfer_id"], direction="out"
    )
    assert done["path_used"] == "relay", done
    await page.context.close()
    await asyncio.to_thread(proxy.stop)  # every frame it forwarded is in the recording
    assert_only_ciphertext(proxy, source, seed, up=False)


async def test_a_file_chunk_damaged_on_the_relay_each_way_resumes_the_transfer(
    files_lan: GuestLan, relay_guest: RelayGuest, seed: int
) -> None:
    """The relay flips a bit in one sealed chunk each way (relay_proxy.py damage-file):
    the receiver, node then page, asks again from its last verified block; both files
    arrive whole."""
    gl = files_lan
    page, label, proxy = await relay_guest("dora", "damage-file")
    await expect(page.locator("#attach")).to_be_visible(timeout=CONNECT_MS)
    up = gl.tmp / f"damaged-up-{seed}.png"
    up_digest = png_of_size(up, 3 * MiB, seed)
    await page.set_input_files("#file-input", str(up))
    done = await asyncio.to_thread(gl.take_upload, label, up.name, 3 * MiB)
    assert done["path_used"] == "relay", done
    assert sha256_of(Path(done["path"])) == up_digest, f"seed {seed}"
    await asyncio.to_thread(
        proxy.wait_for, lambda e: e["event"] == "damaged_file" and e["way"] == "up"
    )
    down = gl.tmp / f"damaged-down-{seed}.bin"
    down.write_bytes(random.Random(seed + 1).randbytes(3 * MiB))
    (view,) = await asyncio.to_thread(gl.owner.cli_json, "send-file", label, str(down), "--no-wait")
    entry = page.locator(".msg.file.in")
    await entry.get_by_role("button", name="Accept").click(timeout=CONNECT_MS)
    await expect(entry).to_have_attribute("data-state", "done", timeout=FILE_MS)
    await asyncio.to_thread(
        proxy.wait_for, lambda e: e["event"] == "damaged_file" and e["way"] == "down"
    )
    async with page.expect_download(timeout=FILE_MS) as download_info:
        await entry.locator("a.file-save").click()
    got = Path(await (await download_info.value).path())
    assert sha256_of(got) == sha256_of(down), f"seed {seed}"
    sent = await asyncio.to_thread(
        gl.wait_event, "file_done", EVENT_S, transfer_id=view["transfer_id"], direction="out"
    )
    assert sent["path_used"] == "relay", sent
