"""Cost of the encrypted profile store, beside the same store on plain SQLite.

Prints one JSON object. ``encrypted`` = the real Profile on SQLCipher (default
Argon2id limits, WAL, synchronous=NORMAL). ``plain_sqlite`` = the same Profile
class, schema and SQL over the stdlib ``sqlite3`` driver, no encryption (a
different SQLite version, see ``sqlite_versions``). ``unencrypted_same_build`` =
sqlcipher3 with no key: same SQLite build, so that gap is encryption alone.

Inserts are timed two ways: ``single`` = one transaction per message (what the
node does for each live message), ``batched`` = ``Profile.batch()`` of
``--batch`` messages per transaction (import, outbox flush). Search = median time
of each query (several runs) over ``--messages`` messages, newest 50 hits with
snippets; ``search_median_ms`` is the median across queries.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlcipher3  # noqa: E402

from bench._bench_data import PASSPHRASE, generate, plain_profile, queries  # noqa: E402
from bench._figures import emit, figure  # noqa: E402
from p2pchat.store import (  # noqa: E402
    DEFAULT_KDF_LIMITS,
    Profile,
    StoredMessage,
    create_profile,
    open_profile,
)
from p2pchat.store.keys import derive_key  # noqa: E402

STEP_MS = 1000  # one message a second


def measure_store(
    profile: Profile, messages: list[StoredMessage], args: argparse.Namespace
) -> dict[str, object]:
    single, rest = messages[: args.single], messages[args.single :]
    start = time.perf_counter()
    for message in single:
        profile.add_message(message)
    single_s = time.perf_counter() - start

    start = time.perf_counter()
    for chunk in chunks(rest, args.batch):
        with profile.batch():
            for message in chunk:
                profile.add_message(message)
    batched_s = time.perf_counter() - start

    per_query = {}
    for name, query in args.queries.items():
        runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            profile.search(query, limit=50)
            runs.append((time.perf_counter() - start) * 1000)
        per_query[name] = round(statistics.median(runs), 3)
    return {
        "insert_single_tx_per_s": round(len(single) / single_s),
        "insert_single_tx_count": len(single),
        "insert_batched_per_s": round(len(rest) / batched_s) if rest else None,
        "insert_batched_count": len(rest),
        "search_median_ms": round(statistics.median(per_query.values()), 3),
        "search_ms_by_query": per_query,
    }


def measure_unlock(data_dir: Path, runs: int) -> dict[str, float]:
    salt = (data_dir / "profile.salt").read_bytes()
    kdf = timed_runs(lambda: derive_key(PASSPHRASE, salt), runs)
    unlock = timed_runs(lambda: open_profile(data_dir, PASSPHRASE).close(), runs)
    return {"kdf_median_s": kdf, "unlock_median_s": unlock}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=5_000, help="one-transaction inserts")
    parser.add_argument("--batch", type=int, default=1_000, help="messages per transaction")
    parser.add_argument("--runs", type=int, default=7, help="runs per search query / unlock")
    args = parser.parse_args()
    args.single = min(args.single, args.messages)
    messages = [
        m for chunk in generate(args.messages, chunk=10_000, step_ms=STEP_MS) for m in chunk
    ]
    args.queries = queries()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with create_profile(
            root / "encrypted", PASSPHRASE, name="bench", identity_seed=os.urandom(32)
        ) as profile:
            encrypted = measure_store(profile, messages, args)
        encrypted["db_bytes"] = (root / "encrypted" / "profile.db").stat().st_size
        encrypted.update(measure_unlock(root / "encrypted", runs=min(args.runs, 5)))

        with plain_profile(root / "plain", sqlite3) as profile:
            plain = measure_store(profile, messages, args)
        plain["db_bytes"] = (root / "plain" / "profile.db").stat().st_size

        with plain_profile(root / "nokey", sqlcipher3) as profile:
            same_build = measure_store(profile, messages, args)
        same_build["db_bytes"] = (root / "nokey" / "profile.db").stat().st_size

    result = {
        "benchmark": "store",
        "messages": args.messages,
        "batch_size": args.batch,
        "search_limit": 50,
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
        "plain_sqlite": plain,
        "unencrypted_same_build": same_build,
        "encrypted_over_plain": ratios(encrypted, plain),
        "encrypted_over_same_build": ratios(encrypted, same_build),
    }
    emit(result, figures(result))


def figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    enc, plain = result["encrypted"], result["plain_sqlite"]
    baseline = (
        f"the same Profile on stdlib sqlite3 {result['sqlite_versions']['stdlib']}, no encryption"
    )
    n = result["messages"]

    def row(key: str, label: str, unit: str) -> dict[str, Any]:
        return figure(f"store.{key}", label, enc[key], unit, baseline=baseline,
                      baseline_value=plain[key])  # fmt: skip

    return [
        row("insert_single_tx_per_s", "store: inserts, one transaction each", "msg/s"),
        row("insert_batched_per_s", f"store: inserts, {result['batch_size']} per transaction", "msg/s"),
        row("search_median_ms", f"store: search, newest 50 with snippets ({n:,} messages)", "ms"),
        figure("store.unlock", "store: unlock (Argon2id + open)", enc["unlock_median_s"], "s"),
    ]  # fmt: skip


def chunks(items: list[StoredMessage], size: int) -> Iterator[list[StoredMessage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def timed_runs(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 4)


def ratios(a: dict[str, object], b: dict[str, object]) -> dict[str, float | None]:
    keys = ("insert_single_tx_per_s", "insert_batched_per_s", "search_median_ms")
    return {key: ratio(a[key], b[key]) for key in keys}


def ratio(a: object, b: object) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 3)
    return None


if __name__ == "__main__":
    main()
