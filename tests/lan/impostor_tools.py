"""Impostors on the LAN: hosts that claim a contact's name with keys of their own.

Attacker side, run in the attacker's namespace as
``python -c "from tests.lan.impostor_tools import main; ..." MODE ARGS...``; each mode
prints one JSON object:

* ``adverts IP NAME COUNT PORT [INSTANCE]``: COUNT well-formed ``_p2pchat._tcp``
  adverts, each with a fresh key, under NAME; with INSTANCE, all under that one
  DNS-SD instance name (an advert that keeps changing its key), else one instance each.
* ``requests URL RECIPIENT_KEY NAME COUNT SOURCE_IP,...``: COUNT contact requests
  named NAME, each sealed from a fresh key, spread over the source addresses.

Nothing here asks the node anything that any LAN host could not send.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time
from typing import Any

from tests.lan.abuse_tools import _lan_envelope, advert_packet, mdns_sender


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "adverts":
        result = _adverts(*args)
    elif mode == "requests":
        result = asyncio.run(_requests(*args))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result), flush=True)


def _adverts(
    my_ip: str, name: str, count_text: str, port_text: str, instance_name: str = ""
) -> dict[str, Any]:
    from nacl.signing import SigningKey

    count, port = int(count_text), int(port_text)
    sock = mdns_sender(my_ip)
    start = time.monotonic()
    for i in range(count):
        key = bytes(SigningKey.generate().verify_key)
        out = advert_packet(key, name, instance_name or f"{name} {i}", f"impostor-{i}", port, my_ip)
        for packet in out.packets():
            sock.sendto(packet, ("224.0.0.251", 5353))
        if i % 100 == 99:
            time.sleep(0.02)  # keep the kernel's socket buffers from dropping most of them
    sock.close()
    return {"adverts": count, "seconds": round(time.monotonic() - start, 2)}


async def _requests(
    url: str, recipient_b64: str, name: str, count_text: str, sources_text: str
) -> dict[str, Any]:
    import aiohttp

    count, sources = int(count_text), sources_text.split(",")
    statuses: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    body = json.dumps({"name": name}).encode()

    async def from_source(source: str, n: int) -> None:
        connector = aiohttp.TCPConnector(limit=4, local_addr=(source, 0))
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def one() -> None:
                envelope = _lan_envelope(recipient_b64, body=body)
                try:
                    async with http.post(url, data=envelope) as response:
                        statuses[str(response.status)] += 1
                        if response.status >= 400:
                            reasons[(await response.text()).strip()[:80]] += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    statuses[f"error:{type(exc).__name__}"] += 1

            await asyncio.gather(*(one() for _ in range(n)))

    start = time.monotonic()
    share = [count // len(sources) + (i < count % len(sources)) for i in range(len(sources))]
    await asyncio.gather(*(from_source(s, n) for s, n in zip(sources, share, strict=True)))
    return {
        "sent": count, "sources": len(sources), "seconds": round(time.monotonic() - start, 2),
        "statuses": dict(statuses), "reasons": dict(reasons),
    }  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
