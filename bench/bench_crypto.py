"""Per-frame cost of p2pchat's chat-frame encryption, beside raw PyNaCl secretbox.

Prints one JSON object. ``p2pchat`` = encode a chat frame + secretstream push on
one side, pull + decode on the other, through the real Session objects;
``baseline`` = ``nacl.secret.SecretBox`` encrypt + decrypt of the same bytes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import nacl.secret

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._figures import emit, figure
from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.protocol.session import Role, Session

NOW = 1_700_000_000_000


def open_pair() -> tuple[Session, Session]:
    key = LinkSecret.generate().envelope_key
    # One frame per message (no batches): this times the crypto of a frame.
    a = Session(Role.INITIATOR, LinkEnvelopes(key, ReplayGuard()), batch=False)
    b = Session(Role.RESPONDER, LinkEnvelopes(key, ReplayGuard()), batch=False)
    b.receive_offer(a.make_offer("v=0", NOW), NOW)
    a.receive_answer(b.make_answer("v=0", NOW), NOW)
    a.receive_data(b.stream_header(), NOW)
    b.receive_data(a.stream_header(), NOW)
    return a, b


def time_p2pchat(text: str, frames: int) -> float:
    a, b = open_pair()
    start = time.perf_counter()
    for _ in range(frames):
        _, data = a.send_text(text, NOW)
        b.receive_data(data, NOW)
    return (time.perf_counter() - start) / frames * 1e6


def time_secretbox(text: str, frames: int) -> float:
    box = nacl.secret.SecretBox(os.urandom(32))
    payload = text.encode()
    start = time.perf_counter()
    for _ in range(frames):
        box.decrypt(box.encrypt(payload))
    return (time.perf_counter() - start) / frames * 1e6


def time_handshake(rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        open_pair()
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, object] = {"benchmark": "crypto", "frames_per_repeat": args.frames}
    for size in (100, 4096):
        text = "x" * size
        ours = statistics.median(time_p2pchat(text, args.frames) for _ in range(args.repeats))
        base = statistics.median(time_secretbox(text, args.frames) for _ in range(args.repeats))
        results[f"body_{size}B"] = {
            "p2pchat_seal_open_us": round(ours, 2),
            "baseline_secretbox_seal_open_us": round(base, 2),
            "ratio": round(ours / base, 2),
        }
    results["handshake_in_memory_us"] = round(time_handshake(200), 1)
    rows = []
    for size in (100, 4096):
        body: Any = results[f"body_{size}B"]
        rows.append(
            figure(
                f"crypto.seal_open_{size}B",
                f"chat frame, {size}-byte body: encode + push, pull + decode",
                body["p2pchat_seal_open_us"],
                "µs",
                baseline="PyNaCl SecretBox encrypt + decrypt, same run",
                baseline_value=body["baseline_secretbox_seal_open_us"],
            )
        )
    rows.append(
        figure(
            "crypto.handshake",
            "session handshake in memory (offer/answer + stream headers)",
            results["handshake_in_memory_us"],
            "µs",
        )
    )
    emit(results, rows)


if __name__ == "__main__":
    main()
