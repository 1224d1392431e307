"""A real p2pchat daemon that, told to, forges group frames on its genuine sessions.

Started by tests/lan/test_groups.py as
``python -c "from tests.lan.group_forger import main; main()" --data-dir … daemon …``.
It is an ordinary member until it sends a group message whose text is ``FORGE``:
then, beside that genuine message, it sends on every open session with a member

* a message that claims another member (``FORGE_AS`` in its environment, a public key
  in hex) as its sender, signed by its own key (forged),
* the genuine message with one byte of its text changed (altered),
* its previous genuine message again, under a fresh copy id (replayed).

The receivers must refuse each with its documented code (docs/protocol.md "Groups").
"""

from __future__ import annotations

import os
import sys

from p2pchat.control.api import SentView
from p2pchat.node.groups import LanGroups
from p2pchat.node.links import now_ms
from p2pchat.protocol.group_messages import MessageKind, make_group_message

_last: dict[bytes, bytes] = {}  # group id → my previous genuine encoded message


def main() -> None:
    _install()
    from p2pchat.cli import main as cli_main

    raise SystemExit(cli_main(sys.argv[1:]))


def _install() -> None:
    send = LanGroups.async_send

    async def patched(self: LanGroups, conversation: str, text: str) -> SentView:
        gid = bytes.fromhex(conversation.removeprefix("group:"))
        previous = _last.get(gid)
        sent = await send(self, conversation, text)
        state = self._states[gid]
        genuine = self._core.profile.pending_outbox  # the copy just queued: its payload
        encoded = next(
            e.payload
            for key in self._lan_members(state)
            for e in reversed(genuine(key.hex()))
            if e.payload and e.frame_type == 6
        )
        _last[gid] = encoded
        if text != "FORGE" or previous is None:
            return sent
        victim = bytes.fromhex(os.environ["FORGE_AS"])
        mine = make_group_message(
            gid, state.epoch, self._core.identity.signing_key, 1, bytes(32), now_ms(),
            MessageKind.TEXT, b"I am someone else",
        )  # fmt: skip
        forged = mine.encoded[:21] + victim + mine.encoded[53:]  # the sender key swapped
        body_at = len(encoded) - 64 - len(text)
        altered = encoded[:body_at] + b"X" + encoded[body_at + 1 :]
        for key in self._lan_members(state):
            link = self._core.links.get(key)
            if link is None or link.state != "open" or not link.session.groups:
                continue
            for payload in (forged, altered, previous):
                link.send(
                    link.session.send_group_message(payload, now_ms(), message_id=os.urandom(16))
                )
        return sent

    LanGroups.async_send = patched  # type: ignore[method-assign]
