"""The first screen is drawn before the store and the node are imported.

Which screen comes first (create or unlock) is a file's existence; SQLCipher,
PyNaCl and the node load in a thread behind it (app.py), so a start pays a bare
Textual app's imports plus little more. Each case runs in a fresh interpreter:
the test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from p2pchat.store import KdfLimits, create_profile

FAST = KdfLimits(opslimit=1, memlimit=8192)
HEAVY = ("sqlcipher3", "nacl", "aiortc", "p2pchat.node", "p2pchat.store.profile")

FIRST_SCREEN = r"""
import asyncio, json, sys
from pathlib import Path
from p2pchat.node_lock import NodeLock
from p2pchat.tui.app import ChatApp

class NoBackgroundLoad(ChatApp):
    def _load_the_node(self) -> None:  # the thread that imports them all, held back
        pass

async def main() -> None:
    data_dir = Path(sys.argv[1])
    app = NoBackgroundLoad(data_dir, NodeLock(data_dir), lock_held=False)
    async with app.run_test() as pilot:
        while type(app.screen).__name__ != sys.argv[2]:
            await pilot.pause(0.01)
        heavy = sys.argv[3:]
        print(json.dumps(sorted(m for m in sys.modules for h in heavy if m == h or m.startswith(h + "."))))

asyncio.run(main())
"""


def loaded_by_first_screen(data_dir: Path, screen: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_SCREEN, str(data_dir), screen, *HEAVY],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("existing", [True, False], ids=["unlock", "create"])
def test_first_screen_imports_neither_store_nor_node(tmp_path: Path, existing: bool) -> None:
    data_dir = tmp_path / "profile"
    if existing:
        with create_profile(
            data_dir, "pass", name="alice", identity_seed=bytes(32), kdf_limits=FAST
        ):
            pass
    screen = "UnlockScreen" if existing else "CreateProfileScreen"
    assert loaded_by_first_screen(data_dir, screen) == []
