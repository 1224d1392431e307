"""``p2pchat history`` against a real SQLCipher profile, through ``cli.main``.

The profile holds two contacts with messages (alice, bob), two contacts without
(Sam, sam: an ambiguous name), and a browser guest (Gina, ``guest:g1``). Times
are local to a fixed zone (UTC+2, no DST) so dates read the same on every machine.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from datetime import datetime
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

FAST = KdfLimits(opslimit=1, memlimit=8192)  # tests only: the real default is slow on purpose
PASSPHRASE = "correct horse battery staple"
ZONE = "XYZ-2"  # POSIX TZ: UTC+2 all year, no tz database needed
ALICE, BOB = Identity(bytes([1]) * 32), Identity(bytes([2]) * 32)
SAM1, SAM2 = Identity(bytes([3]) * 32), Identity(bytes([4]) * 32)
ALICE_CONVERSATION = contact_conversation_id(ALICE.public_key)
BOB_CONVERSATION = contact_conversation_id(BOB.public_key)
GINA_CONVERSATION = guest_conversation_id("g1")
WARNING = "warning: {} is not encrypted: anyone who can read it can read this conversation\n"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def local_zone() -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = ZONE
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def local_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def stored(
    conversation: str,
    when_ms: int,
    body: str,
    *,
    sender: str,
    outgoing: bool = False,
    delivery: DeliveryState | None = None,
) -> StoredMessage:
    return StoredMessage(
        message_id=next(_ids).to_bytes(16, "big"),
        conversation_id=conversation,
        direction=Direction.OUT if outgoing else Direction.IN,
        sender=sender,
        timestamp_ms=when_ms,
        body=body,
        delivery=delivery or (DeliveryState.SENT if outgoing else DeliveryState.DELIVERED),
    )


@pytest.fixture
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_zone: None) -> Path:
    monkeypatch.setattr(
        p2pchat.store, "open_profile", functools.partial(open_profile, kdf_limits=FAST)
    )
    monkeypatch.setenv("P2PCHAT_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("NO_COLOR", raising=False)
    data_dir = tmp_path / "profile"
    now_ms = round(time.time() * 1000)
    with create_profile(
        data_dir, PASSPHRASE, name="me", identity_seed=bytes(32), kdf_limits=FAST
    ) as profile:
        for ident, name in ((ALICE, "alice"), (BOB, "bob"), (SAM1, "Sam"), (SAM2, "sam")):
            profile.upsert_contact(Contact(ident.public_key, name, TrustState.ACCEPTED, False, 1))
        with profile.batch():
            for message in (
                stored(ALICE_CONVERSATION, local_ms("2026-11-20 09:00"), "hi, lunch tomorrow?",
                       sender="alice"),
                stored(ALICE_CONVERSATION, local_ms("2026-11-20 09:05"),
                       "yes! *lunch* at noon [ok]", sender="me", outgoing=True),
                stored(ALICE_CONVERSATION, local_ms("2026-11-21 18:00"),
                       "see you at the lunch place\nsecond line", sender="alice"),
                stored(ALICE_CONVERSATION, local_ms("2026-11-22 08:00"),
                       "running late \x1b[31mred\x1b[0m", sender="me", outgoing=True,
                       delivery=DeliveryState.PENDING),
                stored(BOB_CONVERSATION, local_ms("2026-11-19 10:00"), "budget meeting notes",
                       sender="bob"),
                stored(BOB_CONVERSATION, now_ms - 3_600_000, "meeting moved", sender="bob"),
                stored(GINA_CONVERSATION, local_ms("2026-11-22 12:00"),
                       "hello from the browser, lunch?", sender="Gina"),
                stored(GINA_CONVERSATION, local_ms("2026-11-22 12:01"), "hi Gina",
                       sender="me", outgoing=True),
            ):  # fmt: skip
                assert profile.add_message(message)
    return data_dir


def run(profile_dir: Path, *argv: str) -> int:
    return main(["--data-dir", str(profile_dir), "history", *argv])


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("p2pchat: ")
    return captured.err.removeprefix("p2pchat: ").rstrip("\n")


# -- listing -----------------------------------------------------------------------


def test_lists_conversations_most_recent_first(
    profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(profile_dir) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PEER", "ID", "LAST", "MESSAGE", "MESSAGES"]
    assert [line.split()[0] for line in lines[1:4]] == ["bob", "Gina", "alice"]
    assert lines[2].split()[1:] == ["guest:g1", "2026-11-22", "12:01:00", "2"]
    assert lines[3].split()[1:] == [ALICE.peer_id, "2026-11-22", "08:00:00", "4"]
    assert lines[4] == "3 conversations, 8 messages"
    assert len(lines) == 5
    # Aligned: every column starts at the same place on every row.
    for column in ("PEER ID", "LAST MESSAGE"):
        start = lines[0].index(column)
        assert all(line[start - 2 : start] == "  " for line in lines[1:4])
        assert all(line[start] != " " for line in lines[1:4])
    assert len({len(line) for line in lines[:4]}) == 1  # counts right-aligned


def test_lists_conversations_as_json(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "--json", "--limit", "2") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    rows = json.loads(captured.out)
    assert [r["name"] for r in rows] == ["bob", "Gina"]
    assert rows[1] == {
        "conversation": "guest:g1",
        "name": "Gina",
        "kind": "guest",
        "peer_id": "guest:g1",
        "last_message_ms": local_ms("2026-11-22 12:01"),
        "message_count": 2,
    }
    assert rows[0]["kind"] == "contact"
    assert rows[0]["peer_id"] == BOB.peer_id


def test_empty_history(
    tmp_path: Path, profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    create_profile(empty, PASSPHRASE, name="x", identity_seed=bytes(32), kdf_limits=FAST).close()
    assert run(empty) == 0
    assert capsys.readouterr().out == "No conversations in your history yet.\n"
    assert run(empty, "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


# -- one conversation: filters -------------------------------------------------------


def texts(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [r["text"] for r in json.loads(capsys.readouterr().out)]


def test_since_until_limit(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "alice", "--json", "--since", "2026-11-21") == 0
    assert texts(capsys) == [
        "see you at the lunch place\nsecond line",
        "running late \x1b[31mred\x1b[0m",
    ]
    # A day alone as --until includes that whole day.
    assert run(profile_dir, "alice", "--json", "--until", "2026-11-20") == 0
    assert texts(capsys) == ["hi, lunch tomorrow?", "yes! *lunch* at noon [ok]"]
    # Minutes, and ISO 8601 with an offset (21T00:00+02:00 is local midnight).
    argv = ["--since", "2026-11-20 09:01", "--until", "2026-11-21T00:00:00+02:00"]
    assert run(profile_dir, "alice", "--json", *argv) == 0
    assert texts(capsys) == ["yes! *lunch* at noon [ok]"]
    # The same instant in UTC, with Z.
    assert run(profile_dir, "alice", "--json", "--until", "2026-11-20T07:01:00Z") == 0
    assert texts(capsys) == ["hi, lunch tomorrow?"]
    assert run(profile_dir, "alice", "--json", "--since", "2026-11-20", "--limit", "2") == 0
    assert texts(capsys) == [
        "see you at the lunch place\nsecond line",
        "running late \x1b[31mred\x1b[0m",
    ]
    # Relative: bob's message of an hour ago, not the one of 2026-11-19.
    assert run(profile_dir, "bob", "--json", "--since", "2h") == 0
    assert texts(capsys) == ["meeting moved"]
    assert run(profile_dir, "bob", "--json", "--until", "30m") == 0
    assert texts(capsys) == ["budget meeting notes", "meeting moved"]
    assert run(profile_dir, "bob", "--json", "--until", "2h") == 0
    assert texts(capsys) == ["budget meeting notes"]


def test_conversation_lines_are_aligned_and_safe(
    profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(profile_dir, "alice", "--since", "2026-11-20 09:05") == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(STAMP + r"  me     > yes! \*lunch\* at noon \[ok\]  \[sent\]", lines[0])
    assert re.fullmatch(STAMP + r"  alice  > see you at the lunch place", lines[1])
    assert lines[2] == " " * len("2026-11-22 08:00:00  alice  > ") + "second line"
    assert lines[3].endswith(r"  me     > running late \x1b[31mred\x1b[0m  [queued]")
    assert run(profile_dir, "alice", "--since", "2026-11-23") == 0
    assert (
        capsys.readouterr().out == f"No messages with alice ({ALICE.peer_id}) in that time range.\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["alice", "--since", "yesterday"],
        ["alice", "--until", "2026-13-45"],
        ["alice", "--since", "2026-11-23 25:00"],
        ["alice", "--since", "3 fortnights"],
        ["--search", "lunch", "--until", "11/23/2026"],
    ],
)
def test_bad_dates_are_usage_errors(
    profile_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    monkeypatch.delenv("P2PCHAT_PASSPHRASE")  # refused before a passphrase is needed
    assert run(profile_dir, *argv) == 2
    message = error_line(capsys)
    assert "cannot read" in message
    assert "2026-11-23" in message
    assert "2h" in message


def test_other_usage_errors(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "alice", "--since", "2026-11-22", "--until", "2026-11-21") == 2
    assert error_line(capsys) == "--since must be before --until"
    assert run(profile_dir, "--since", "2d") == 2
    assert error_line(capsys) == "--since and --until need a PEER or --search"
    assert run(profile_dir, "--export", "x.json") == 2
    assert "--export needs a PEER" in error_line(capsys)
    assert run(profile_dir, "alice", "--search", "x", "--export", "x.json") == 2
    assert "cannot take --search" in error_line(capsys)
    assert run(profile_dir, "alice", "--force") == 2
    assert error_line(capsys) == "--force only goes with --export"


# -- who PEER is ------------------------------------------------------------------


def test_guest_by_name_or_id(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "gina") == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(STAMP + r"  Gina  > hello from the browser, lunch\?", lines[0])
    assert re.fullmatch(STAMP + r"  me    > hi Gina  \[sent\]", lines[1])
    assert run(profile_dir, "guest:g1", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["conversation"], r["peer_id"], r["sender"]) for r in rows] == [
        ("guest:g1", "guest:g1", "Gina"),
        ("guest:g1", "guest:g1", "me"),
    ]


def test_unknown_and_ambiguous_peers(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "zed") == 1
    message = error_line(capsys)
    assert message.startswith('no conversation matches "zed"')
    assert f"alice ({ALICE.peer_id})" in message
    assert "Gina (guest:g1)" in message
    assert run(profile_dir, "sam") == 1
    message = error_line(capsys)
    assert message.startswith('"sam" matches 2 conversations: ')
    assert f"Sam ({SAM1.peer_id})" in message
    assert f"sam ({SAM2.peer_id})" in message
    # A guest who calls herself "alice" makes the name ambiguous: never a guess.
    with open_profile(profile_dir, PASSPHRASE, kdf_limits=FAST) as profile:
        profile.add_message(stored(guest_conversation_id("g2"), 5, "hi", sender="alice"))
    assert run(profile_dir, "alice") == 1
    message = error_line(capsys)
    assert message.startswith('"alice" matches 2 conversations:')
    assert f"alice ({ALICE.peer_id})" in message
    assert "alice (guest:g2)" in message
    assert run(profile_dir, ALICE.peer_id[:9], "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 4


# -- search -----------------------------------------------------------------------


def test_search_shows_hits_and_total(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "--search", "lunch") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "\x1b" not in "".join(lines)  # not a terminal: no highlighting
    assert [line.split()[2:4] for line in lines[:4]] == [
        ["[Gina]", "Gina"],
        ["[alice]", "alice"],
        ["[alice]", "me"],
        ["[alice]", "alice"],
    ]
    assert re.fullmatch(STAMP + r"  \[Gina\]   Gina   > hello from the browser, lunch\?", lines[0])
    assert lines[1].endswith("  > see you at the lunch place second line")
    assert lines[4] == '4 messages match "lunch".'
    assert len(lines) == 5
    # Every hit's "> " lines up.
    assert len({line.index(" > ") for line in lines[:4]}) == 1


def test_search_limit_counts_all(profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(profile_dir, "--search", "lunch", "--limit", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[2] == '4 messages match "lunch"; showing the newest 2 (--limit N for more)'
    assert run(profile_dir, "--search", "lunch", "--limit", "2", "--json") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    result = json.loads(captured.out)
    assert (result["query"], result["total"], result["shown"]) == ("lunch", 4, 2)
    first = result["hits"][0]
    assert first["conversation"] == "guest:g1"
    assert first["name"] == "Gina"
    assert first["peer_id"] == "guest:g1"
    assert first["text"] == "hello from the browser, lunch?"
    assert [first["snippet"][a:b] for a, b in first["highlights"]] == ["lunch"]
    assert result["hits"][1]["peer_id"] == ALICE.peer_id


def test_search_words_prefix_and_scope(
    profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def found(*argv: str) -> list[str]:
        assert run(profile_dir, "--json", *argv) == 0
        return [hit["text"] for hit in json.loads(capsys.readouterr().out)["hits"]]

    assert len(found("--search", "lun*")) == 4
    assert found("--search", "LUNCH noon") == ["yes! *lunch* at noon [ok]"]  # every word
    assert found("--search", "meet*", "--since", "1d") == ["meeting moved"]
    assert found("gina", "--search", "lunch") == ["hello from the browser, lunch?"]
    assert found("--search", "don't (see") == []  # FTS5 syntax is just text
    assert found("--search", "nothing-like-this") == []
    assert run(profile_dir, "alice", "--search", "zebra") == 0
    assert capsys.readouterr().out == 'No messages with alice match "zebra".\n'


def test_search_highlights_on_a_terminal_only(
    profile_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert run(profile_dir, "--search", "lunch noon") == 0
    out = capsys.readouterr().out
    assert "yes! *\x1b[1;7mlunch\x1b[0m* at \x1b[1;7mnoon\x1b[0m [ok]" in out
    # Message text never drives the terminal, highlighted or not.
    assert run(profile_dir, "--search", "late") == 0
    out = capsys.readouterr().out
    assert "running \x1b[1;7mlate\x1b[0m \\x1b[31mred\\x1b[0m" in out
    assert out.count("\x1b") == 2
    monkeypatch.setenv("NO_COLOR", "1")
    assert run(profile_dir, "--search", "lunch noon") == 0
    assert "\x1b" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("query", "expected"),
    [("!!!", "nothing to search for"), ("*", "nothing to search for"), ("a\x00b", "control")],
)
def test_unusable_searches(
    profile_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    expected: str,
) -> None:
    monkeypatch.delenv("P2PCHAT_PASSPHRASE")  # refused before a passphrase is needed
    assert run(profile_dir, "--search", query) == 2
    assert expected in error_line(capsys)


# -- export -----------------------------------------------------------------------


def test_export_json(tmp_path: Path, profile_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "alice.json"
    target.parent.mkdir()
    assert run(profile_dir, "alice", "--export", str(target), "--since", "2026-11-20 09:01") == 0
    captured = capsys.readouterr()
    assert captured.err == WARNING.format(target)
    assert (
        captured.out
        == f"Exported 3 messages with alice to {target} (JSON, readable by you only).\n"
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["alice.json"]  # no temporary file left
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert exported["format"] == "p2pchat-history"
    assert exported["version"] == 1
    assert exported["conversation"] == {
        "id": ALICE_CONVERSATION,
        "name": "alice",
        "kind": "contact",
        "peer_id": ALICE.peer_id,
    }
    assert exported["filters"] == {
        "since": "2026-11-20T09:01:00+02:00",
        "until": None,
        "limit": None,
    }
    assert exported["message_count"] == 3
    assert [m["text"] for m in exported["messages"]] == [
        "yes! *lunch* at noon [ok]",
        "see you at the lunch place\nsecond line",
        "running late \x1b[31mred\x1b[0m",
    ]
    assert exported["messages"][2] == {
        "message_id": exported["messages"][2]["message_id"],
        "direction": "out",
        "sender": "me",
        "timestamp_ms": local_ms("2026-11-22 08:00"),
        "time": "2026-11-22T08:00:00.000+02:00",
        "text": "running late \x1b[31mred\x1b[0m",
        "delivery": "pending",
    }


def test_export_markdown(
    tmp_path: Path, profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "alice.md"
    assert run(profile_dir, "alice", "--export", str(target)) == 0
    assert capsys.readouterr().err == WARNING.format(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Conversation with alice"
    assert f"- Contact: `{ALICE.peer_id}`" in lines
    assert "- Messages: 4, from 2026-11-20 09:00:00 to 2026-11-22 08:00:00" in lines
    messages = [line for line in lines if line.startswith("- **")]
    assert messages == [
        "- **2026-11-20 09:00:00** alice: hi, lunch tomorrow?",
        r"- **2026-11-20 09:05:00** me: yes! \*lunch\* at noon \[ok\] *(sent)*",
        "- **2026-11-21 18:00:00** alice: see you at the lunch place<br>second line",
        r"- **2026-11-22 08:00:00** me: running late \\x1b\[31mred\\x1b\[0m *(queued)*",
    ]
    assert "\x1b" not in target.read_text(encoding="utf-8")


def test_export_refuses_to_overwrite(
    tmp_path: Path, profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "gina.md"
    target.write_text("mine\n")
    target.chmod(0o644)
    assert run(profile_dir, "gina", "--export", str(target)) == 1
    assert error_line(capsys) == f"{target} already exists: choose another name, or pass --force"
    assert target.read_text() == "mine\n"
    assert run(profile_dir, "gina", "--export", str(target), "--force", "--json") == 0
    captured = capsys.readouterr()
    assert captured.err == WARNING.format(target)
    assert json.loads(captured.out) == {
        "file": str(target),
        "format": "markdown",
        "conversation": "guest:g1",
        "message_count": 2,
    }
    assert target.read_text().startswith("# Conversation with Gina\n\n- Guest: `guest:g1`\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["gina.md", "profile"]


def test_export_to_stdout_and_bad_names(
    tmp_path: Path, profile_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(profile_dir, "bob", "--export", "-", "--json") == 0
    captured = capsys.readouterr()
    assert captured.err == WARNING.format("this export")
    exported = json.loads(captured.out)  # data only on stdout
    assert [m["text"] for m in exported["messages"]] == ["budget meeting notes", "meeting moved"]
    assert run(profile_dir, "bob", "--export", "-") == 0
    assert capsys.readouterr().out.startswith("# Conversation with bob\n")
    # On stdout (maybe a terminal) nothing from a message is written raw.
    tricky = "caf\u00e9 \u202eevil\u202c \x9b31m"
    with open_profile(profile_dir, PASSPHRASE, kdf_limits=FAST) as profile:
        profile.add_message(stored(BOB_CONVERSATION, 7, tricky, sender="bob"))
    assert run(profile_dir, "bob", "--export", "-", "--json") == 0
    out = capsys.readouterr().out
    assert out.isascii()
    assert json.loads(out)["messages"][0]["text"] == tricky
    assert run(profile_dir, "bob", "--export", "-") == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out
    assert "\x9b" not in out
    assert r"- **1970-01-01 02:00:00** bob: café \\u202eevil\\u202c \\x9b31m" in out
    assert run(profile_dir, "bob", "--export", str(tmp_path / "bob.txt")) == 2
    assert "name it .json or .md" in error_line(capsys)
    assert run(profile_dir, "bob", "--export", str(tmp_path / "missing" / "bob.md")) == 1
    assert error_line(capsys) == (
        f"cannot write {tmp_path / 'missing' / 'bob.md'}: there is no directory {tmp_path / 'missing'}"
    )
