"""``p2pchat group keep``'s refusals through the real CLI, control socket and node: one
line each on stderr, exit code 1 (a guest that is not listed; a group I am not the
admin of). The keeping itself: tests/integration/test_node_group_guests.py."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pchat.cli import main
from p2pchat.control.server import ControlServer
from p2pchat.control.socket_path import control_socket_path
from p2pchat.node import Node, NodeConfig
from p2pchat.store import KdfLimits, create_profile
from p2pchat.store.records import Contact, TrustState
from tests.integration.group_setups import join_anns_book_club

FAST = KdfLimits(opslimit=1, memlimit=8192)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A real node (admin of "team" with bob; a member of ann's "book club") serving
    its control socket on a loop in a thread, as ``p2pchat run`` does."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    data = tmp_path / "me"

    async def start() -> tuple[ControlServer, object]:
        profile = create_profile(data, "pw", name="me", identity_seed=os.urandom(32),
                                 kdf_limits=FAST)  # fmt: skip
        bob = bytes(SigningKey.generate().verify_key)
        profile.upsert_contact(Contact(bob, "bob", TrustState.ACCEPTED, verified=False,
                                       pinned_at_ms=0))  # fmt: skip
        join_anns_book_club(profile)
        node = Node(profile, NodeConfig(data_dir=data))
        await node.async_group_create("team", ["bob"])
        server = ControlServer(node, control_socket_path(data))
        await server.async_start()
        return server, profile

    server, profile = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield data

    async def stop() -> None:
        await server.async_stop()
        profile.close()  # type: ignore[attr-defined]

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("p2pchat: ")
    return captured.err.removeprefix("p2pchat: ").rstrip("\n")


def test_keep_refuses_an_unknown_guest_and_a_group_i_do_not_host(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(data_dir), "group", "keep", "team", "zoe"]) == 1
    assert one_error_line(capsys) == "team has no guests"
    assert main(["--data-dir", str(data_dir), "group", "keep", "book club", "zoe"]) == 1
    assert one_error_line(capsys) == "only ann can keep guests in book club: they host them"
    assert main(["--data-dir", str(data_dir), "group", "keep", "nope", "zoe"]) == 1
    assert one_error_line(capsys).startswith('no group matches "nope"')
