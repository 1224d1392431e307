"""``p2pchat init`` and ``p2pchat id``: create the profile, show who you are."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from p2pchat.crypto.encoding import b64url_encode
from p2pchat.crypto.identity import Identity, fingerprint
from p2pchat.passphrase import read_passphrase
from p2pchat.profile_name import MAX_NAME_BYTES
from p2pchat.store import ProfileExists, create_profile, open_profile, profile_exists
from p2pchat.store.paths import resolve_data_dir

CONTACT_CARD_PREFIX = "p2pchat:contact:1:"


def run_init(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    if profile_exists(data_dir):
        raise ProfileExists(data_dir)  # before asking for a passphrase twice
    name = _checked_name(args.name or getpass.getuser())
    passphrase = read_passphrase(args.passphrase_file, confirm=True)
    identity = Identity.generate()
    with create_profile(
        data_dir,
        passphrase,
        name=name,
        identity_seed=identity.seed,
        keep_history=not args.no_history,
    ):
        pass
    print(f"Created profile for {name} in {data_dir}")
    print(f"Peer id: {identity.peer_id}")
    if args.no_history:
        print("History is off: message bodies are never written to disk.")
    return 0


def run_id(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    with open_profile(data_dir, read_passphrase(args.passphrase_file)) as profile:
        name = profile.identity.name
        identity = Identity(profile.identity.seed)
    card = CONTACT_CARD_PREFIX + b64url_encode(identity.public_key)
    if args.json:
        json.dump(
            {
                "name": name,
                "peer_id": identity.peer_id,
                "fingerprint": fingerprint(identity.public_key),
                "public_key": b64url_encode(identity.public_key),
                "contact_card": card,
                "data_dir": str(data_dir),
            },
            sys.stdout,
        )
        print()
        return 0
    print(f"Name:        {name}")
    print(f"Peer id:     {identity.peer_id}")
    print(f"Fingerprint: {fingerprint(identity.public_key)}")
    print(f"Profile:     {data_dir}")
    print_qr(card)
    return 0


def print_qr(payload: str) -> None:
    """A QR code drawn with block characters, for a phone camera at the terminal."""
    import segno  # imported here: only the commands that draw a QR pay for it

    segno.make(payload, error="m").terminal(out=sys.stdout, compact=True)


def _checked_name(name: str) -> str:
    from p2pchat.errors import UsageError

    name = name.strip()
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES or not name.isprintable():
        raise UsageError(f"--name must be 1 to {MAX_NAME_BYTES} bytes of printable text")
    return name
