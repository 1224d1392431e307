"""A direct TCP path for file chunks between two native LAN peers.

The data channel is CPU-bound at ~7-10 MB/s here (SCTP and DTLS in Python); a plain TCP
stream on the same LAN reaches hundreds of MB/s (bench/bench_files.py). So a native peer
may carry file chunks over TCP instead, and keep the data channel for chat and for
browser guests, which cannot open TCP sockets.

The receiver of a file runs a ``DirectFilesListener`` on the LAN address its node uses
and hands the sender, inside the E2E session (a FILE_CONTROL DIRECT, protocol/file_wire),
its address, port and a fresh one-use token from ``issue_token``. The sender connects
with ``async_open_direct`` and sends:

* first a token frame: ``u32 length (= 32) || token``; the listener answers one byte
  ``0x01`` if the token is one it issued, unused and not expired (then it is spent), and
  otherwise closes;
* then chunk frames: ``u32 length || chunk message``, each exactly the bytes the file
  chunk codec makes (protocol/file_transfer: a 24-byte header, then XChaCha20-Poly1305
  under the per-file key with the header as additional data), ``MIN_CHUNK_MESSAGE`` to
  ``MAX_CHUNK_MESSAGE`` bytes; each reaches the receiver's ``on_file_chunk``, in order,
  as on the data channel's files channel.

No further encryption: the chunks are already sealed and authenticated per file, and
the token travelled inside the session, so only the peer had it. A LAN attacker can
reset or stall the stream (as it can drop UDP), inject bytes that fail the AEAD or the
frame bounds (the stream then closes), or spend a token it saw first (the real sender is
then refused and falls back); it cannot read or forge a chunk. What it sees, which DTLS
hid: each chunk's clear header (a random transfer id, block and chunk numbers) and the
spent token. docs/protocol.md "Files" has the full analysis.

Bounds: ``MAX_TOKENS`` outstanding tokens, each used once and expiring after
``TOKEN_LIFETIME``; ``MAX_STREAMS_PER_PEER`` open streams per peer; ``MAX_HANDSHAKES``
connections waiting for their token, each for at most ``HANDSHAKE_TIMEOUT``; frames of
at most ``MAX_CHUNK_MESSAGE`` bytes; the sender's write buffer at most
``WRITE_HIGH_WATER`` plus one frame. Anything else closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from p2pchat.protocol.file_wire import DIRECT_TOKEN_BYTES, MAX_CHUNK_MESSAGE, MIN_CHUNK_MESSAGE
from p2pchat.transport.errors import (
    LinkClosedError,
    LinkFailedError,
    LocalTransportError,
    MessageTooLargeError,
)

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "MAX_HANDSHAKES",
    "MAX_STREAMS_PER_PEER",
    "MAX_TOKENS",
    "TOKEN_LIFETIME",
    "WRITE_HIGH_WATER",
    "DirectFilesListener",
    "DirectFilesStream",
    "async_open_direct",
]

logger = logging.getLogger(__name__)

TOKEN_LIFETIME: Final = 60.0  # seconds from issue to use
MAX_TOKENS: Final = 16  # outstanding (issued, not yet used or expired)
MAX_STREAMS_PER_PEER: Final = 4
MAX_HANDSHAKES: Final = 16  # connections not yet past their token
HANDSHAKE_TIMEOUT: Final = 5.0  # seconds from connect to a valid token frame
#: The sender's asyncio write buffer: ``async_send_file_chunk`` waits above this.
WRITE_HIGH_WATER: Final = 256 * 1024
ACCEPTED: Final = b"\x01"
_LENGTH = struct.Struct(">I")


@dataclass(eq=False)
class _Grant:
    """What an issued token opens: a stream from ``peer`` whose chunks go to the callbacks."""

    peer: bytes
    on_file_chunk: Callable[[bytes], None]
    on_closed: Callable[[str], None] | None
    expires: float
    token: bytes = field(repr=False, default=b"")


class DirectFilesListener:
    """The receiving end: a TCP server that admits only holders of a token it issued.

    Start it with ``async_start(host)`` on the LAN address the node uses (port 0: an
    ephemeral port, see ``port``). ``issue_token(peer, on_file_chunk, on_closed)`` makes a
    token to send to ``peer`` inside the session; the stream it opens delivers each chunk
    message to ``on_file_chunk`` (in the event loop, in order; it must be quick; if it
    raises, the stream closes), and ``on_closed(reason)`` runs once when that stream
    ends, whatever the cause.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._clock = clock
        self._handshake_timeout = handshake_timeout
        self._grants: list[_Grant] = []
        self._streams: dict[bytes, set[_Connection]] = {}  # peer -> its open streams
        self._handshakes: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    @classmethod
    async def async_start(
        cls,
        host: str,
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> DirectFilesListener:
        listener = cls(clock=clock, handshake_timeout=handshake_timeout)
        loop = asyncio.get_running_loop()
        listener._server = await loop.create_server(
            lambda: _Connection(listener), host, port, reuse_address=True
        )
        return listener

    @property
    def host(self) -> str:
        """The address it listens on (as ``async_start`` got it)."""
        if self._server is None or not self._server.sockets:
            raise LocalTransportError("the direct files listener is not running")
        return str(self._server.sockets[0].getsockname()[0])

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise LocalTransportError("the direct files listener is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def outstanding_tokens(self) -> int:
        self._expire()
        return len(self._grants)

    def open_streams(self, peer: bytes) -> int:
        return len(self._streams.get(peer, ()))

    def issue_token(
        self,
        peer: bytes,
        on_file_chunk: Callable[[bytes], None],
        on_closed: Callable[[str], None] | None = None,
    ) -> bytes:
        """A fresh one-use token for ``peer`` (send it only inside the session with them).

        Raises ``LocalTransportError`` with ``MAX_TOKENS`` already outstanding: the node
        then uses the data channel for that transfer.
        """
        if self._server is None:
            raise LocalTransportError("the direct files listener is not running")
        self._expire()
        if len(self._grants) >= MAX_TOKENS:
            raise LocalTransportError(f"{MAX_TOKENS} direct-path tokens are already outstanding")
        token = secrets.token_bytes(DIRECT_TOKEN_BYTES)
        expires = self._clock() + TOKEN_LIFETIME
        self._grants.append(_Grant(peer, on_file_chunk, on_closed, expires, token))
        return token

    def close_peer(self, peer: bytes, reason: str = "closed locally") -> None:
        """Forget ``peer``'s tokens and close its streams (its session ended)."""
        self._grants = [g for g in self._grants if g.peer != peer]
        for conn in list(self._streams.get(peer, ())):
            conn.abort(reason)

    async def async_close(self) -> None:
        """Stop listening, close every connection and forget every token; idempotent."""
        self._grants.clear()
        if self._server is not None:
            self._server.close()
        for conn in [*self._handshakes, *(c for s in self._streams.values() for c in s)]:
            conn.abort("closed locally")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- for _Connection ----------------------------------------------------------------

    def _expire(self) -> None:
        now = self._clock()
        self._grants = [g for g in self._grants if g.expires > now]

    def _redeem(self, token: bytes) -> _Grant | None:
        """The grant of a valid token, spent now; None if it is unknown, used or expired."""
        self._expire()
        found = None
        for grant in self._grants:  # every comparison runs: no early exit to time
            if hmac.compare_digest(grant.token, token):
                found = grant
        if found is not None:
            self._grants.remove(found)
        return found


class _Connection(asyncio.Protocol):
    """One accepted TCP connection: the token frame, then chunk frames."""

    def __init__(self, listener: DirectFilesListener) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._grant: _Grant | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reason: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        listener = self._listener
        if len(listener._handshakes) >= MAX_HANDSHAKES:
            self.abort(f"over {MAX_HANDSHAKES} connections waiting for their token")
            return
        listener._handshakes.add(self)
        self._timer = asyncio.get_running_loop().call_later(
            listener._handshake_timeout, self.abort, "no token in time"
        )

    def data_received(self, data: bytes) -> None:
        if self._reason is not None:
            return
        self._buffer += data
        at = 0
        buffer = self._buffer
        while len(buffer) - at >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, at)
            if self._grant is None and length != DIRECT_TOKEN_BYTES:
                self.abort(f"a token frame of {length} bytes")
                return
            if self._grant is not None and not MIN_CHUNK_MESSAGE <= length <= MAX_CHUNK_MESSAGE:
                self.abort(f"a frame of {length} bytes")
                return
            end = at + _LENGTH.size + length
            if len(buffer) < end:
                break
            frame = bytes(buffer[at + _LENGTH.size : end])
            at = end
            if self._grant is None:
                if not self._admit(frame):
                    return
            else:
                self._deliver(self._grant, frame)
                if self._reason is not None:  # the callback closed the stream
                    return
        del buffer[:at]

    def eof_received(self) -> bool | None:
        self.abort("closed by the peer" if self._grant is not None else "no token")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort("connection lost" if exc is None else f"connection lost: {exc}")

    def abort(self, reason: str) -> None:
        """Close at once (RST if data is pending); run ``on_closed`` once."""
        if self._reason is not None:
            return
        self._reason = reason
        if self._timer is not None:
            self._timer.cancel()
        listener = self._listener
        listener._handshakes.discard(self)
        grant = self._grant
        if grant is None:
            logger.info("direct files connection refused: %s", reason)
        else:
            streams = listener._streams.get(grant.peer)
            if streams is not None:
                streams.discard(self)
                if not streams:
                    del listener._streams[grant.peer]
        if self._transport is not None:
            self._transport.abort()
        self._buffer.clear()
        if grant is not None and grant.on_closed is not None:
            try:
                grant.on_closed(reason)
            except Exception:
                logger.exception("on_closed callback raised")

    def _admit(self, token: bytes) -> bool:
        listener = self._listener
        grant = listener._redeem(token)
        if grant is None:
            self.abort("a wrong, used or expired token")
            return False
        streams = listener._streams.setdefault(grant.peer, set())
        if len(streams) >= MAX_STREAMS_PER_PEER:
            if not streams:
                del listener._streams[grant.peer]
            self.abort(f"over {MAX_STREAMS_PER_PEER} direct streams from one peer")
            return False
        listener._handshakes.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        streams.add(self)
        self._grant = grant
        assert self._transport is not None
        self._transport.write(ACCEPTED)
        return True

    def _deliver(self, grant: _Grant, frame: bytes) -> None:
        # A chunk the callback refuses (it raises: bad bytes a LAN attacker may have
        # injected) ends this stream, not the transfer: the node resumes elsewhere.
        try:
            grant.on_file_chunk(frame)
        except Exception as exc:
            logger.info("direct files stream closed: a chunk was refused: %s", exc)
            self.abort(f"a chunk was refused: {exc}")


class DirectFilesStream:
    """The sending end, from ``async_open_direct``: chunk messages, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed or self._writer.transport.is_closing()

    @property
    def buffered_amount(self) -> int:
        """Bytes written and not yet handed to the kernel."""
        return self._writer.transport.get_write_buffer_size()

    async def async_send_file_chunk(self, data: bytes) -> None:
        """Send one chunk message once the write buffer is at most ``WRITE_HIGH_WATER``.

        Waits on TCP's own backpressure (``drain``) and then writes in the same step, so
        the buffer holds at most ``WRITE_HIGH_WATER`` plus this frame, however many
        callers wait. Same contract as ``DataChannelLink.async_send_file_chunk``:
        ``MessageTooLargeError`` over ``MAX_CHUNK_MESSAGE``, ``LinkClosedError`` if the
        stream ended (also while waiting).
        """
        if type(data) is not bytes:
            raise TypeError(f"messages must be bytes, not {type(data).__name__}")
        if len(data) > MAX_CHUNK_MESSAGE:
            raise MessageTooLargeError(
                f"file chunk of {len(data)} bytes is over the {MAX_CHUNK_MESSAGE}-byte limit"
            )
        if len(data) < MIN_CHUNK_MESSAGE:
            raise LocalTransportError(f"a file chunk of {len(data)} bytes is too short")
        if self.closed:
            raise LinkClosedError("the direct files stream is closed")
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._closed = True
            raise LinkClosedError(f"the direct files stream broke: {exc}") from None
        if self.closed:
            raise LinkClosedError("the direct files stream is closed")
        self._writer.write(_LENGTH.pack(len(data)) + data)

    def close(self) -> None:
        """Close after the buffered frames are sent (FIN); idempotent."""
        self._closed = True
        self._writer.close()

    def abort(self) -> None:
        """Close at once, dropping what is buffered (a reset); idempotent."""
        self._closed = True
        self._writer.transport.abort()

    async def async_close(self) -> None:
        """``close`` and wait until the socket is closed."""
        self.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def async_open_direct(
    host: str, port: int, token: bytes, *, timeout: float = HANDSHAKE_TIMEOUT
) -> DirectFilesStream:
    """Connect to a peer's ``DirectFilesListener`` and present ``token``.

    Raises ``LinkFailedError`` (one line) if the connection or the token is refused or
    takes over ``timeout`` seconds: the node then stays on the data channel.
    """
    if len(token) != DIRECT_TOKEN_BYTES:
        raise LocalTransportError(f"a direct-path token is {DIRECT_TOKEN_BYTES} bytes")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
            writer.write(_LENGTH.pack(len(token)) + token)
            answer = await reader.read(1)
    except TimeoutError:
        if writer is not None:
            writer.transport.abort()
        raise LinkFailedError(f"the direct path to {host}:{port} did not open in time") from None
    except OSError as exc:
        if writer is not None:
            writer.transport.abort()
        raise LinkFailedError(f"the direct path to {host}:{port} failed: {exc}") from None
    assert writer is not None
    if answer != ACCEPTED:
        writer.transport.abort()
        raise LinkFailedError(f"the peer at {host}:{port} refused the direct path")
    return DirectFilesStream(reader, writer)
