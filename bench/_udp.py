"""UDP receive-buffer drops: per namespace, and per socket for aiortc's own sockets.

A data-channel flood that outruns its receiver overflows the receiver's UDP socket
buffer: the kernel drops the datagrams (``RcvbufErrors`` in ``/proc/net/snmp``) and
SCTP stalls on retransmission timeouts, so the figure measures packet loss rather
than aiortc. The benches report the counter's delta so that a run can be trusted.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def rcvbuf_errors(pid: int | str = "self") -> int:
    """``Udp: RcvbufErrors`` of the network namespace that process ``pid`` is in.

    The counter is per namespace: in a namespace of its own it counts only the bench's
    sockets; in the machine's own namespace it counts every process's.
    """
    lines = [line.split() for line in Path(f"/proc/{pid}/net/snmp").read_text().splitlines()]
    names, values = [row for row in lines if row[0] == "Udp:"][:2]
    return int(values[names.index("RcvbufErrors")])


def socket_drops(sockets: list[socket.socket]) -> int:
    """Datagrams the kernel dropped on these sockets (the ``drops`` column of
    ``/proc/net/udp`` and ``udp6``, matched by inode): exact in any namespace."""
    inodes = {os.fstat(sock.fileno()).st_ino for sock in sockets}
    total = 0
    for table in ("udp", "udp6"):
        path = Path(f"/proc/self/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[9]) in inodes:
                total += int(fields[-1])
    return total


def ice_sockets(pc: Any) -> list[socket.socket]:
    """The UDP sockets aioice opened for ``pc`` (an ``RTCPeerConnection``), once the
    transports exist (after ``setLocalDescription``)."""
    found = []
    for transceiver_transport in _ice_transports(pc):
        connection = getattr(transceiver_transport, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                found.append(sock)
    return found


def _ice_transports(pc: Any) -> list[Any]:
    sctp = getattr(pc, "sctp", None)
    if sctp is None:
        return []
    return [sctp.transport.transport]
