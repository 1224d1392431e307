"""Two real p2pchat daemons on a LAN of network namespaces, beside raw baselines.

Prints ONE JSON object with, from the same run and the same two namespaces:

* ``p2pchat.session_ready``: the connect path, over ``--reconnects`` reconnects. The
  responder (the contact with the larger key, who never offers) is restarted
  (SIGTERM, then a new daemon); the initiator's own ``watch`` stream shows
  ``session connecting`` -> ``session open``. That span is offer creation, ICE
  gathering, the sealed offer/answer over LAN HTTP, ICE checks, DTLS, SCTP and the
  stream headers: what a user waits for once the contact is visible. Beside it:
  responder process start -> open (daemon start-up, profile unlock, mDNS probing:
  what a user feels when the contact restarts the app).
* ``p2pchat.rtt``: ``send`` over the control socket (one connection per call, as the
  CLI does) -> the sender's ``watch`` shows the receipt; one message in flight.
  Includes two control-socket hops (the call, the receipt event) and the store
  writes on both nodes; the breakdown splits it.
* ``p2pchat.throughput``: ``--messages`` sends pipelined on one control connection
  (at most ``--window`` unanswered), first send -> last receipt seen by ``watch``.
* ``baseline_raw_aiortc``: two processes, one per namespace, one aiortc data channel,
  SDP relayed over pipes by this script; no crypto, no store. Open time, RTT (echo),
  one-way throughput and acked throughput (one small reply per message, like
  p2pchat's receipts), with ``bench_raw_aiortc``'s own measuring functions.
* ``baseline_ws_echo``: ``bench_ws_echo``'s aiohttp echo server in one namespace,
  its RTT measurement in the other.
* ``ratios``: p2pchat / raw.

Needs root (ip netns). ``python bench/bench_lan.py [--reconnects 5 --rounds 300
--messages 2000 --profile DIR]``; ``--profile`` runs both daemons under cProfile and
writes ``DIR/sender.prof`` and ``DIR/receiver.prof``.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._figures import Goal, cdf_points, chart_bars, chart_cdf, emit, figure  # noqa: E402
from p2pchat.control.client import ControlClient  # noqa: E402
from p2pchat.control.socket_path import socket_address  # noqa: E402
from p2pchat.control.wire import (  # noqa: E402
    EventLine,
    Request,
    decode_server_line,
    encode_request,
)
from tests.lan.chat_nodes import ChatNode, Event, befriend, cli_env  # noqa: E402
from tests.lan.netns import PYTHON, Host, Lan  # noqa: E402

DRIVER = str(REPO / "bench" / "_lan_driver.py")
TIMEOUT = 60.0
# Issue 11's goals, as ratios to the baselines measured in the same run.
CONNECT_GOAL = Goal(max_ratio=1.5)
RTT_P50_GOAL = Goal(max_ratio=2.0, max_value=1.5, unit="ms")
RTT_P99_GOAL = Goal(max_ratio=5.0)
# Sends not yet receipted at most: a sender that stores faster than its receiver
# would otherwise fill the outbox (1,000 per contact) and be refused.
MAX_UNRECEIPTED = 500
THROUGHPUT_GOAL = Goal(min_ratio=0.8, min_value=2000, unit="msg/s")
GOALS = {
    "session_connect_over_raw_open_p50": CONNECT_GOAL.text(),
    "rtt_p50": RTT_P50_GOAL.text(),
    "rtt_p99": RTT_P99_GOAL.text(),
    "throughput": THROUGHPUT_GOAL.text(),
}


# -- nodes -------------------------------------------------------------------------------


class BenchNode(ChatNode):
    """A ChatNode whose events carry arrival times and come straight off the control
    socket (``ControlClient.watch`` in a thread: no `p2pchat watch` process between)."""

    profile_to: Path | None = None

    def __init__(self, host: Host, data_dir: Path, name: str) -> None:
        self.receipts: dict[str, float] = {}  # message id -> when watch showed it
        self.arrivals: dict[str, float] = {}  # incoming message id -> when
        super().__init__(host, data_dir, name)

    def start(self, timeout: float = 30.0) -> None:
        prefix = [PYTHON]
        if self.profile_to is not None:
            prefix += ["-m", "cProfile", "-o", str(self.profile_to)]
        self.daemon = self.host.popen(
            [*prefix, "-m", "p2pchat", "--data-dir", str(self.data_dir), "daemon", "--json",
             "--interface", self.host.ifname, *self.daemon_args],
            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.daemon.stdout is not None
        line = self.daemon.stdout.readline()
        if not line:
            _, err = self.daemon.communicate(timeout=5)
            raise AssertionError(f"daemon for {self.name} did not start: {err.decode()}")
        assert json.loads(line)["type"] == "node_started"
        self._start_watch()

    def _start_watch(self) -> None:
        """Subscribe (the node has acknowledged) before returning; read in a thread."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with socket_address(ControlClient(self.data_dir).socket_path) as address:
            sock.connect(address)
        sock.sendall(encode_request(Request(1, "watch", {})))
        lines = sock.makefile("rb")
        ack = decode_server_line(lines.readline())
        if isinstance(ack, EventLine) or not ack.ok:
            raise AssertionError(f"watch refused: {ack}")
        threading.Thread(target=self._read_events, args=(sock, lines), daemon=True).start()

    def _read_events(self, sock: socket.socket, lines: Any) -> None:
        with sock, lines:
            for line in lines:
                answer = decode_server_line(line)
                if not isinstance(answer, EventLine):
                    return  # the node ended the stream
                event, now = answer.event, time.monotonic()
                event["_t"] = now
                with self._cond:
                    self.events.append(event)
                    if event.get("type") == "receipt":
                        self.receipts[event["message_id"]] = now
                    elif event.get("type") == "message" and event["direction"] == "in":
                        self.arrivals[event["message_id"]] = now
                    self._cond.notify_all()

    def _stop_watch(self) -> None:
        pass  # the stream ends with the daemon

    def wait_id(self, table: dict[str, float], message_id: str) -> float:
        deadline = time.monotonic() + TIMEOUT
        with self._cond:
            while message_id not in table:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"{self.name}: {message_id} never showed up")
            return table[message_id]

    def events_since(self, t: float, predicate: Callable[[Event], bool]) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e["_t"] >= t and predicate(e)]

    def wait_since(self, t: float, predicate: Callable[[Event], bool]) -> Event:
        return self.wait_for(lambda e: e["_t"] >= t and predicate(e), timeout=TIMEOUT)


