"""A password link's guest in Python, in the test's own event loop (the page's side of
docs/guest-protocol.md "Password links"), over the relay path like tests/lan/guest_driver.py:
it makes a real offer on loopback but never applies the answer, and starts its stream on
the WebSocket. What it reports: whether the session opened, the owner's receipts, the
socket's close code and reason.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from p2pchat.crypto.cpace import normalize_password
from p2pchat.crypto.encoding import b64url_encode
from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.protocol import events
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.session import Role, Session
from p2pchat.transport.webrtc import DataChannelLink

SIGNAL, RELAY = 0x01, 0x02


@dataclass
class Attempt:
    opened: bool = False
    receipts: int = 0
    code: int | None = None
    reason: str = ""
    answered: asyncio.Event = field(default_factory=asyncio.Event)


async def async_attempt(
    url: str,
    password: str | None,
    *,
    text: str | None = None,
    hold: asyncio.Event | None = None,
    attempt: Attempt | None = None,
) -> Attempt:
    """One Join: offer, (``hold``: wait for it after the answer), header + confirmation;
    with ``text``, send it once open and leave after its receipt."""
    attempt = attempt or Attempt()
    link = URL(url)
    secret = LinkSecret.from_fragment(link.fragment)
    session = Session(
        Role.INITIATOR, LinkEnvelopes(secret.envelope_key, ReplayGuard()),
        password=normalize_password(password) if password is not None else None,
        link_room=secret.room_id_raw,
    )  # fmt: skip
    channel, sdp = await DataChannelLink.async_create_offer(
        on_message=lambda _data: None, interfaces=["lo"], files_channel=False
    )
    ws_url = f"wss://{link.host}:{link.port}/ws/{link.path.rsplit('/', 1)[-1]}"
    info = {"guest": b64url_encode(os.urandom(16)), "name": "pw-guest"}

    def wire(sealed: bytes) -> bytes:
        return bytes([RELAY]) + (encode_batch([sealed]) if session.batching else sealed)

    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http,
            http.ws_connect(ws_url, max_msg_size=0) as ws,
        ):
            await ws.send_bytes(bytes([SIGNAL]) + session.make_offer(sdp, _now_ms(), info))
            while True:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.BINARY:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        continue
                    attempt.code = (
                        msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
                    )
                    attempt.reason = msg.extra or ""
                    return attempt
                kind, body = msg.data[0], msg.data[1:]
                if kind == SIGNAL:
                    session.receive_answer(body, _now_ms())
                    attempt.answered.set()
                    if hold is not None:
                        await hold.wait()
                    await ws.send_bytes(bytes([RELAY]) + session.stream_header())
                    confirmation = session.confirmation(_now_ms())
                    if confirmation is not None:
                        await ws.send_bytes(bytes([RELAY]) + confirmation)
                    continue
                for event in session.receive_data(body, _now_ms()):
                    if isinstance(event, events.SessionOpened):
                        attempt.opened = True
                        if text is not None:
                            await ws.send_bytes(wire(session.send_text(text, _now_ms())[1]))
                    elif isinstance(event, events.ReceiptReceived):
                        attempt.receipts += 1
                        await ws.send_bytes(wire(session.close(_now_ms())))
                        await ws.close()
                    elif isinstance(event, events.PingReceived):
                        await ws.send_bytes(wire(session.pong(event.ping_id, _now_ms())))
    finally:
        await channel.async_close()


def _now_ms() -> int:
    return int(time.time() * 1000)
