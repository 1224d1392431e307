"""Browser guests send and receive files in Firefox ESR (issue 13, direct path): a real
``p2pchat daemon`` in host 1, headless Firefox in host 2 on a real invite link
(docs/guest-protocol.md, "Files"), driven over WebDriver BiDi (tests/browser/firefox.py).
Both directions end with the same SHA-256 on the other side; a received file is saved
the way a person saves it, a click on the page's Save link (Firefox's own download).

No timing thresholds: the timeouts only catch hangs.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import LaunchFirefox
from tests.browser.firefox import FirefoxPage, guest_join, guest_wait_connected
from tests.browser.test_guest_chat import GuestLan, owner_with_downloads
from tests.browser.test_guest_files import MiB, png_of_size, seed, sha256_of
from tests.conftest import require_netns

__all__ = ["seed"]  # a fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.lan]

FILE_S = 240.0  # a hang, not a speed


@pytest.fixture(scope="module")
def fox_lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestLan]:
    """Two hosts; the owner "olivia" in host 1 with its own downloads dir."""
    require_netns()
    with owner_with_downloads(tmp_path_factory.mktemp("guest-files-firefox")) as gl:
        yield gl


# The file entry in the page's log (browser/src/app.js FileViews): its state and parts.
_ENTRY = """([direction, name]) => {
  for (const entry of document.querySelectorAll(`.msg.file.${direction}`)) {
    if (!entry.innerText.includes(name)) continue;
    const save = entry.querySelector("a.file-save");
    const img = entry.querySelector("img.file-preview");
    return {
      state: entry.dataset.state ?? "",
      status: entry.querySelector(".file-status")?.innerText ?? "",
      buttons: [...entry.querySelectorAll(".file-actions button")].map((b) => b.textContent),
      save: save ? save.getAttribute("download") : null,
      href: save ? save.href : null,
      preview: img ? img.src : null,
    };
  }
  return null;
}"""
_ATTACH_SHOWN = """() => !document.querySelector("#attach").hidden"""
# Resolves once the preview decoded (a CSP refusal rejects, and the page drops the img).
_PREVIEW_WIDTH = """async () => {
  const img = document.querySelector(".msg.file.in img.file-preview");
  await img.decode();
  return img.naturalWidth;
}"""


_ENTRY_IN_STATE = f"""([direction, name, state]) => {{
  const entry = ({_ENTRY})([direction, name]);
  return entry !== null && entry.state === state ? entry : null;
}}"""


async def entry_in_state(
    page: FirefoxPage, direction: str, name: str, state: str
) -> dict[str, object]:
    """The page's entry for file ``name`` once it is in ``state``."""
    try:
        entry = await page.wait_for(_ENTRY_IN_STATE, [direction, name, state], timeout=FILE_S)
    except AssertionError as exc:
        now = await page.evaluate(_ENTRY, [direction, name])
        raise AssertionError(f"{name} ({direction}) never {state}: {now}") from exc
    assert isinstance(entry, dict)
    return entry


async def joined_firefox(
    gl: GuestLan, launch_firefox: LaunchFirefox, name: str
) -> tuple[FirefoxPage, str]:
    invite = gl.invite()
    page = await launch_firefox(gl.guest_host)
    await page.goto(invite["url"])
    await guest_join(page, name)
    await guest_wait_connected(page)
    joined = await asyncio.to_thread(gl.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["path"] == "direct", joined  # files go on the direct path only
    await page.wait_for(_ATTACH_SHOWN)
    return page, joined["peer_id"]


async def test_firefox_guest_sends_a_picture(
    fox_lan: GuestLan, launch_firefox: LaunchFirefox, seed: int
) -> None:
    """The File button's input (BiDi input.setFiles, as the picker): the owner accepts,
    the file arrives whole, the page shows it done."""
    gl = fox_lan
    page, label = await joined_firefox(gl, launch_firefox, "fern")
    source = gl.tmp / f"photo-{seed}.png"
    digest = png_of_size(source, 5 * MiB, seed)
    await page.set_files("#file-input", source)

    done = await asyncio.to_thread(gl.take_upload, label, source.name, 5 * MiB, FILE_S)
    saved = Path(done["path"])
    assert saved == gl.tmp / "downloads" / source.name
    assert sha256_of(saved) == digest, f"seed {seed}"
    await entry_in_state(page, "out", source.name, "done")


async def test_firefox_guest_receives_a_picture_and_saves_it(
    fox_lan: GuestLan, launch_firefox: LaunchFirefox, seed: int
) -> None:
    """Accept, the inline preview (a ``blob:`` image the CSP allows), then the Save link:
    Firefox's download holds the same bytes as the owner's file."""
    gl = fox_lan
    page, label = await joined_firefox(gl, launch_firefox, "finn")
    source = gl.tmp / f"view-{seed}.png"
    digest = png_of_size(source, 3 * MiB, seed)
    sent = await asyncio.to_thread(gl.owner.cli_json, "send-file", label, str(source), "--no-wait")
    (view,) = sent

    offered = await entry_in_state(page, "in", source.name, "offered")
    assert offered["buttons"] == ["Accept", "Decline"], offered
    await page.click('.msg.file.in[data-state="offered"] .file-actions button:first-child')
    done = await entry_in_state(page, "in", source.name, "done")
    assert done["save"] == source.name, done
    assert str(done["href"]).startswith("blob:"), done
    assert str(done["preview"]).startswith("blob:"), done
    assert await page.evaluate(_PREVIEW_WIDTH) == 512

    await page.click(".msg.file.in a.file-save")
    got = await page.wait_download(source.name, 3 * MiB, timeout=FILE_S)
    assert sha256_of(got) == digest, f"seed {seed}"
    await asyncio.to_thread(
        gl.wait_event, "file_done", FILE_S, transfer_id=view["transfer_id"], direction="out"
    )


# A drop from the desktop, made in the page: dragover then drop on the conversation,
# with a DataTransfer holding the File. True when the page took both (preventDefault).
_DROP = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const log = document.querySelector("#log");
  const event = (kind) => new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: transfer });
  const over = !log.dispatchEvent(event("dragover"));
  const dropped = !log.dispatchEvent(event("drop"));
  return over && dropped;
}"""


async def test_firefox_guest_drops_a_file_on_the_conversation(
    fox_lan: GuestLan, launch_firefox: LaunchFirefox, seed: int
) -> None:
    gl = fox_lan
    page, label = await joined_firefox(gl, launch_firefox, "flo")
    source = gl.tmp / f"dropped-{seed}.png"
    digest = png_of_size(source, 2 * MiB, seed)
    b64 = base64.b64encode(source.read_bytes()).decode()
    assert await page.evaluate(_DROP, [source.name, "image/png", b64]) is True

    done = await asyncio.to_thread(gl.take_upload, label, source.name, 2 * MiB, FILE_S)
    assert sha256_of(Path(done["path"])) == digest, f"seed {seed}"
    await entry_in_state(page, "out", source.name, "done")
