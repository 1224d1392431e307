"""Pure parts of the store: KDF, search-query quoting, conversation ids, data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pchat.store.conversation_id import (
    contact_conversation_id,
    contact_key_of,
    guest_conversation_id,
)
from p2pchat.store.fts_query import to_match_expression
from p2pchat.store.keys import DEFAULT_KDF_LIMITS, KEY_BYTES, KdfLimits, derive_key
from p2pchat.store.paths import DATA_DIR_ENV, resolve_data_dir

FAST = KdfLimits(opslimit=1, memlimit=8192)
SALT = bytes(range(16))


def test_derive_key_is_deterministic_and_32_bytes() -> None:
    key = derive_key("correct horse", SALT, FAST)
    assert len(key) == KEY_BYTES
    assert key == derive_key("correct horse", SALT, FAST)


def test_derive_key_depends_on_passphrase_salt_and_limits() -> None:
    key = derive_key("correct horse", SALT, FAST)
    assert key != derive_key("correct horsf", SALT, FAST)
    assert key != derive_key("correct horse", bytes(16), FAST)
    assert key != derive_key("correct horse", SALT, KdfLimits(opslimit=2, memlimit=8192))


def test_derive_key_normalises_unicode() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert derive_key(composed, SALT, FAST) == derive_key(decomposed, SALT, FAST)


def test_derive_key_rejects_bad_salt() -> None:
    with pytest.raises(ValueError, match="salt"):
        derive_key("x", b"short", FAST)


def test_default_limits_are_libsodium_moderate() -> None:
    assert KdfLimits(opslimit=3, memlimit=256 * 1024 * 1024) == DEFAULT_KDF_LIMITS


@pytest.mark.parametrize(
    ("typed", "expression"),
    [
        ("hello", '"hello"'),
        ("hello world", '"hello" "world"'),
        ("hel*", '"hel"*'),
        ('say "hi"', '"say" """hi"""'),
        ("a OR b", '"a" "OR" "b"'),
        ("(unbalanced AND", '"(unbalanced" "AND"'),
        ("   ", None),
        ("***", None),
    ],
)
def test_match_expression_quotes_every_word(typed: str, expression: str | None) -> None:
    assert to_match_expression(typed) == expression


@given(st.text())
def test_match_expression_never_fails(typed: str) -> None:
    result = to_match_expression(typed)
    assert result is None or result.startswith('"')


def test_conversation_ids() -> None:
    key = bytes(range(32))
    assert contact_conversation_id(key) == key.hex()
    assert contact_key_of(contact_conversation_id(key)) == key
    assert guest_conversation_id("abc") == "guest:abc"
    assert contact_key_of("guest:abc") is None
    assert contact_key_of("zz" * 32) is None
    with pytest.raises(ValueError, match="32 bytes"):
        contact_conversation_id(b"short")
    with pytest.raises(ValueError, match="empty"):
        guest_conversation_id("")


def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "cli")) == tmp_path / "cli"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv(DATA_DIR_ENV)
    default = resolve_data_dir(None)
    assert default.name == "p2pchat"
    assert default.is_absolute()
