"""A stand-in for the owner's node hosting one browser guest in a group.

Run inside a test namespace by tests/browser/test_guest_group.py (the node's groups
module is not built yet, so this plays its part): serves the real guest page with the
real signaling app on 127.0.0.1 and answers the guest with p2pchat's own protocol code,
on the relay path (docs/guest-protocol.md, "Groups"). Mode ``group``: once the session
opens it sends the member list first (the guest's ``gk`` listed as Bob's guest), then
members' messages, among them a forged one; every GROUP_MESSAGE of the page is checked
with ``group_state.receive_message`` as a member (Bob) holds the group; after the first
one a newer list (Carol out, Dave in) follows. Mode ``one-to-one``: announces groups but
sends no list (a 1:1 invite on a node that has groups).

Prints one JSON line per event the test waits for: ``ready`` (with the page's URL)
first, then ``text``, ``group_message``, ``receipt``, ``list2``, ``error``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from nacl.signing import SigningKey

from p2pchat.crypto.encoding import b64url_decode, b64url_encode
from p2pchat.crypto.envelope import LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.protocol import events
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.group_members import Member, MemberKind, MemberList, make_member_list
from p2pchat.protocol.group_messages import (
    ZERO_HASH,
    MessageKind,
    chain_hash,
    copy_id_of,
    make_group_message,
    message_id_of,
)
from p2pchat.protocol.group_state import GroupState, receive_list, receive_message
from p2pchat.protocol.session import Role, Session
from signaling.app import GuestConnection
from signaling.rooms import RoomRegistry
from signaling.server import SignalingServer

SIGNAL, RELAY = 0x01, 0x02
GROUP_ID = bytes(range(0xB0, 0xC0))


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def now_ms() -> int:
    return int(time.time() * 1000)


class GroupHost:
    """The owner's hooks (signaling.app.OwnerHooks) for one guest."""

    def __init__(self, link: LinkSecret, mode: str) -> None:
        self.envelopes = LinkEnvelopes(link.envelope_key, ReplayGuard())
        self.mode = mode
        self.alice, self.bob = SigningKey.generate(), SigningKey.generate()
        self.carol, self.bold, self.dave = (SigningKey.generate() for _ in range(3))
        self.session: Session | None = None
        self.guest: GuestConnection | None = None
        self.gk = b""
        self.name = "guest"
        self.state: GroupState | None = None  # the group as Bob holds it
        self.chains: dict[bytes, tuple[int, bytes]] = {}
        self.header_sent = False

    # -- OwnerHooks ------------------------------------------------------------------

    def on_guest_message(self, room_id: str, guest: GuestConnection, data: bytes) -> None:
        try:
            self._handle(guest, data)
        except Exception as exc:  # report, never raise into the server
            say(event="error", error=repr(exc))

    def on_guest_closed(self, room_id: str, guest: GuestConnection) -> None:
        say(event="guest_closed")

    # -- the guest ---------------------------------------------------------------------

    def _handle(self, guest: GuestConnection, data: bytes) -> None:
        if data[0] == SIGNAL:
            session = Session(Role.RESPONDER, self.envelopes, groups=True)
            offer = session.receive_offer(data[1:], now_ms())
            if offer.info.get("probe"):
                guest.send(bytes([SIGNAL]) + b"usable")
                return
            self.session, self.guest = session, guest
            self.gk = b64url_decode(offer.info["gk"])
            self.name = offer.info.get("name") or "guest"
            info = {"name": "Bob", "pk": b64url_encode(bytes(self.bob.verify_key)), "path": "relay"}
            guest.send(bytes([SIGNAL]) + session.make_answer("v=0\r\n", now_ms(), info))
            return
        assert self.session is not None
        for event in self.session.receive_data(data[1:], now_ms()):
            self._event(event)
        if not self.header_sent:  # that was the guest's header: answer with ours
            self.header_sent = True
            self._send_raw(self.session.stream_header())
            if self.mode == "group":
                self._start_group()

    def _event(self, event: events.Event) -> None:
        assert self.session is not None
        if isinstance(event, events.PingReceived):
            self._send(self.session.pong(event.ping_id, now_ms()))
        elif isinstance(event, events.ReceiptReceived):
            say(event="receipt", message_id=event.message_id.hex())
        elif isinstance(event, events.MessageReceived):
            self._send(self.session.send_receipt(event.message_id, now_ms()))
            say(event="text", text=event.text)
        elif isinstance(event, events.GroupFrameReceived):
            self._send(self.session.send_receipt(event.message_id, now_ms()))
            self._group_message(event)

    def _group_message(self, event: events.GroupFrameReceived) -> None:
        assert self.state is not None
        outcome = receive_message(self.state, event.payload)
        self.state = outcome.state
        copy_ok = event.message_id == copy_id_of(
            message_id_of(event.payload), bytes(self.bob.verify_key)
        )
        msg = outcome.message
        say(
            event="group_message",
            kind=int(event.kind),
            verdict=outcome.verdict.value,
            code=outcome.code,
            text=msg.text if msg else None,
            seq=msg.seq if msg else None,
            copy_ok=copy_ok,
        )
        if msg is not None and msg.seq == 1:
            self._second_list()

    # -- what the host sends -----------------------------------------------------------

    def _members(self, *extra: tuple[SigningKey, str]) -> list[Member]:
        lan = [(self.alice, "Alice"), (self.bob, "Bob"), *extra]
        members = [Member(MemberKind.LAN, bytes(k.verify_key), n) for k, n in lan]
        guest = Member(MemberKind.GUEST, self.gk, self.name, bytes(self.bob.verify_key))
        return [*members, guest]

    def _list(self, members_list: MemberList) -> None:
        copy = copy_id_of(message_id_of(members_list.encoded), self.gk)
        assert self.session is not None
        self._send(self.session.send_group_list(members_list.encoded, now_ms(), message_id=copy))

    def _message(self, sender: SigningKey, text: str, *, signer: SigningKey | None = None) -> None:
        key = bytes(sender.verify_key)
        seq, prev = self.chains.get(key, (0, ZERO_HASH))
        msg = make_group_message(
            GROUP_ID, self.state.epoch if self.state else 1, signer or sender, seq + 1, prev,
            now_ms(), MessageKind.TEXT, text.encode(),
        )  # fmt: skip
        encoded = msg.encoded
        if signer is not None:  # a forgery: claims `sender`, signed by another key
            encoded = encoded[:21] + key + encoded[53:]
        else:
            self.chains[key] = (seq + 1, chain_hash(encoded))
        copy = copy_id_of(message_id_of(encoded), self.gk)
        assert self.session is not None
        self._send(self.session.send_group_message(encoded, now_ms(), message_id=copy))

    def _start_group(self) -> None:
        first = make_member_list(
            GROUP_ID, 1, "Team ✓",
            self._members((self.carol, "Carol"), (self.bold, "<b>bold</b>")), self.alice,
        )  # fmt: skip
        self.state = GroupState(first, joined_epoch=1, my_key=bytes(self.bob.verify_key))
        self._list(first)
        self._message(self.alice, "hello from alice")
        self._message(self.carol, "forged", signer=self.dave)
        self._message(self.bold, "<i>not italic</i>")
        self._message(self.carol, "hello from carol")

    def _second_list(self) -> None:
        assert self.state is not None
        second = make_member_list(
            GROUP_ID, 2, "Team ✓", self._members((self.bold, "<b>bold</b>"), (self.dave, "Dave")),
            self.alice,
        )  # fmt: skip
        outcome = receive_list(self.state, second.encoded)
        assert outcome.state is not None
        self.state = outcome.state
        self._list(second)
        self._message(self.dave, "hello from dave")
        say(event="list2")

    def _send(self, sealed: bytes) -> None:
        assert self.session is not None
        self._send_raw(encode_batch([sealed]) if self.session.batching else sealed)

    def _send_raw(self, data: bytes) -> None:
        assert self.guest is not None
        self.guest.send(bytes([RELAY]) + data)


async def main(mode: str) -> None:
    link = LinkSecret.generate()
    registry = RoomRegistry()
    registry.open_room(link.room_id, expires_at=time.time() + 3600, now=time.time())
    server = SignalingServer(
        registry, host="127.0.0.1", port=0, ssl_context=None, owner_hooks=GroupHost(link, mode)
    )
    await server.async_start()
    say(event="ready", url=f"http://127.0.0.1:{server.port}/c/{link.room_id}#{link.fragment}")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
