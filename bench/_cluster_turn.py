"""bench_cluster's ``first_message_ms``: a Chromium guest through TURN beside the LAN.

Both figures are bench_guest.py's measure (link opened → the owner's ``watch`` shows
the first message, scripted Join and Send included; its ``guest_run``), median of N
runs after one warm-up, in the same run:

* ``turn``: tests/lan/wan.py ``Internet(nat_b="symmetric")``: the owner's daemon in
  lanA behind a cone NAT, Chromium in lanB behind a symmetric NAT (only a relayed
  pair connects), one ``signal-server`` instance in srv (TLS from a test CA, coturn
  REST credentials), the invite made with ``invite --server``;
* ``lan``: two hosts on one LAN (tests/lan/netns.py ``Lan``), the owner's embedded
  server, as bench_guest.py.

Needs root (network namespaces), coturn and Chromium; without root the part says so
in the JSON and is skipped.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

from bench.bench_guest import guest_run
from tests.browser.chromium import CHROMIUM, launch_chromium
from tests.lan.cert_authority import CertAuthority
from tests.lan.chat_nodes import ChatNode
from tests.lan.netns import Lan
from tests.lan.services import Coturn, SignalInstance
from tests.lan.wan import Internet

# A node keeps one owner socket per invite on the server until the invite expires (a
# revoked or used-up room included), and the server takes 4 owner sockets per address
# (Limits.owners_per_address): the owner's daemon is restarted every 3 invites.
ROOMS_BEFORE_RESTART = 3


def missing_parts() -> str | None:
    """Why the part cannot run here (one line), or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces): run the bench as root"
    for command in ("ip", "nft", "turnserver"):
        if shutil.which(command) is None:
            return f"needs `{command}` (scripts/install.sh --with-system)"
    if not Path(CHROMIUM).exists():
        return "needs Debian's chromium (scripts/install.sh --with-system)"
    return None


async def first_message(runs: int) -> dict[str, Any]:
    """``{"turn": {...}, "lan": {...}}``, or ``{"skipped": why}``."""
    why = missing_parts()
    if why is not None:
        return {"skipped": why}
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-turn-"))
    try:
        async with async_playwright() as playwright:
            turn = await _through_turn(playwright, tmp / "turn", runs)
            lan = await _on_lan(playwright, tmp / "lan", runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"turn": turn, "lan": lan}


async def _through_turn(playwright: Any, tmp: Path, runs: int) -> dict[str, Any]:
    with Internet(nat_b="symmetric") as net:
        ca = CertAuthority(tmp / "ca")
        leaf = ca.issue("signal", [net.instance_addresses[0]])
        coturn = Coturn(net.srv, net.turn_address)
        server = SignalInstance(
            net.srv, [net.instance_addresses[0]], certificate=leaf,
            turn_urls=[coturn.url()], turn_secret_file=coturn.secret_file,
        )  # fmt: skip
        owner = ChatNode(net.lan_a, tmp / "owner", "owner")
        owner.start(env=ca.client_env())
        try:
            browser = await launch_chromium(
                net.lan_b.name, playwright=playwright, extra_args=ca.chromium_args(leaf)
            )
            try:
                guests = []
                for run_no in range(runs + 1):  # the first: warm-up
                    if run_no and run_no % ROOMS_BEFORE_RESTART == 0:
                        owner.stop()  # its rooms' owner sockets close with it
                        owner.start(env=ca.client_env())
                    guest = await guest_run(owner, browser, "--server", server.url)
                    if run_no:
                        guests.append(guest)
            finally:
                await browser.close()
        finally:
            owner.stop()
            server.stop()
            coturn.stop()
    return _summary(guests, "Internet(symmetric NAT at the guest): one instance, coturn")


async def _on_lan(playwright: Any, tmp: Path, runs: int) -> dict[str, Any]:
    with Lan(2) as lan:
        owner_host, guest_host = lan.hosts
        owner = ChatNode(owner_host, tmp / "owner", "owner")
        owner.start()
        try:
            browser = await launch_chromium(guest_host.name, playwright=playwright)
            try:
                await guest_run(owner, browser)  # warm-up
                guests = [await guest_run(owner, browser) for _ in range(runs)]
            finally:
                await browser.close()
        finally:
            owner.stop()
    return _summary(guests, "one LAN, the owner's embedded server")


def _summary(guests: list[dict[str, Any]], setup: str) -> dict[str, Any]:
    first = [g["first_message_ms"] for g in guests]
    net = [g["first_message_ms"] - g["steps"]["scripted"] for g in guests]
    return {
        "setup": setup,
        "runs": len(guests),
        "median_ms": round(statistics.median(first), 1),
        "min_ms": round(min(first), 1),
        "max_ms": round(max(first), 1),
        "net_of_script_median_ms": round(statistics.median(net), 1),
        "paths": sorted({str(g["ice_path"]) for g in guests}),
    }
