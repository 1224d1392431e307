"""bench_files' chat part: message RTT while a file moves between the same two daemons.

Issue 13: "chat messages stay responsive during a transfer (a message sent during a
1 GB transfer arrives within the usual RTT plus one block's time)". The RTT is
bench_lan's ``measure_rtt`` (``send`` on the control socket -> the receipt on the
sender's watch stream, one message in flight), alice -> bob, the file's direction:

* ``idle``: the daemons idle (the baseline);
* ``direct``: while alice sends bob a file over the direct TCP path (the default);
* ``datachannel``: the same with new TCP connections to bob dropped (nftables, as
  tests/lan/test_lan_files_direct.py does): the file goes over ``p2pchat-files``,
  beside the chat channel in the same SCTP association. The chat session is already
  up (UDP), so the rule does not touch it.

A message counts only if, when it is sent, neither side has seen the file end (each
case stops at ``--chat-messages`` or at the end of the file, whichever comes first).
Goal: the p50 during a transfer ≤ the idle p50 + one block's time (BLOCK_BYTES at the
file rate of that transfer, from the receiver's first ``receiving`` event to
``file_done``); the p99 beside the idle p99 + one block, without a goal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from bench._figures import Goal, figure
from bench.bench_lan import BenchNode, measure_rtt
from p2pchat.protocol.file_wire import BLOCK_BYTES
from tests.lan.test_lan_files_direct import FAULTS, nft

CHAT_GOAL = Goal(max_ratio=1.0)  # p50 ≤ idle p50 + one block's time (the baseline)
CASES = ("direct", "datachannel")
MESSAGE_CHARS = 100  # as bench_lan's default
END_EVENTS = ("file_done", "file_failed", "file_cancelled")


class SendFile(Protocol):
    """bench_files.send_file_once with the file, its hash and size bound."""

    def __call__(self, during: Callable[[str, float], dict[str, Any]]) -> dict[str, Any]: ...


def measure_chat(
    alice: BenchNode, bob: BenchNode, send_file: SendFile, messages: int
) -> dict[str, Any]:
    """The idle RTT, then the RTT during one transfer on each path (see the docstring)."""
    result: dict[str, Any] = {"messages_at_most": messages, "message_chars": MESSAGE_CHARS}
    result["idle"] = strip(measure_rtt(alice, bob, messages, MESSAGE_CHARS), keep_method=True)
    for case in CASES:
        if case == "datachannel":
            nft(bob.host, "tcp flags & (syn | ack) == syn counter drop")  # no new TCP to bob
        try:
            result[case] = during_transfer(alice, bob, send_file, messages, case)
        finally:
            if case == "datachannel":
                bob.host.run(["nft", "delete", "table", "inet", FAULTS])
    return result


def during_transfer(
    alice: BenchNode, bob: BenchNode, send_file: SendFile, messages: int, case: str
) -> dict[str, Any]:
    sends: list[float] = []
    moving_since: list[float] = []  # the receiver's first ``receiving`` event

    def measure(tid: str, t0: float) -> dict[str, Any]:
        moving_since.extend(
            e["_t"] for e in bob.events_since(
                t0, lambda e: e.get("transfer_id") == tid and e.get("state") == "receiving"
            )[:1]
        )  # fmt: skip

        def moving() -> bool:  # asked before each send
            def ended(e: dict[str, Any]) -> bool:
                return e.get("transfer_id") == tid and e.get("type") in END_EVENTS

            if alice.events_since(t0, ended) or bob.events_since(t0, ended):
                return False
            sends.append(time.monotonic())
            return True

        return strip(measure_rtt(alice, bob, messages, MESSAGE_CHARS, warmup=0, keep_going=moving))

    row = send_file(measure)
    rtt: dict[str, Any] = row.pop("during")
    moved_s = row["transfer_s"]  # receiver's first ``receiving`` -> file_done
    rate = row["transfer_mb_per_s"]
    counted = rtt["rounds"]
    return {
        "path_used": row["path_used"],
        "path_ok": row["path_used"] == case,
        "bytes_ok": row["bytes_ok"],
        "file_mb_per_s": rate,
        "block_ms": round(BLOCK_BYTES / (rate * 1e6) * 1000, 3) if rate else None,
        "counted": counted,
        # Where the counted sends fell in the transfer: first and last send, seconds
        # after the receiver's first ``receiving`` event, beside the transfer's length.
        "sends_s": [round(sends[0] - moving_since[0], 3),
                    round(sends[counted - 1] - moving_since[0], 3)]
        if counted and moving_since else None,
        "transfer_s": moved_s,
        "rtt": rtt,
        "transfer": row,
    }  # fmt: skip


def strip(rtt: dict[str, Any], keep_method: bool = False) -> dict[str, Any]:
    """measure_rtt's answer without its CDF (100 points per case is noise here) and,
    but for the idle case, its method (the same text each time)."""
    drop = {"cdf_ms"} if keep_method else {"cdf_ms", "method"}
    return {k: v for k, v in rtt.items() if k not in drop}


def figures(chat: dict[str, Any], size_label: str) -> list[dict[str, Any]]:
    idle = chat["idle"]
    rows = [
        figure("files.chat.idle_p50", "chat during files: message RTT p50, daemons idle",
               idle.get("p50_ms"), "ms"),
    ]  # fmt: skip
    for case in CASES:
        c = chat[case]
        block = c["block_ms"]
        ok = c["path_ok"] and c["counted"]
        rtt = c["rtt"]
        for q in ("p50", "p99"):
            base = idle.get(f"{q}_ms")
            baseline_value = round(base + block, 3) if base is not None and block else None
            rows.append(
                figure(
                    f"files.chat.{case}_{q}",
                    f"chat during a {size_label} transfer, {case} path: message RTT {q}"
                    f" ({c['counted']} messages sent while it moved)",
                    rtt.get(f"{q}_ms") if ok else None, "ms",
                    baseline=f"idle RTT {q} + one {BLOCK_BYTES // 1024} KiB block at"
                    f" {c['file_mb_per_s']} MB/s ({block} ms), same daemons, same run",
                    baseline_value=baseline_value,
                    goal=CHAT_GOAL if q == "p50" else None,
                )
            )  # fmt: skip
    return rows
