"""Chat-like data and plain (unencrypted) profiles for the store benches.

``bench_store`` and ``bench_history`` time the same ``Profile`` over the same
messages: 3-25 Zipf-distributed words from a 5,000-word vocabulary, 20
conversations, both directions in each. Everything comes from a seeded
``random.Random`` and sorted sets, so the data and the query words are the same in
every run, whatever Python's hash seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

from p2pchat.store import DeliveryState, Direction, Profile, ProfilePaths, StoredMessage
from p2pchat.store.connection import configure
from p2pchat.store.schema import create_session_tables, migrate

PASSPHRASE = "a passphrase for the benchmark"
VOCABULARY_SIZE = 5000
CONVERSATIONS = 20
START_MS = 1_700_000_000_000
SEED = 1


def vocabulary(rng: random.Random) -> list[str]:
    """``VOCABULARY_SIZE`` distinct words in rank order (rank order = frequency order)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCABULARY_SIZE:
        words.add("".join(rng.choices(letters, k=rng.randint(3, 9))))
    # sorted first: a set's iteration order changes with the hash seed
    return sorted(sorted(words), key=lambda w: rng.random())


def generate(
    count: int, *, chunk: int, step_ms: int, seed: int = SEED
) -> Iterator[list[StoredMessage]]:
    """``count`` messages in lists of ``chunk``, one every ``step_ms``: the same for
    the same arguments, so a profile and its baseline get identical data."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative = list(accumulate(1 / rank for rank in range(1, len(words) + 1)))
    for start in range(0, count, chunk):
        batch = []
        for n in range(start, min(start + chunk, count)):
            body = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(3, 25)))
            incoming = (n // CONVERSATIONS) % 2 == 1  # each conversation: out, in, out…
            batch.append(
                StoredMessage(
                    message_id=n.to_bytes(16, "big"),
                    conversation_id=f"guest:{n % CONVERSATIONS}",
                    direction=Direction.IN if incoming else Direction.OUT,
                    sender=f"guest{n % CONVERSATIONS}" if incoming else "me",
                    timestamp_ms=START_MS + n * step_ms,
                    body=body,
                    delivery=DeliveryState.DELIVERED,
                )
            )
        yield batch


def queries(seed: int = SEED) -> dict[str, str]:
    """Search queries by name, from the vocabulary ``generate(seed=seed)`` draws."""
    words = vocabulary(random.Random(seed))  # the same first draw as generate()
    return {
        "common_word": words[0],
        "medium_word": words[50],
        "rare_word": words[3000],
        "two_words": f"{words[5]} {words[20]}",
        "prefix": words[10][:3] + "*",
        "absent": "zzzzzzzzzzzz",
    }


def plain_profile(data_dir: Path, driver: Any) -> Profile:
    """A new Profile without encryption: same schema and SQL over ``driver`` (stdlib
    ``sqlite3``, or ``sqlcipher3`` with no key: the same SQLite build)."""
    data_dir.mkdir()
    conn = driver.connect(data_dir / "profile.db", isolation_level=None)
    configure(conn)
    migrate(conn)
    create_session_tables(conn)
    conn.execute("INSERT INTO identity VALUES (1, ?, 'bench')", (bytes(32),))
    return Profile(conn, ProfilePaths(data_dir))


def reopen_plain_profile(data_dir: Path, driver: Any) -> Profile:
    """A fresh connection to a ``plain_profile`` (as the CLI opens one per command)."""
    conn = driver.connect(data_dir / "profile.db", isolation_level=None)
    configure(conn)
    create_session_tables(conn)
    return Profile(conn, ProfilePaths(data_dir))
