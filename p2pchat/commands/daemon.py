"""``p2pchat daemon``: run the node headless until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from p2pchat.control.server import ControlServer
from p2pchat.control.socket_path import control_socket_path
from p2pchat.discovery.interfaces import check_interface_names
from p2pchat.errors import UserError
from p2pchat.node import Node, NodeConfig
from p2pchat.node_lock import NodeLock
from p2pchat.passphrase import read_passphrase
from p2pchat.store import open_profile
from p2pchat.store.paths import resolve_data_dir


def run_daemon(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    if args.interface:  # a typo is news before the passphrase is asked for
        check_interface_names(args.interface)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    lock = NodeLock(data_dir)
    if not data_dir.is_dir():
        from p2pchat.store import ProfileNotFound

        raise ProfileNotFound(data_dir)
    lock.acquire()
    try:
        with open_profile(data_dir, read_passphrase(args.passphrase_file)) as profile:
            config = NodeConfig(
                data_dir=data_dir, interfaces=args.interface, port=args.port,
                downloads=_downloads_dir(args.downloads),
            )  # fmt: skip
            return asyncio.run(_async_run(Node(profile, config), args.json))
    finally:
        lock.release()


def _downloads_dir(value: str | None) -> Path | None:
    """``--downloads DIR``: made if missing; a file in its place is refused."""
    if value is None:
        return None
    path = Path(value).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--downloads {value}: {exc.strerror or exc}") from None
    return path


async def _async_run(node: Node, as_json: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await node.async_start()
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot start the node: {exc}") from None
    control = ControlServer(node, control_socket_path(node.config.data_dir))
    await control.async_start()
    status = await node.async_status()
    if as_json:
        print(json.dumps({"type": "node_started", **vars(status)}), flush=True)
    else:
        print(
            f"p2pchat node for {status.name} ({status.peer_id}) on port {status.port}."
            " Ctrl-C stops it; `p2pchat watch` shows events.",
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        await control.async_stop()
        await node.async_stop()
    print("stopped", file=sys.stderr)
    return 0
