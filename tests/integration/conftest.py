"""Fixtures shared by the integration tests: a fresh profile store on real SQLCipher, an
aiohttp client session (``http``).

A test module that wants another kind of profile defines its own ``profile`` fixture,
which takes precedence over this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from p2pchat.store import Profile, create_profile
from tests.integration.store_profiles import FAST, PASSPHRASE, SEED


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "profile"


@pytest.fixture
def profile(data_dir: Path) -> Iterator[Profile]:
    with create_profile(
        data_dir, PASSPHRASE, name="me", identity_seed=SEED, kdf_limits=FAST
    ) as opened:
        yield opened


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
