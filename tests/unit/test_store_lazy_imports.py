"""``p2pchat.store`` loads its names on first use (PEP 562): its light parts
(paths, errors) do not import SQLCipher and PyNaCl, and every public name still
resolves to its module's object."""

from __future__ import annotations

import importlib
import subprocess
import sys

import p2pchat.store

LIGHT = "import sys, p2pchat.store.paths, p2pchat.store.errors; print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlcipher3', 'nacl')))"


def test_paths_and_errors_load_neither_sqlcipher_nor_nacl() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_modules_object() -> None:
    for name in p2pchat.store.__all__:
        value = getattr(p2pchat.store, name)
        homes = [
            module for module in ("conversation_id", "errors", "files", "groups", "keys", "paths", "profile", "records")
            if getattr(importlib.import_module(f"p2pchat.store.{module}"), name, None) is value
        ]  # fmt: skip
        assert homes, name
