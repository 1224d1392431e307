"""A TCP load balancer in front of signaling instances, for the cluster tests.

``TcpBalancer(host, listen, port, routes, default)`` runs a small asyncio proxy in
``host`` on ``listen:port``. Each accepted connection goes to the first backend of its
list that takes a connection: ``routes[client address]`` or ``default``. So the test
decides where each client lands (the owner's NAT to one instance, the guest's to
another) and a dead instance's clients land on the next one of their list when they
reconnect, as behind a real balancer with health checks. It is plain TCP (TLS ends at
the instances); a backend that dies takes its clients' connections with it (the proxy
resets them at once). Each connection is reported as ``conn CLIENT BACKEND``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from tests.lan.netns import PYTHON, Host
from tests.lan.services import Service

PROXY = textwrap.dedent(
    """
    import asyncio, sys

    listen, port = sys.argv[1], int(sys.argv[2])
    routes, default = {}, []
    for spec in sys.argv[3:]:
        client, _, backends = spec.partition("=")
        (routes.setdefault(client, []) if client != "*" else default).extend(backends.split(","))

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass

    async def handle(reader, writer):
        client = writer.get_extra_info("peername")[0]
        for backend in routes.get(client, default):
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(backend, port), 5)
            except (OSError, asyncio.TimeoutError):
                continue
            print(f"conn {client} {backend}", flush=True)
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(pipe(reader, up_writer)),
                 asyncio.ensure_future(pipe(up_reader, writer))],
                return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            up_writer.transport.abort()
            writer.transport.abort()
            return
        writer.transport.abort()

    async def main():
        server = await asyncio.start_server(handle, listen, port, reuse_address=True)
        print("balancer ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


class TcpBalancer(Service):
    ready_line = "balancer ready"

    def __init__(
        self,
        host: Host,
        listen: str,
        port: int,
        routes: Mapping[str, Sequence[str]],
        default: Sequence[str],
    ) -> None:
        specs = [f"{client}={','.join(backends)}" for client, backends in routes.items()]
        specs.append(f"*={','.join(default)}")
        super().__init__(host, [PYTHON, "-c", PROXY, listen, str(port), *specs])

    def backends_of(self, client: str) -> list[str]:
        """The backend of each connection from ``client``, in order."""
        return [
            line.split()[2]
            for line in self.output.splitlines()
            if line.startswith("conn ") and line.split()[1] == client
        ]
