"""Run one LanDiscovery inside a network namespace; one JSON line per event on stdout.

    python tests/lan/discovery_driver.py --name alice --seed 01 --port 4000 [--interface eth0]

Lines: ``{"event": "starting"|"started"|"advertised"|"found"|"updated"|"lost"|"stats"|
"stopped", "t": <time.monotonic()>, ...}``. ``t`` is CLOCK_MONOTONIC, which every
namespace shares, so a test or bench can compare times across hosts.

Commands on stdin, one per line: ``refresh`` (async_refresh), ``stats``, ``stop``
(also on EOF).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from p2pchat.crypto.identity import Identity
from p2pchat.discovery.events import (
    Advertised,
    DiscoveryEvent,
    LanPeer,
    PeerFound,
    PeerLost,
    PeerUpdated,
)
from p2pchat.discovery.mdns import LanDiscovery
from p2pchat.discovery.txt import PeerAdvert


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def peer_fields(peer: LanPeer) -> dict[str, Any]:
    return {
        "instance": peer.instance,
        "name": peer.name,
        "peer_id": peer.peer_id,
        "public_key": peer.public_key.hex(),
        "addresses": list(peer.addresses),
        "port": peer.port,
    }


def on_event(event: DiscoveryEvent) -> None:
    if isinstance(event, PeerFound):
        emit("found", **peer_fields(event.peer))
    elif isinstance(event, PeerUpdated):
        emit("updated", **peer_fields(event.peer))
    elif isinstance(event, PeerLost):
        emit("lost", instance=event.instance, peer_id=event.peer_id)
    elif isinstance(event, Advertised):
        emit("advertised", instance=event.instance)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="peer")
    parser.add_argument("--seed", default="00", help="hex byte repeated into a 32-byte seed")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--interface", action="append", dest="interfaces")
    parser.add_argument("--ip-version", default="both", choices=["v4", "v6", "both"])
    parser.add_argument("--liveness", type=float, default=None)
    parser.add_argument("--browse-only", action="store_true")
    parser.add_argument("--max-peers", type=int, default=256)
    parser.add_argument("--debug", action="store_true", help="log discovery at debug level")
    args = parser.parse_args()
    if args.debug:
        logging.basicConfig(stream=sys.stderr, format="%(relativeCreated)d %(name)s %(message)s")
        logging.getLogger("p2pchat.discovery").setLevel(logging.DEBUG)
        if trace := os.environ.get("DISCOVERY_ZEROCONF_TRACE"):  # a directory
            handler = logging.FileHandler(f"{trace}/{args.name}-{os.getpid()}.log")
            handler.setFormatter(logging.Formatter("%(relativeCreated)d %(name)s %(message)s"))
            logging.getLogger("zeroconf").addHandler(handler)
            logging.getLogger("zeroconf").setLevel(logging.DEBUG)

    identity = Identity(bytes.fromhex(args.seed) * (32 // len(bytes.fromhex(args.seed))))
    advert = PeerAdvert(1, identity.peer_id, identity.public_key, args.name)
    discovery = LanDiscovery(
        None if args.browse_only else advert,
        args.port,
        on_event,
        interfaces=args.interfaces,
        ip_version=args.ip_version,
        liveness_interval=args.liveness,
        max_peers=args.max_peers,
    )
    emit("starting", peer_id=advert.peer_id, public_key=advert.public_key.hex())
    await discovery.async_start()
    emit("started", instance=discovery.instance_name)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "refresh":
            await discovery.async_refresh()
            emit("refreshed")
        elif line == "stats":
            emit("stats", **vars(discovery.stats), peers=sorted(discovery.peers))
        elif line == "stop":
            break
    await discovery.async_stop()
    emit("stopped")


if __name__ == "__main__":
    asyncio.run(main())