def public_key(node: ChatNode) -> bytes:
    text = node.cli_json("id")["public_key"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session(peer: ChatNode, state: str) -> Callable[[Event], bool]:
    return lambda e: (
        e.get("type") == "session" and e["peer_id"] == peer.peer_id and e["state"] == state
    )


# -- p2pchat measurements ----------------------------------------------------------------


def measure_session_ready(initiator: BenchNode, responder: BenchNode, runs: int) -> dict[str, Any]:
    connect, found_to_open, restart_to_open, responder_side = [], [], [], []
    retried = 0
    timeline: list[list[list[Any]]] = []
    for _ in range(runs):
        stopped = time.monotonic()
        responder.stop()
        initiator.wait_since(stopped, session(responder, "closed"))
        time.sleep(0.3)  # let the goodbye and the close settle
        restarted = time.monotonic()
        responder.start()
        opened = initiator.wait_since(restarted, session(responder, "open"))
        with initiator._cond:
            before = [e for e in initiator.events if e["_t"] <= opened["_t"]]
        starts = [e for e in before if session(responder, "connecting")(e)]
        found = [
            e for e in before
            if e.get("type") == "peer_found" and e["peer_id"] == responder.peer_id
        ]  # fmt: skip
        if not starts or starts[-1]["_t"] < restarted:
            retried += 1  # an attempt begun before the restart: backoff, not connect path
        else:
            connect.append(opened["_t"] - starts[-1]["_t"])
        if found and found[-1]["_t"] >= restarted:
            found_to_open.append(opened["_t"] - found[-1]["_t"])
        restart_to_open.append(opened["_t"] - restarted)
        timeline.append(
            [
                [e["type"] + (" " + e["state"] if e["type"] == "session" else ""),
                 ms(e["_t"] - restarted)]
                for e in before
                if e["_t"] >= stopped and e.get("peer_id") == responder.peer_id
            ]
        )  # fmt: skip
        r_open = responder.wait_since(restarted, session(initiator, "open"))
        r_conn = responder.events_since(restarted, session(initiator, "connecting"))
        if r_conn:
            responder_side.append(r_open["_t"] - r_conn[-1]["_t"])
        time.sleep(0.3)
    return {
        "method": (
            "restart the responder (SIGTERM, new daemon); on the initiator's watch stream,"
            " its 'session connecting' event -> 'session open' (offer, ICE gathering,"
            " sealed offer/answer over LAN HTTP, ICE checks, DTLS, SCTP, stream headers;"
            " both events cross the same control-socket hop). Runs whose connecting event"
            " came before the restart (a retry loop with backoff) are counted in"
            " 'runs_with_retry' and left out of connect_ms."
        ),
        "runs": runs,
        "runs_with_retry": retried,
        "connect_ms": summary_ms(connect),
        "peer_found_to_open_ms": summary_ms(found_to_open),
        "responder_connecting_to_open_ms": summary_ms(responder_side),
        "responder_restart_to_open_ms": summary_ms(restart_to_open),
        "timeline_ms_from_restart": timeline,
        "responder_restart_method": (
            "monotonic clock before starting the responder's daemon process -> the"
            " initiator's 'session open': process start-up, Argon2id profile unlock, mDNS"
            " registration (probing) and discovery, then the connect path"
        ),
    }


def measure_rtt(
    a: BenchNode,
    b: BenchNode,
    rounds: int,
    size: int,
    warmup: int = 20,
    keep_going: Callable[[], bool] | None = None,
) -> dict:
    """``keep_going``, if given, is asked before each send: False ends the rounds early
    (bench_files: only messages sent while a file is still moving count)."""
    client = ControlClient(a.data_dir)
    text = "x" * size
    total, call, to_peer, to_receipt = [], [], [], []
    for i in range(warmup + rounds):
        if keep_going is not None and not keep_going():
            break
        t0 = time.monotonic()
        sent = client.call("send", peer=b.peer_id, text=text)
        t1 = time.monotonic()
        mid = sent["message_id"]
        receipt = a.wait_id(a.receipts, mid)
        arrived = b.wait_id(b.arrivals, mid)
        if i >= warmup:
            total.append(receipt - t0)
            call.append(t1 - t0)
            to_peer.append(arrived - t1)
            to_receipt.append(receipt - arrived)
    if not total:
        return {"message_chars": size, "rounds": 0}
    result = {
        "method": (
            "ControlClient.call('send') on a new control connection (as the CLI) -> the"
            " receipt event on the sender's watch stream, one message in flight. Includes"
            " the control-socket call, the sender's store writes (outbox, message,"
            " mark_sent), encryption, the data channel both ways, the receiver's store write"
            " and receipt, the sender's store writes (remove_outbox, mark_delivered) and the"
            " watch event hop"
        ),
        "message_chars": size,
        **rtt_stats(total),
        "breakdown_p50_ms": {
            "send_call": ms(statistics.median(call)),
            "call_return_to_receiver_watch": ms(statistics.median(to_peer)),
            "receiver_watch_to_sender_receipt": ms(statistics.median(to_receipt)),
        },
    }
    return result


def measure_throughput(a: BenchNode, b: BenchNode, count: int, size: int, window: int) -> dict:
    text = "y" * size
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with socket_address(ControlClient(a.data_dir).socket_path) as address:
        sock.connect(address)
    lines = sock.makefile("rb")
    ids: list[str] = []
    answered = 0
    started = time.monotonic()
    for n in range(count):
        if n >= MAX_UNRECEIPTED:  # the receiver is the slower side: keep the outbox bounded
            a.wait_id(a.receipts, ids[n - MAX_UNRECEIPTED])
        sock.sendall(encode_request(Request(n + 1, "send", {"peer": b.peer_id, "text": text})))
        if n + 1 - answered >= window:
            answered += read_answer(lines, ids)
    while answered < count:
        answered += read_answer(lines, ids)
    calls_done = time.monotonic()
    sock.close()
    last = max(a.wait_id(a.receipts, x) for x in ids)
    elapsed = last - started
    return {
        "method": (
            f"{count} 'send' requests pipelined on one control connection (at most {window}"
            f" unanswered, {MAX_UNRECEIPTED} not yet receipted), first request -> last"
            " receipt on the sender's watch stream"
        ),
        "message_chars": size,
        "messages": count,
        "window": window,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(count / elapsed),
        "send_calls_per_s": round(count / (calls_done - started)),
    }


def read_answer(lines: Any, ids: list[str]) -> int:
    answer = decode_server_line(lines.readline())
    if isinstance(answer, EventLine) or not answer.ok:
        raise AssertionError(f"send refused: {answer}")
    if answer.result["status"] != "sent":
        raise AssertionError(f"message queued, not sent: {answer.result}")
    ids.append(answer.result["message_id"])
    return 1


# -- baselines ---------------------------------------------------------------------------


def json_lines(proc: subprocess.Popen[bytes]) -> Any:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"driver exited: {proc.wait()}")
    return json.loads(line)


