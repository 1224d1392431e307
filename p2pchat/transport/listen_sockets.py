"""Listening TCP sockets on every address, IPv4 and IPv6, on one port.

Binding "every address" with port 0 through asyncio (``host=None``) makes one socket
per family, and the OS picks a different free port for each: the node would advertise
one of them, and peers of the other family would be refused. Here the IPv4 socket
picks the port and the IPv6 one (``IPV6_V6ONLY``) takes the same number.
"""

from __future__ import annotations

import errno
import socket

__all__ = ["bind_every_family"]

#: Tries when the OS-chosen IPv4 port is taken on IPv6 (port 0 only).
BIND_ATTEMPTS = 16

# No IPv6 in this kernel or namespace: serve IPv4 alone.
_NO_IPV6 = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})


def bind_every_family(port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Bound (not yet listening) TCP sockets for ``0.0.0.0`` and ``::`` on one port.

    ``port`` 0 lets the OS choose; both sockets then share its choice. Raises
    ``OSError`` if the port (or, for 0, any port after a few tries) is taken.
    ``reuse_port``: SO_REUSEPORT (several server processes on one port).
    """
    for _ in range(BIND_ATTEMPTS):
        ipv4 = _bound(socket.AF_INET, "0.0.0.0", port, reuse_port)  # noqa: S104
        chosen = int(ipv4.getsockname()[1])
        try:
            ipv6 = _bound(socket.AF_INET6, "::", chosen, reuse_port)
        except OSError as exc:
            if exc.errno in _NO_IPV6:
                return [ipv4]
            ipv4.close()
            if exc.errno == errno.EADDRINUSE and port == 0:
                continue  # taken on IPv6 only: let the OS pick another
            raise
        return [ipv4, ipv6]
    raise OSError(errno.EADDRINUSE, "no port is free on both IPv4 and IPv6")


def _bound(
    family: socket.AddressFamily, host: str, port: int, reuse_port: bool = False
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
