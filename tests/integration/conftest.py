"""Fixtures shared by the integration tests: a fresh profile store on real SQLCipher, a
node on loopback (``node``), an aiohttp client session (``http``) and standalone
signaling servers on loopback (``start_standalone``).

A test module that wants another kind of profile defines its own ``profile`` fixture,
which takes precedence over this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from p2pchat.node import Node, NodeConfig
from p2pchat.store import Profile, create_profile
from signaling.app import Limits
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer
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


@pytest.fixture
async def node(profile: Profile, data_dir: Path) -> AsyncIterator[Node]:
    """A node on loopback only; its guest servers stop after the test."""
    node = Node(profile, NodeConfig(data_dir=data_dir, interfaces=["lo"]))
    try:
        yield node
    finally:
        await node.guests.async_stop()


StartStandalone = Callable[..., Awaitable[SignalingServer]]


@pytest.fixture
async def start_standalone() -> AsyncIterator[StartStandalone]:
    """``await start_standalone(**options)``: a started signaling server without a node
    (owners connect over WebSockets) on 127.0.0.1, plain HTTP, no static files;
    ``options`` override those (and the short hello timeout). All stop after the test."""
    servers: list[SignalingServer] = []

    async def start(**kwargs: object) -> SignalingServer:
        options: dict[str, object] = {
            "host": "127.0.0.1",
            "port": 0,
            "ssl_context": None,
            "static_dir": None,
            "owner_hooks": None,
            "limits": Limits(owner_hello_timeout=2.0),
        }
        options.update(kwargs)
        server = SignalingServer(RoomRegistry(), **options)  # type: ignore[arg-type]
        await server.async_start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.async_stop()