def send_line(proc: subprocess.Popen[bytes], doc: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(doc).encode() + b"\n")
    proc.stdin.flush()


def baseline_raw(h1: Host, h2: Host, args: argparse.Namespace) -> dict[str, Any]:
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    answerer = h2.popen([PYTHON, DRIVER, "raw-answer"], **pipes)
    offerer = h1.popen(
        [PYTHON, DRIVER, "raw-offer", "--opens", str(args.raw_opens), "--rounds",
         str(args.raw_rounds), "--duration", str(args.raw_duration),
         "--receiver-pid", str(answerer.pid), *args.raw_driver_args],
        **pipes,
    )  # fmt: skip
    try:
        while "result" not in (doc := json_lines(offerer)):
            send_line(answerer, doc)
            send_line(offerer, json_lines(answerer))
        result = doc["result"]
    finally:
        for proc in (offerer, answerer):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
    opens = result.pop("open_ms")
    return {
        "method": (
            "aiortc in two processes, one per namespace, iceServers=[]; SDP relayed over"
            " pipes through the bench process; bench_raw_aiortc's measure_rtt (remote echo)"
            " and measure_throughput (100-byte messages, at most --window unreceived);"
            " 'oneway' counts messages via one ack per 64, 'acked' gets one 1-byte reply"
            " per message (the shape of p2pchat's receipts)"
        ),
        "open_ms": {**summary_ms([t / 1000 for t in opens]), "first_ms": opens[0]},
        **result,
    }


