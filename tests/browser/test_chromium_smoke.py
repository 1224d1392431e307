"""Proves the browser harness: Chromium in one netns loads a page served from another
over HTTPS (self-signed), and WebRTC data channels work in it."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import subprocess
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.chromium import new_context
from tests.browser.conftest import LaunchBrowser
from tests.lan.conftest import MakeLan

pytestmark = pytest.mark.browser

PORT = 8443

SERVER = textwrap.dedent(
    """
    import asyncio, socket, ssl, sys
    from aiohttp import web

    cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def index(request):
        return web.Response(
            text=f"<!doctype html><title>smoke</title><p id=msg>hello from {socket.gethostname()}",
            content_type="text/html",
        )

    async def main():
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_get("/", index)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port, ssl_context=ctx).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

# Two RTCPeerConnections in one page, no ICE servers (closed LAN), no trickle (as with
# aiortc): each side waits for ICE gathering, then hands over its full description. The
# data channel must open and carry a message both ways; the .local host candidates get
# resolved over real multicast mDNS inside the namespace.
WEBRTC_LOOPBACK = """
async () => {
  const config = { iceServers: [] };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(
    new Error(`timeout: ${what}; ice a=${a.iceConnectionState} b=${b.iceConnectionState}`)
  ), ms));
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  const channel = a.createDataChannel("smoke");
  const opened = new Promise((resolve) => { channel.onopen = resolve; });
  const echoed = new Promise((resolve) => { channel.onmessage = (m) => resolve(m.data); });
  b.ondatachannel = (e) => {
    e.channel.onmessage = (m) => e.channel.send(`echo:${m.data}`);
  };
  await a.setLocalDescription();
  await Promise.race([gathered(a), timeout(10000, "gathering a")]);
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await Promise.race([gathered(b), timeout(10000, "gathering b")]);
  await a.setRemoteDescription(b.localDescription);
  await Promise.race([opened, timeout(15000, "open")]);
  channel.send("ping");
  const reply = await Promise.race([echoed, timeout(15000, "echo")]);
  const candidates = a.localDescription.sdp.split("\\r\\n")
    .filter((line) => line.startsWith("a=candidate:"));
  const result = { reply, candidates, state: a.connectionState };
  a.close();
  b.close();
  return result;
}
"""


def make_self_signed(tmp_path: Path, ip: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p2pchat smoke")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.lan
async def test_chromium_in_netns_loads_page_and_opens_datachannel(
    make_lan: MakeLan, launch_browser: LaunchBrowser, tmp_path: Path
) -> None:
    lan = make_lan(2)
    server_host, guest_host = lan.hosts
    cert, key = make_self_signed(tmp_path, server_host.ip)
    server = server_host.python(
        SERVER, str(cert), str(key), str(PORT), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert server.stdout is not None
    line = await asyncio.to_thread(server.stdout.readline)
    assert line.strip() == b"ready", server.stderr.read() if server.stderr else line

    browser = await launch_browser(guest_host.name)
    context = await new_context(browser)
    page = await context.new_page()
    response = await page.goto(f"https://{server_host.ip}:{PORT}/", timeout=20_000)
    assert response is not None
    assert response.ok
    assert await page.text_content("#msg") == "hello from host1"

    # The browser (all its processes) really lives in the guest's namespace.
    pids = await asyncio.create_subprocess_exec(
        "ip", "netns", "pids", guest_host.name, stdout=asyncio.subprocess.PIPE
    )
    in_guest = (await pids.communicate())[0].split()
    assert len(in_guest) >= 2, in_guest  # browser + renderer/utility processes

    assert await page.evaluate("typeof RTCPeerConnection") == "function"
    result = await page.evaluate(WEBRTC_LOOPBACK)
    assert result["reply"] == "echo:ping", result
    host_candidates = [c for c in result["candidates"] if " typ host" in c]
    assert host_candidates, result
    # No flag hides local IPs: host candidates are mDNS names, as on real browsers.
    assert any(".local " in c for c in host_candidates), host_candidates
    await context.close()


async def test_chromium_in_root_namespace(launch_browser: LaunchBrowser) -> None:
    browser = await launch_browser(None)
    context = await new_context(browser)
    page = await context.new_page()
    await page.set_content("<p id=x>ok</p>")
    assert await page.text_content("#x") == "ok"
    assert await page.evaluate("typeof RTCPeerConnection") == "function"
    await context.close()
