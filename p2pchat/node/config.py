"""How a node is set up: where its profile lives and which network it uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    interfaces: Sequence[str] | None = None
    port: int = 0  # LAN signaling (advertised in mDNS); 0: any free port
    invite_port: int = 0  # the invite server for browser guests; 0: any free port
    downloads: Path | None = None  # --downloads: received files; None: the profile's setting
