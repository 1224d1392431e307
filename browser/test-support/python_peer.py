"""The Python side of the interop tests (browser/test/interop.test.mjs).

Reads one JSON request per line on stdin, answers one JSON line on stdout. Bytes
travel as hex. Uses p2pchat's own code, so the JS guest is checked against the
real owner implementation, not a copy of it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from p2pchat.crypto.envelope import Direction, LinkEnvelopes, ReplayGuard
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.safety import safety_number
from p2pchat.protocol import events
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.frames import decode_frame
from p2pchat.protocol.group_members import MemberKind, decode_member_list
from p2pchat.protocol.group_messages import decode_group_message
from p2pchat.protocol.group_state import GroupState, receive_list, receive_message
from p2pchat.protocol.handshake import decode_handshake
from p2pchat.protocol.session import Role, Session


class Peer:
    def __init__(self) -> None:
        self.envelopes: LinkEnvelopes | None = None
        self.session: Session | None = None
        self.group: GroupState | None = None

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        now = req.get("now", 0)
        if op == "init":
            link = LinkSecret.from_fragment(req["fragment"])
            self.envelopes = LinkEnvelopes(link.envelope_key, ReplayGuard())
            role = Role.RESPONDER if req["role"] == "responder" else Role.INITIATOR
            self.session = Session(role, self.envelopes, groups=bool(req.get("groups")))
            return {"room_id": link.room_id, "envelope_key": link.envelope_key.hex()}
        if op == "safety":
            sn = safety_number(bytes.fromhex(req["a"]), bytes.fromhex(req["b"]))
            return {"digits": sn.digits, "qr": sn.qr_payload}
        if op == "decode_handshake":
            body = decode_handshake(bytes.fromhex(req["data"]))
            return {"sdp": body.sdp, "kx": body.kx_public.hex(), "info": dict(body.info)}
        if op == "decode_member_list":
            members = decode_member_list(bytes.fromhex(req["data"]))
            return {
                "epoch": members.epoch,
                "name": members.name,
                "members": [[int(m.kind), m.key.hex(), m.name] for m in members.members],
            }
        if op == "decode_group_message":
            msg = decode_group_message(bytes.fromhex(req["data"]))
            return {"seq": str(msg.seq), "kind": int(msg.kind), "body": msg.body.hex()}
        if op == "group_hold":  # hold a list as the LAN member with key `me` (a fresh group)
            members = decode_member_list(bytes.fromhex(req["list"]))
            me = bytes.fromhex(req["me"])
            listed = members.member(me)
            assert listed is not None
            assert listed.kind is MemberKind.LAN
            self.group = GroupState(members, joined_epoch=members.epoch, my_key=me)
            return {"epoch": members.epoch}
        if op == "group_list":
            assert self.group is not None
            list_outcome = receive_list(self.group, bytes.fromhex(req["data"]))
            self.group = list_outcome.state or self.group
            return {"verdict": list_outcome.verdict.value, "code": list_outcome.code}
        if op == "group_receive":
            assert self.group is not None
            outcome = receive_message(self.group, bytes.fromhex(req["data"]))
            self.group = outcome.state
            return {
                "verdict": outcome.verdict.value,
                "code": outcome.code,
                "text": outcome.message.text if outcome.message else None,
                "missing": outcome.missing,
                "message_id": outcome.message_id.hex() if outcome.message_id else None,
            }
        if op == "decode_frame":
            frame = decode_frame(bytes.fromhex(req["data"]))
            return {"type": int(frame.type), "body": frame.body.hex()}
        assert self.envelopes is not None
        assert self.session is not None
        s = self.session
        if op == "open_envelope":
            opened = self.envelopes.open(
                bytes.fromhex(req["data"]), Direction(req["expected"]), now
            )
            return {
                "kind": opened.kind,
                "direction": int(opened.direction),
                "session_id": opened.session_id.hex(),
                "timestamp_ms": opened.timestamp_ms,
                "body": opened.body.hex(),
            }
        if op == "receive_offer":
            offer = s.receive_offer(bytes.fromhex(req["data"]), now)
            return {
                "session_id": offer.session_id.hex(),
                "sdp": offer.sdp,
                "info": dict(offer.info),
            }
        if op == "make_answer":
            return {"data": s.make_answer(req["sdp"], now, req.get("info")).hex()}
        if op == "make_offer":
            return {"data": s.make_offer(req["sdp"], now, req.get("info")).hex()}
        if op == "receive_answer":
            answer = s.receive_answer(bytes.fromhex(req["data"]), now)
            return {"sdp": answer.sdp, "info": dict(answer.info)}
        if op == "kx_public":
            return {"data": s._kx.public.hex()}
        if op == "header":
            return {"data": s.stream_header().hex(), "state": s.state.name}
        if op == "receive":
            return {
                "events": [_event(e) for e in s.receive_data(bytes.fromhex(req["data"]), now)],
                "state": s.state.name,
            }
        if op == "send_text":
            message_id, data = s.send_text(req["text"], now)
            return {"message_id": message_id.hex(), "data": _wire(s, [data]).hex()}
        if op == "send_batch":  # several texts in one channel message, as PeerLink sends them
            sent = [s.send_text(text, now) for text in req["texts"]]
            return {
                "message_ids": [mid.hex() for mid, _ in sent],
                "data": _wire(s, [data for _, data in sent]).hex(),
            }
        if op == "send_group":  # a GROUP_MESSAGE (6) or GROUP_LIST (7) frame to the guest
            payload = bytes.fromhex(req["payload"])
            mid = bytes.fromhex(req["message_id"])
            if req["kind"] == 7:
                data = s.send_group_list(payload, now, message_id=mid)
            else:
                data = s.send_group_message(payload, now, message_id=mid)
            return {"data": _wire(s, [data]).hex()}
        if op == "receipt":
            data = s.send_receipt(bytes.fromhex(req["message_id"]), now)
            return {"data": _wire(s, [data]).hex()}
        if op == "ping":
            ping_id, data = s.send_ping(now)
            return {"ping_id": ping_id.hex(), "data": _wire(s, [data]).hex()}
        if op == "pong":
            return {"data": _wire(s, [s.pong(bytes.fromhex(req["ping_id"]), now)]).hex()}
        if op == "close":
            return {"data": _wire(s, [s.close(now)]).hex(), "state": s.state.name}
        raise ValueError(f"unknown op {op}")


def _wire(session: Session, sealed: list[bytes]) -> bytes:
    """What PeerLink puts on the channel: a batch when both ends announced them."""
    if session.batching:
        return encode_batch(sealed)
    assert len(sealed) == 1
    return sealed[0]


def _event(event: events.Event) -> dict[str, Any]:
    if isinstance(event, events.SessionOpened):
        return {"type": "opened"}
    if isinstance(event, events.SessionClosed):
        return {"type": "closed"}
    if isinstance(event, events.MessageReceived):
        return {
            "type": "message",
            "message_id": event.message_id.hex(),
            "timestamp_ms": event.timestamp_ms,
            "text": event.text,
        }
    if isinstance(event, events.ReceiptReceived):
        return {"type": "receipt", "message_id": event.message_id.hex()}
    if isinstance(event, events.PingReceived):
        return {"type": "ping", "ping_id": event.ping_id.hex()}
    if isinstance(event, events.GroupFrameReceived):
        return {
            "type": "group",
            "kind": int(event.kind),
            "message_id": event.message_id.hex(),
            "payload": event.payload.hex(),
        }
    if isinstance(event, events.PongReceived):
        return {"type": "pong", "ping_id": event.ping_id.hex(), "timestamp_ms": event.timestamp_ms}
    return {"type": type(event).__name__}


def main() -> None:
    peer = Peer()
    for line in sys.stdin:
        try:
            reply = peer.handle(json.loads(line))
        except Exception as exc:  # report every refusal with its code
            reply = {"error": getattr(exc, "code", type(exc).__name__), "message": str(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
