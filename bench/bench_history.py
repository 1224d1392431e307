"""What `p2pchat history` costs on a big profile, beside the same data on plain SQLite.

Prints one JSON object. One profile of ``--messages`` messages (default 1,000,000;
chat-like, Zipf-distributed words, 20 conversations) is built once in a temporary
directory with batched inserts (``build_s``), then timed:

* ``search_top50_ms``: ``Profile.search(query, limit=50)`` (newest 50 hits with
  snippets, what ``history --search`` shows), median of ``--runs``, per query;
* ``count_ms``: ``Profile.search_count(query)`` (the "N messages match" total);
* ``conversations_ms`` (the ``history`` listing) and ``range_ms`` (one
  conversation, a 1-day ``--since/--until`` window, last 50);
* ``unlock_s``: ``open_profile`` with the real Argon2id limits, median;
  ``cold_search_ms``: unlock excluded, the first search on a fresh connection.

Baseline, same run: the same Profile class, schema (external-content FTS5 table,
same tokenizer), data and SQL on the stdlib ``sqlite3`` module with no encryption.
If the stdlib build lacks FTS5, ``sqlcipher3`` with no key is used instead and
``baseline.driver`` says so.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlcipher3  # noqa: E402

from bench._bench_data import (  # noqa: E402
    CONVERSATIONS,
    PASSPHRASE,
    START_MS,
    generate,
    plain_profile,
    queries,
    reopen_plain_profile,
)
from bench._figures import emit, figure  # noqa: E402
from p2pchat.store import DEFAULT_KDF_LIMITS, Profile, create_profile, open_profile  # noqa: E402

STEP_MS = 30_000  # one message every 30 s: 1M messages span ~347 days
DAY_MS = 86_400_000
#: The queries timed here (bench_store times all of _bench_data.queries()).
QUERIES = ("common_word", "rare_word", "two_words", "prefix")


def build(profile: Profile, args: argparse.Namespace) -> dict[str, float]:
    """Insert every message in ``--batch`` transactions; time the inserts only."""
    inserting = 0.0
    started = time.perf_counter()
    for chunk in generate(args.messages, chunk=args.batch, step_ms=STEP_MS):
        start = time.perf_counter()
        with profile.batch():
            for message in chunk:
                profile.add_message(message)
        inserting += time.perf_counter() - start
    return {
        "build_s": round(inserting, 2),
        "build_with_generation_s": round(time.perf_counter() - started, 2),
        "inserts_per_s": round(args.messages / inserting),
    }


def measure_queries(profile: Profile, args: argparse.Namespace) -> dict[str, Any]:
    search: dict[str, float] = {}
    count: dict[str, float] = {}
    totals: dict[str, int] = {}
    for name, query in args.queries.items():
        search[name] = timed_ms(lambda q=query: profile.search(q, limit=50), args.runs)
        count[name] = timed_ms(lambda q=query: profile.search_count(q), args.runs)
        totals[name] = profile.search_count(query)
    middle_ms = START_MS + args.messages * STEP_MS // 2
    return {
        "search_top50_ms": search,
        "search_top50_median_ms": round(statistics.median(search.values()), 3),
        "count_ms": count,
        "count_median_ms": round(statistics.median(count.values()), 3),
        "hits": totals,
        "conversations_ms": timed_ms(profile.conversations, args.runs),
        "range_ms": timed_ms(
            lambda: profile.messages(
                "guest:3", since_ms=middle_ms, until_ms=middle_ms + DAY_MS, limit=50
            ),
            args.runs,
        ),
    }


def measure_unlock(data_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    unlock, cold = [], []
    for _ in range(args.unlock_runs):
        start = time.perf_counter()
        profile = open_profile(data_dir, PASSPHRASE)
        unlock.append(time.perf_counter() - start)
        try:
            start = time.perf_counter()
            profile.search(args.queries["two_words"], limit=50)
            cold.append((time.perf_counter() - start) * 1000)
        finally:
            profile.close()
    return {
        "unlock_s": round(statistics.median(unlock), 3),
        "cold_search_ms": round(statistics.median(cold), 3),
    }


def stdlib_has_fts5() -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE probe USING fts5 (body)")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="messages per transaction")
    parser.add_argument("--runs", type=int, default=7, help="runs per query (median)")
    parser.add_argument("--unlock-runs", type=int, default=3)
    args = parser.parse_args()
    args.queries = {name: query for name, query in queries().items() if name in QUERIES}
    started = time.perf_counter()

    if stdlib_has_fts5():
        baseline_driver: Any = sqlite3
        baseline_name = f"stdlib sqlite3 {sqlite3.sqlite_version}, no encryption"
    else:
        baseline_driver = sqlcipher3
        baseline_name = (
            f"sqlcipher3 {sqlcipher3.sqlite_version} with no key (stdlib sqlite3 has no FTS5)"
        )

    with tempfile.TemporaryDirectory(prefix="bench_history.") as tmp:
        root = Path(tmp)
        progress(f"building the encrypted profile of {args.messages:,} messages")
        with create_profile(
            root / "encrypted", PASSPHRASE, name="bench", identity_seed=os.urandom(32)
        ) as profile:
            encrypted: dict[str, Any] = build(profile, args)
            profile.close()  # a fresh connection for the queries, as the CLI has
        encrypted["db_bytes"] = (root / "encrypted" / "profile.db").stat().st_size
        progress("timing the encrypted profile")
        encrypted.update(measure_unlock(root / "encrypted", args))
        with open_profile(root / "encrypted", PASSPHRASE) as profile:
            encrypted.update(measure_queries(profile, args))

        progress(f"building the baseline ({baseline_name})")
        with plain_profile(root / "plain", baseline_driver) as profile:
            baseline: dict[str, Any] = build(profile, args)
        baseline["db_bytes"] = (root / "plain" / "profile.db").stat().st_size
        progress("timing the baseline")
        with reopen_plain_profile(root / "plain", baseline_driver) as profile:
            baseline.update(measure_queries(profile, args))

    result = {
        "benchmark": "history",
        "messages": args.messages,
        "conversations": CONVERSATIONS,
        "batch_size": args.batch,
        "search_limit": 50,
        "runs": args.runs,
        "queries": args.queries,
        "kdf_limits": {
            "opslimit": DEFAULT_KDF_LIMITS.opslimit,
            "memlimit_mib": DEFAULT_KDF_LIMITS.memlimit // 2**20,
        },
        "sqlite_versions": {
            "sqlcipher3": sqlcipher3.sqlite_version,
            "stdlib": sqlite3.sqlite_version,
        },
        "encrypted": encrypted,
        "baseline": {"driver": baseline_name, **baseline},
        "encrypted_over_baseline": {
            key: ratio(encrypted[key], baseline[key])
            for key in (
                "build_s",
                "search_top50_median_ms",
                "count_median_ms",
                "conversations_ms",
                "range_ms",
                "db_bytes",
            )
        },
        "total_s": round(time.perf_counter() - started, 1),
    }
    emit(result, figures(result))


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    enc, base = result["encrypted"], result["baseline"]
    n = f"{result['messages']:,} messages"
    baseline = f"the same Profile, {base['driver']}"

    def row(key: str, label: str, unit: str) -> dict[str, Any]:
        return figure(f"history.{key}", label, enc[key], unit, baseline=baseline,
                      baseline_value=base[key])  # fmt: skip

    return [
        row("build_s", f"history: build {n} (batched inserts)", "s"),
        row("search_top50_median_ms", f"history: search, newest 50 ({n}, median of queries)", "ms"),
        row("count_median_ms", "history: total-count query (median of queries)", "ms"),
        row("conversations_ms", f"history: conversation listing ({n})", "ms"),
        row("range_ms", "history: one conversation, one day, last 50", "ms"),
        figure("history.unlock", "history: unlock (Argon2id + open)", enc["unlock_s"], "s"),
        figure("history.cold_search", "history: first search on a fresh connection",
               enc["cold_search_ms"], "ms"),
    ]  # fmt: skip


def timed_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up: the first run pays for reading pages from disk
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def ratio(a: object, b: object) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 3)
    return None


def progress(text: str) -> None:
    print(f"bench_history: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
