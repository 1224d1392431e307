"""How a node is set up: where its profile lives and which network it uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from p2pchat.errors import UserError


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    interfaces: Sequence[str] | None = None
    port: int = 0  # LAN signaling (advertised in mDNS); 0: any free port
    invite_port: int = 0  # the invite server for browser guests; 0: any free port
    downloads: Path | None = None  # --downloads: received files; None: the profile's setting


def lan_address(config: NodeConfig) -> str:
    """The node's IPv4 LAN address (first of the chosen interfaces): where invite links
    point and where the direct file path listens."""
    from p2pchat.discovery.interfaces import interface_addresses

    try:
        return interface_addresses(config.interfaces, "v4").advertised[0]
    except (ValueError, IndexError):
        raise UserError(
            "no IPv4 address on the network interfaces: invite links need one"
        ) from None
