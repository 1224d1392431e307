"""``p2pchat history`` on a profile of 100,000 messages: every form still works.

The profile is built once for the module (batched inserts, a few seconds) with
known contents, so counts can be checked exactly: 8 conversations (4 contacts,
4 guests) taking turns, one message a minute from 2026-01-01T00:00Z, a rare word
in every 1000th message and a common one in every other.
"""

from __future__ import annotations

import functools
import json
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import p2pchat.store
from p2pchat.cli import main
from p2pchat.crypto.identity import Identity
from p2pchat.store import (
    Contact,
    DeliveryState,
    Direction,
    KdfLimits,
    StoredMessage,
    TrustState,
    contact_conversation_id,
    create_profile,
    guest_conversation_id,
    open_profile,
)

FAST = KdfLimits(opslimit=1, memlimit=8192)
PASSPHRASE = "correct horse battery staple"
MESSAGES = 100_000
CHUNK = 5_000
START_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
MINUTE_MS = 60_000
CONTACTS = [(Identity(bytes([i + 1]) * 32), f"contact{i}") for i in range(4)]
GUESTS = [(guest_conversation_id(f"g{i}"), f"guest{i}") for i in range(4)]
CONVERSATIONS = [contact_conversation_id(ident.public_key) for ident, _ in CONTACTS] + [
    conversation for conversation, _ in GUESTS
]
WORDS = ["hello", "there", "about", "tonight", "maybe", "coffee", "later", "today", "sure"]


def body_of(n: int) -> str:
    words = [WORDS[(n * 7 + k) % len(WORDS)] for k in range(n % 5 + 3)]
    if n % 2 == 0:
        words.append("common")
    if n % 1000 == 0:
        words.append("zebra")
    return " ".join(words)


@pytest.fixture(scope="module")
def large_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("large") / "profile"
    with create_profile(
        data_dir, PASSPHRASE, name="me", identity_seed=bytes(32), kdf_limits=FAST
    ) as profile:
        for ident, name in CONTACTS:
            profile.upsert_contact(Contact(ident.public_key, name, TrustState.ACCEPTED, False, 1))
        for start in range(0, MESSAGES, CHUNK):
            with profile.batch():
                for n in range(start, start + CHUNK):
                    conversation = n % len(CONVERSATIONS)
                    outgoing = n % 3 == 0
                    profile.add_message(
                        StoredMessage(
                            message_id=n.to_bytes(16, "big"),
                            conversation_id=CONVERSATIONS[conversation],
                            direction=Direction.OUT if outgoing else Direction.IN,
                            sender="me" if outgoing else _name(conversation),
                            timestamp_ms=START_MS + n * MINUTE_MS,
                            body=body_of(n),
                            delivery=DeliveryState.DELIVERED,
                        )
                    )
    return data_dir


@pytest.fixture
def profile_dir(large_profile: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(
        p2pchat.store, "open_profile", functools.partial(open_profile, kdf_limits=FAST)
    )
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", PASSPHRASE)
    return large_profile


def history_json(capsys: pytest.CaptureFixture[str], profile_dir: Path, *argv: str) -> object:
    started = time.perf_counter()
    assert main(["--data-dir", str(profile_dir), "history", "--json", *argv]) == 0
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"history {argv} took {elapsed:.1f} s"  # a hang guard, not a goal
    return json.loads(capsys.readouterr().out)


def test_listing(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = history_json(capsys, profile_dir)
    assert isinstance(rows, list)
    assert len(rows) == 8
    assert sum(r["message_count"] for r in rows) == MESSAGES
    assert {r["message_count"] for r in rows} == {MESSAGES // 8}
    last = MESSAGES - 1
    assert rows[0]["conversation"] == CONVERSATIONS[last % 8]
    assert rows[0]["last_message_ms"] == START_MS + last * MINUTE_MS
    assert {r["name"] for r in rows} == {name for _, name in CONTACTS + GUESTS}
    assert main(["--data-dir", str(profile_dir), "history"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "8 conversations, 100,000 messages"


def test_filters(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    since = START_MS + 10 * 86_400_000
    until = START_MS + 20 * 86_400_000
    expected = [
        n for n in range(MESSAGES) if n % 8 == 5 and since <= START_MS + n * MINUTE_MS < until
    ]
    argv = ["guest1", "--since", "2026-01-11T00:00Z", "--until", "2026-01-21T00:00:00+00:00"]
    rows = history_json(capsys, profile_dir, *argv)
    assert isinstance(rows, list)
    assert [int(r["message_id"], 16) for r in rows] == expected
    rows = history_json(capsys, profile_dir, "contact0", "--limit", "30")
    assert isinstance(rows, list)
    assert [int(r["message_id"], 16) for r in rows] == list(range(MESSAGES - 8, 0, -8))[:30][::-1]
    rows = history_json(capsys, profile_dir, "contact0")
    assert isinstance(rows, list)
    assert len(rows) == MESSAGES // 8


def test_search(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = history_json(capsys, profile_dir, "--search", "zebra")
    assert isinstance(result, dict)
    assert (result["total"], result["shown"]) == (100, 50)
    assert [int(h["message_id"], 16) for h in result["hits"]] == list(range(99_000, 49_000, -1000))
    result = history_json(capsys, profile_dir, "--search", "zeb*", "--limit", "200")
    assert isinstance(result, dict)
    assert (result["total"], result["shown"]) == (100, 100)
    result = history_json(capsys, profile_dir, "--search", "common")
    assert isinstance(result, dict)
    assert result["total"] == MESSAGES // 2
    result = history_json(capsys, profile_dir, "--search", "common zebra", "guest3")
    assert isinstance(result, dict)
    expected = sum(1 for n in range(0, MESSAGES, 1000) if n % 8 == 7)
    assert result["total"] == expected == 0  # every 1000th is conversation 0 (1000 % 8 == 0)
    result = history_json(capsys, profile_dir, "--search", "common zebra", "contact0")
    assert isinstance(result, dict)
    assert result["total"] == 100
    since = ["--search", "zebra", "--since", "2026-02-01T00:00Z"]
    result = history_json(capsys, profile_dir, *since)
    assert isinstance(result, dict)
    first_in_february = (31 * 24 * 60 + 999) // 1000 * 1000
    assert result["total"] == len(range(first_in_february, MESSAGES, 1000))
    assert main(["--data-dir", str(profile_dir), "history", "--search", "zebra"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 51
    assert lines[-1] == '100 messages match "zebra"; showing the newest 50 (--limit N for more)'


def test_export(tmp_path: Path, profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "contact1.json"
    argv = ["--data-dir", str(profile_dir), "history", "contact1", "--export", str(target)]
    assert main(argv) == 0
    assert capsys.readouterr().err.startswith(f"warning: {target} is not encrypted")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert exported["message_count"] == len(exported["messages"]) == MESSAGES // 8
    assert exported["messages"][-1]["text"] == body_of(MESSAGES - 7)
    markdown = tmp_path / "guest0.md"
    argv = ["--data-dir", str(profile_dir), "history", "guest0", "--export", str(markdown)]
    assert main(argv) == 0
    lines = markdown.read_text(encoding="utf-8").splitlines()
    assert sum(1 for line in lines if line.startswith("- **")) == MESSAGES // 8


def _name(conversation: int) -> str:
    names = [name for _, name in CONTACTS + GUESTS]
    return names[conversation]
