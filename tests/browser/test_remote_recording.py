"""What a remote signal-server sees (contract §9): a recording proxy stands in front of a
standalone ``p2pchat signal-server`` (TLS from the test CA, coturn's TURN flags) for both
the owner node (``invite --server`` points at the proxy) and a Chromium guest.

The Internet harness (tests/lan/wan.py): the owner in lanA, the guest in lanB behind a
NAT that forwards no UDP (so chat and files run through the server: the relay path),
the server, the proxy and coturn in srv. After chat both ways and a file each way,
nothing the clients sent or got (both sockets, both ways, HTTP heads) holds a message
text, a 48-byte piece of either file, the link secret or the link's password; and the TURN shared secret is
neither in anything the page loaded nor in any server→guest or server→owner message.

No timing thresholds: the timeouts only catch hangs.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Response, expect

from p2pchat.crypto.link import PASSWORD_SUFFIX
from tests.browser.chromium import new_context
from tests.browser.conftest import LaunchBrowser
from tests.browser.relay_proxy import FILE, RELAY, SIGNAL, ProxyProcess
from tests.browser.test_guest_chat import (
    CONNECT_MS,
    UI_MS,
    expect_in_log,
    join,
    secret_forms,
    send_from_page,
    wait_connected,
)
from tests.browser.test_guest_files import sha256_of
from tests.conftest import require_chromium, require_command
from tests.lan.cert_authority import CertAuthority, LeafCertificate
from tests.lan.chat_nodes import ChatNode, Event
from tests.lan.conftest import MakeInternet
from tests.lan.services import SIGNAL_PORT, Coturn, SignalInstance
from tests.lan.wan import Internet

pytestmark = [pytest.mark.browser, pytest.mark.lan]

EVENT_S = 120.0  # a hang, not a speed
FILE_SIZE = 256 * 1024
WINDOW = 48
WINDOWS = 200
PROXY_PORT = 9443
OWNER_TOKEN = "owner-token-for-the-recording-test"


@dataclass
class RemoteWorld:
    net: Internet
    ca: CertAuthority
    proxy_leaf: LeafCertificate
    turn: Coturn
    proxy: ProxyProcess
    owner: ChatNode
    tmp: Path

    @property
    def proxy_url(self) -> str:
        return f"https://{self.net.shared_address}:{self.proxy.port}"

    def wait_event(self, type_: str, **fields: Any) -> Event:
        return self.owner.wait_for(
            lambda e: e.get("type") == type_ and all(e.get(k) == v for k, v in fields.items()),
            timeout=EVENT_S,
        )


@pytest.fixture
def remote_world(make_internet: MakeInternet, tmp_path: Path) -> Iterator[RemoteWorld]:
    require_chromium()
    require_command("turnserver")
    net = make_internet("udp-blocked")
    ca = CertAuthority(tmp_path / "ca")
    instance_addr = net.instance_addresses[0]
    server_leaf = ca.issue("signal", [instance_addr])
    proxy_leaf = ca.issue("proxy", [net.shared_address])
    turn = Coturn(net.srv, net.turn_address)
    token_file = tmp_path / "owner-token"
    token_file.touch(mode=0o600)
    token_file.write_text(OWNER_TOKEN + "\n")
    SignalInstance(
        net.srv, [instance_addr], SIGNAL_PORT, certificate=server_leaf,
        turn_urls=[turn.url()], stun_urls=[turn.url("stun")],
        turn_secret_file=turn.secret_file, owner_token_file=token_file,
    )  # fmt: skip
    proxy = ProxyProcess(
        net.srv, tmp_path / "proxy",
        ["--upstream", f"{instance_addr}:{SIGNAL_PORT}", "--host", net.shared_address,
         "--port", str(PROXY_PORT), "--cert", str(proxy_leaf.cert_file),
         "--key", str(proxy_leaf.key_file)],
    )  # fmt: skip
    owner = ChatNode(net.lan_a, tmp_path / "owner", "olivia")
    owner.daemon_args = ["--downloads", str(tmp_path / "downloads")]
    owner.start(env=ca.client_env())  # the node trusts the test CA only
    try:
        yield RemoteWorld(net, ca, proxy_leaf, turn, proxy, owner, tmp_path)
    finally:
        owner.stop()
        proxy.stop()


def seeded_text(rng: random.Random, what: str) -> str:
    return f"{what}-" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24))


def turn_secret_forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"="),
            raw.hex().encode(), raw.hex().upper().encode()]  # fmt: skip


def file_windows(data: bytes, rng: random.Random) -> list[bytes]:
    starts = (rng.randrange(len(data) - WINDOW) for _ in range(WINDOWS))
    return [data[at : at + WINDOW] for at in starts]


async def test_the_remote_server_sees_only_ciphertext_and_no_secret(
    remote_world: RemoteWorld, launch_browser: LaunchBrowser
) -> None:
    seed = random.randrange(2**32)
    print(f"random seed: {seed}")
    rng = random.Random(seed)
    w = remote_world
    password = seeded_text(rng, "password")
    password_file = w.tmp / "link-password"
    password_file.write_text(password + "\n")
    invite = w.owner.cli_json(
        "invite", "--server", w.proxy_url, "--server-token", OWNER_TOKEN,
        "--password-file", str(password_file),
    )  # fmt: skip
    assert invite["url"].startswith(w.proxy_url + "/c/"), invite
    assert invite["url"].endswith(PASSWORD_SUFFIX), invite

    browser = await launch_browser(w.net.lan_b.name, extra_args=w.ca.chromium_args(w.proxy_leaf))
    context = await new_context(browser, ignore_https_errors=False)
    page: Page = await context.new_page()
    loaded: list[Response] = []
    page.on("response", lambda response: loaded.append(response))
    await page.goto(invite["url"], timeout=UI_MS)
    await page.get_by_label("Password").fill(password)
    await join(page, "gina")
    await wait_connected(page)
    await expect(page.locator("#path")).to_contain_text("relay")
    joined = await asyncio.to_thread(w.wait_event, "guest_joined", invite_id=invite["invite_id"])
    assert joined["path"] == "relay", joined
    label = joined["peer_id"]

    # Chat both ways (seeded texts).
    to_owner, to_guest = seeded_text(rng, "to-owner"), seeded_text(rng, "to-guest")
    await send_from_page(page, to_owner)
    await asyncio.to_thread(w.wait_event, "message", direction="in", peer_id=label, text=to_owner)
    sent = await asyncio.to_thread(w.owner.cli, "send", label, to_guest)
    assert sent.returncode == 0, sent.stderr
    await expect_in_log(page, to_guest)

    # The guest sends a small file…
    up = w.tmp / f"up-{seed}.bin"
    up.write_bytes(rng.randbytes(FILE_SIZE))
    await expect(page.locator("#attach")).to_be_visible(timeout=CONNECT_MS)
    await page.set_input_files("#file-input", str(up))
    offered = await asyncio.to_thread(w.wait_event, "file_offered", peer_id=label, name=up.name)
    accepted = await asyncio.to_thread(w.owner.cli, "files", "accept", offered["transfer_id"][:12])
    assert accepted.returncode == 0, accepted.stderr
    done = await asyncio.to_thread(
        w.wait_event, "file_done", transfer_id=offered["transfer_id"], direction="in"
    )
    assert done["path_used"] == "relay", done
    assert sha256_of(Path(done["path"])) == sha256_of(up), f"seed {seed}"

    # …and receives one.
    down = w.tmp / f"down-{seed}.bin"
    down.write_bytes(rng.randbytes(FILE_SIZE))
    (view,) = await asyncio.to_thread(w.owner.cli_json, "send-file", label, str(down), "--no-wait")
    entry = page.locator(".msg.file.in")
    await entry.get_by_role("button", name="Accept").click(timeout=CONNECT_MS)
    await expect(entry).to_have_attribute("data-state", "done", timeout=EVENT_S * 1000)
    async with page.expect_download(timeout=UI_MS) as download_info:
        await entry.locator("a.file-save").click()
    got = Path(await (await download_info.value).path())
    assert sha256_of(got) == sha256_of(down), f"seed {seed}"
    out = await asyncio.to_thread(
        w.wait_event, "file_done", transfer_id=view["transfer_id"], direction="out"
    )
    assert out["path_used"] == "relay", out

    assets = {r.url: await r.body() for r in loaded if r.ok and r.request.method == "GET"}
    await context.close()
    await asyncio.to_thread(w.owner.stop)  # the owner says goodbye: its socket ends
    await asyncio.to_thread(w.proxy.stop)  # every frame it forwarded is in the recording
    records = w.proxy.records()

    def of(*tags: str) -> list[bytes]:
        return [data for tag, data in records if tag in tags]

    # The proxy really stood in for the server, for both clients and both ways.
    heads = of("H")
    assert any(h.startswith(b"GET /owner/") for h in heads), heads
    assert any(h.startswith(b"GET /ws/") for h in heads), heads
    assert any(d[:1] == bytes([SIGNAL]) for d in of("g")), "no OFFER from the guest"
    assert any(d[:1] == bytes([SIGNAL]) for d in of("G")), "no ANSWER to the guest"
    for tag in ("g", "G"):
        assert any(d[:1] == bytes([RELAY]) for d in of(tag)), f"no chat on the relay ({tag})"
    guest_files = {tag: sum(d[:1] == bytes([FILE]) for d in of(tag)) for tag in ("g", "G")}
    assert min(guest_files.values()) >= FILE_SIZE // (64 * 1024), guest_files
    assert of("o"), "nothing from the owner's socket"
    assert of("O"), "nothing to the owner's socket"
    # The same sealed chunks, on the owner's socket (with its 8-byte header).
    owner_files = {tag: sum(d[:1] == bytes([FILE]) for d in of(tag)) for tag in ("o", "O")}
    assert owner_files == {"o": guest_files["G"], "O": guest_files["g"]}, owner_files
    # ICE offers flowed: TURN credentials (minted, not the secret) to the owner and guest.
    assert any(b"turn:" in d for d in of("Q")), of("Q")
    assert any(b"turn:" in d for d in of("T")), of("T")
    assert any(b"/static/" in url.encode() for url in assets), list(assets)

    everything = b"\n".join(data for _, data in records)
    link = invite["url"].removesuffix(PASSWORD_SUFFIX)
    forbidden = [to_owner.encode(), to_guest.encode(), *secret_forms(link)]
    forbidden += [password.encode(), password.encode().hex().encode()]
    forbidden += [base64.b64encode(password.encode()), base64.urlsafe_b64encode(password.encode())]
    for needle in forbidden:
        assert needle not in everything, f"the server saw {needle!r} (seed {seed})"
    for source in (up, down):
        for piece in file_windows(source.read_bytes(), random.Random(seed)):
            assert piece not in everything, (
                f"the server saw plaintext of {source.name} (seed {seed})"
            )
    for head in heads:  # no fragment in a request line (a Referer, a careless URL)
        assert b"#" not in head.split(b"\r\n", 1)[0], head

    from_server = b"\n".join([*of("G", "T", "O", "Q"), *assets.values()])
    for needle in turn_secret_forms(w.turn.secret):
        assert needle not in from_server, f"the TURN secret reached a client as {needle!r}"