def baseline_ws(h1: Host, h2: Host, args: argparse.Namespace) -> dict[str, Any]:
    server = h2.popen(
        [PYTHON, DRIVER, "ws-server", "--host", h2.ip],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        port = json_lines(server)["port"]
        client = h1.popen(
            [PYTHON, DRIVER, "ws-client", "--url", f"http://{h2.ip}:{port}/echo",
             "--rounds", str(args.raw_rounds)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        result = json_lines(client)["result"]
        client.wait(10)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    return {
        "method": (
            "bench_ws_echo's aiohttp echo server in the receiver's namespace, its"
            " measure_rtt (100-byte binary, one in flight) from the sender's namespace"
        ),
        **result,
    }


# -- helpers -----------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summary_ms(values_s: list[float]) -> dict[str, Any] | None:
    if not values_s:
        return None
    return {
        "n": len(values_s),
        "p50_ms": ms(statistics.median(values_s)),
        "min_ms": ms(min(values_s)),
        "max_ms": ms(max(values_s)),
    }


def rtt_stats(values_s: list[float]) -> dict[str, Any]:
    ordered = sorted(values_s)
    return {
        "rounds": len(ordered),
        "p50_ms": ms(statistics.median(ordered)),
        "p99_ms": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
        "max_ms": ms(ordered[-1]),
        "cdf_ms": cdf_points([ms(v) for v in ordered]),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--reconnects", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=300, help="p2pchat round trips")
    parser.add_argument("--messages", type=int, default=2000, help="p2pchat throughput")
    parser.add_argument("--window", type=int, default=64, help="unanswered sends at most")
    parser.add_argument("--size", type=int, default=100, help="message characters / bytes")
    parser.add_argument("--raw-opens", type=int, default=5)
    parser.add_argument("--raw-rounds", type=int, default=1000)
    parser.add_argument("--raw-duration", type=float, default=3.0)
    parser.add_argument(
        "--raw-driver-args", type=shlex.split, default=[],
        help="more options for _lan_driver.py raw-offer, e.g. '--flood-runs 1'",
    )  # fmt: skip
    parser.add_argument("--profile", type=Path, help="run the daemons under cProfile")
    args = parser.parse_args()

    started = time.monotonic()
    result: dict[str, Any] = {"benchmark": "lan", "cpus": os.cpu_count()}
    with Lan(2) as lan, tempfile.TemporaryDirectory() as tmp:
        h1, h2 = lan.hosts
        result["lan_setup_s"] = round(lan.setup_seconds, 2)
        raw = baseline_raw(h1, h2, args)
        ws = baseline_ws(h1, h2, args)

        sender = BenchNode(h1, Path(tmp) / "alice", "alice")
        receiver = BenchNode(h2, Path(tmp) / "bob", "bob")
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            sender.profile_to = args.profile.resolve() / "sender.prof"
            receiver.profile_to = args.profile.resolve() / "receiver.prof"
        sender.start()
        receiver.start()
        befriend(sender, receiver)
        if public_key(sender) < public_key(receiver):
            initiator, responder = sender, receiver
        else:
            initiator, responder = receiver, sender
        ours: dict[str, Any] = {
            "initiator": initiator.name,
            "session_ready": measure_session_ready(initiator, responder, args.reconnects),
        }
        # Both sides open again (the restarted one reconnected); a moment to settle.
        time.sleep(0.5)
        ours["rtt"] = measure_rtt(sender, receiver, args.rounds, args.size)
        ours["throughput"] = measure_throughput(
            sender, receiver, args.messages, args.size, args.window
        )
        sender.stop()
        receiver.stop()

    result["p2pchat"] = ours
    result["baseline_raw_aiortc"] = raw
    result["baseline_ws_echo"] = ws
    ready = ours["session_ready"]["connect_ms"]
    result["ratios"] = {
        "session_connect_over_raw_open_p50": ratio(
            ready and ready["p50_ms"], raw["open_ms"]["p50_ms"]
        ),
        "rtt_p50_over_raw": ratio(ours["rtt"]["p50_ms"], raw["rtt"]["p50_ms"]),
        "rtt_p99_over_raw": ratio(ours["rtt"]["p99_ms"], raw["rtt"]["p99_ms"]),
        "rtt_p50_over_ws": ratio(ours["rtt"]["p50_ms"], ws["rtt"]["p50_ms"]),
        "throughput_over_raw_oneway": ratio(
            ours["throughput"]["messages_per_s"], raw["throughput_oneway"]["messages_per_s"]
        ),
        "throughput_over_raw_acked": ratio(
            ours["throughput"]["messages_per_s"], raw["throughput_acked"]["messages_per_s"]
        ),
    }
    result["goals"] = GOALS
    result["seconds"] = round(time.monotonic() - started, 1)
    result["python"] = sys.version.split()[0]
    emit(result, figures(ours, raw, ws), charts(ours, raw, ws))


def charts(ours: dict[str, Any], raw: dict[str, Any], ws: dict[str, Any]) -> list[dict]:
    """docs/perf/rtt.svg and throughput.svg: p2pchat beside its baselines."""
    rtt_raw = raw["rtt"]["p50_ms"]
    oneway, acked = raw["throughput_oneway"], raw["throughput_acked"]
    spread = oneway["spread_messages_per_s"]
    rtt_goal = min(RTT_P50_GOAL.max_value or math.inf, (RTT_P50_GOAL.max_ratio or 0) * rtt_raw)
    return [
        chart_cdf(
            "rtt", "Message round trip between two namespaces (same run)", "ms",
            [(f"p2pchat: send → receipt (p50 {ours['rtt']['p50_ms']:g} ms)", ours["rtt"]["cdf_ms"]),
             (f"raw aiortc data channel echo (p50 {rtt_raw:g} ms)", raw["rtt"]["cdf_ms"]),
             (f"aiohttp WebSocket echo (p50 {ws['rtt']['p50_ms']:g} ms)", ws["rtt"]["cdf_ms"])],
            [(f"goal for p2pchat's p50: {rtt_goal:.2f} ms", rtt_goal)],
        ),
        chart_bars(
            "throughput", "Sustained messages per second between two namespaces (same run)",
            "100-byte messages per second (whiskers: slowest and fastest run)",
            [("p2pchat A→B, last receipt", ours["throughput"]["messages_per_s"], None),
             (f"raw aiortc one-way (median of {oneway['runs']})", oneway["messages_per_s"],
              [spread["min"], spread["max"]]),
             ("raw aiortc, one reply per message", acked["messages_per_s"], None)],
            [(f"goal: {THROUGHPUT_GOAL.min_ratio:g}x raw one-way",
              (THROUGHPUT_GOAL.min_ratio or 0) * oneway["messages_per_s"]),
             (f"goal: ≥ {THROUGHPUT_GOAL.min_value:,.0f} msg/s", THROUGHPUT_GOAL.min_value or 0)],
        ),
    ]  # fmt: skip


def figures(ours: dict[str, Any], raw: dict[str, Any], ws: dict[str, Any]) -> list[dict]:
    ready = ours["session_ready"]
    connect = ready["connect_ms"]
    restart = ready["responder_restart_to_open_ms"]
    rtt, tput = ours["rtt"], ours["throughput"]
    oneway, acked = raw["throughput_oneway"], raw["throughput_acked"]
    same = "same namespaces, same run"
    oneway_spread = oneway["spread_messages_per_s"]
    drops = sum(oneway["rcvbuf_errors"].values())
    return [
        figure("lan.session_connect_p50", "LAN: session connecting → open (p50 of reconnects)",
               connect and connect["p50_ms"], "ms",
               baseline=f"raw aiortc open, {same}", baseline_value=raw["open_ms"]["p50_ms"],
               goal=CONNECT_GOAL,
               spread=connect and [connect["min_ms"], connect["p50_ms"], connect["max_ms"]]),
        figure("lan.responder_restart_to_open_p50",
               "LAN: responder restarted → session open (start-up, unlock, mDNS)",
               restart and restart["p50_ms"], "ms"),
        figure("lan.rtt_p50", "LAN: message RTT p50 (send → receipt on watch)", rtt["p50_ms"], "ms",
               baseline=f"raw aiortc echo, {same}", baseline_value=raw["rtt"]["p50_ms"],
               goal=RTT_P50_GOAL),
        figure("lan.rtt_p99", "LAN: message RTT p99", rtt["p99_ms"], "ms",
               baseline=f"raw aiortc echo, {same}", baseline_value=raw["rtt"]["p99_ms"],
               goal=RTT_P99_GOAL),
        figure("lan.rtt_p50_vs_ws", "LAN: message RTT p50, beside a WebSocket echo",
               rtt["p50_ms"], "ms", baseline=f"aiohttp WebSocket echo, {same}",
               baseline_value=ws["rtt"]["p50_ms"]),
        figure("lan.throughput", f"LAN: sustained A→B ({tput['messages']} messages, last receipt)",
               tput["messages_per_s"], "msg/s",
               baseline=f"raw aiortc one-way, {same} (median of {oneway['runs']})",
               baseline_value=oneway["messages_per_s"], goal=THROUGHPUT_GOAL),
        figure("lan.throughput_vs_acked", "LAN: sustained A→B, beside raw one reply per message",
               tput["messages_per_s"], "msg/s", baseline=f"raw aiortc acked, {same}",
               baseline_value=acked["messages_per_s"]),
        figure("lan.raw_oneway", f"LAN baseline: raw aiortc one-way (window {oneway['window_messages']})",
               oneway["messages_per_s"], "msg/s",
               spread=[oneway_spread["min"], oneway_spread["median"], oneway_spread["max"]]),
        figure("lan.raw_oneway_udp_drops", "LAN baseline: UDP datagrams dropped in those runs",
               drops, "datagrams", goal="0 (else it measures loss)", met=drops == 0),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
