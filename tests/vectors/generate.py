"""Write tests/vectors/v1.json: known-answer vectors for p2pchat's wire formats.

Run once by hand when a format changes on purpose (``python tests/vectors/generate.py``);
the tests then check the code against the stored file, and the browser's JS tests
check libsodium.js against the same file. Inputs are fixed, so output is stable,
except the secret-stream header, which libsodium always draws at random: it is
recorded as an input for the pull side.
"""

from __future__ import annotations

import json
from pathlib import Path

from p2pchat.crypto.envelope import Direction, LanEnvelopes, LinkEnvelopes, ReplayGuard
from p2pchat.crypto.identity import Identity, fingerprint, peer_id
from p2pchat.crypto.link import LinkSecret
from p2pchat.crypto.safety import safety_number
from p2pchat.crypto.stream import KxKeyPair, StreamSender
from p2pchat.protocol.batch import encode_batch
from p2pchat.protocol.frames import ChatFrame, FrameType
from p2pchat.protocol.handshake import EnvelopeKind, HandshakeBody

HERE = Path(__file__).parent


def seed(n: int) -> bytes:
    return bytes((n + i) % 256 for i in range(32))


def build() -> dict[str, object]:
    alice, bob = Identity(seed(1)), Identity(seed(101))
    link = LinkSecret(seed(201))
    session_id = bytes(range(16))
    ts = 1_767_225_600_000
    body = HandshakeBody(
        sdp="v=0\r\n", kx_public=KxKeyPair(seed(50)).public, info={"name": "Alice"}
    )
    lan = LanEnvelopes(alice, bob.public_key, ReplayGuard())
    link_env = LinkEnvelopes(link.envelope_key, ReplayGuard())
    client, server = KxKeyPair(seed(60)), KxKeyPair(seed(70))
    client_keys = client.client_keys(server.public)
    frames = [
        ChatFrame(FrameType.TEXT, bytes([7] * 16), ts, "hello, world ✓".encode()),
        ChatFrame(FrameType.RECEIPT, bytes([7] * 16), ts + 1),
    ]
    sender = StreamSender(client_keys.tx)
    stream = {
        "key": client_keys.tx.hex(),
        "header": sender.header.hex(),
        "frames": [
            {"plaintext": f.encode().hex(), "ciphertext": sender.seal(f.encode()).hex()}
            for f in frames
        ],
    }
    return {
        "version": 1,
        "identity": [
            {
                "seed": s.seed.hex(),
                "public_key": s.public_key.hex(),
                "peer_id": peer_id(s.public_key),
                "fingerprint": fingerprint(s.public_key),
                "x25519_secret": s.x25519_secret.hex(),
            }
            for s in (alice, bob)
        ],
        "safety_number": {
            "key_a": alice.public_key.hex(),
            "key_b": bob.public_key.hex(),
            "digits": safety_number(alice.public_key, bob.public_key).digits,
            "qr_payload": safety_number(alice.public_key, bob.public_key).qr_payload,
        },
        "link": {
            "secret": link.secret.hex(),
            "fragment": link.fragment,
            "room_id": link.room_id,
            "envelope_key": link.envelope_key.hex(),
            "url": link.url("192.168.1.20", 8443),
        },
        "envelope_lan": {
            "sender_seed": alice.seed.hex(),
            "recipient_seed": bob.seed.hex(),
            "kind": int(EnvelopeKind.OFFER),
            "direction": int(Direction.INITIATOR),
            "session_id": session_id.hex(),
            "timestamp_ms": ts,
            "nonce": bytes([9] * 24).hex(),
            "body": body.encode().hex(),
            "envelope": lan.seal(
                EnvelopeKind.OFFER,
                Direction.INITIATOR,
                session_id,
                body.encode(),
                ts,
                nonce=bytes([9] * 24),
            ).hex(),
        },
        "envelope_link": {
            "envelope_key": link.envelope_key.hex(),
            "kind": int(EnvelopeKind.ANSWER),
            "direction": int(Direction.RESPONDER),
            "session_id": session_id.hex(),
            "timestamp_ms": ts,
            "nonce": bytes([10] * 24).hex(),
            "body": body.encode().hex(),
            "envelope": link_env.seal(
                EnvelopeKind.ANSWER,
                Direction.RESPONDER,
                session_id,
                body.encode(),
                ts,
                nonce=bytes([10] * 24),
            ).hex(),
        },
        "kx": {
            "client_seed": seed(60).hex(),
            "server_seed": seed(70).hex(),
            "client_public": client.public.hex(),
            "server_public": server.public.hex(),
            "client_rx": client_keys.rx.hex(),
            "client_tx": client_keys.tx.hex(),
        },
        "stream": stream,
        "batch": batch_vector(stream),
        "frames": [
            {
                "type": int(f.type),
                "message_id": f.message_id.hex(),
                "timestamp_ms": f.timestamp_ms,
                "body": f.body.hex(),
                "encoded": f.encode().hex(),
            }
            for f in frames
        ],
    }


def batch_vector(stream: dict[str, object]) -> dict[str, object]:
    """Both stream ciphertexts in one channel message (protocol/batch.py)."""
    frames = stream["frames"]
    assert isinstance(frames, list)
    items = [bytes.fromhex(f["ciphertext"]) for f in frames]
    return {
        "items": [item.hex() for item in items],
        "encoded": encode_batch(items).hex(),
    }


if __name__ == "__main__":
    (HERE / "v1.json").write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {HERE / 'v1.json'}")
