"""``invite``, ``invites``, ``revoke`` and ``admit``: browser guests, through the running node."""

from __future__ import annotations

import argparse
import time
from typing import Any

from p2pchat.commands.node_cmds import _client, _print_json, _print_table, _text
from p2pchat.commands.profile import print_qr
from p2pchat.errors import UserError


def run_invite(args: argparse.Namespace) -> int:
    options: dict[str, str | bool] = {
        "expires": str(args.expires),  # seconds, checked by argparse
        "uses": str(args.uses),
        "approve": args.approve,
    }
    if args.name:
        options["label"] = args.name
    if args.group:
        options["group"] = args.group
    options.update(server_options(args))
    if args.password or args.password_file:
        from p2pchat.link_password import read_link_password

        options["password"] = read_link_password(args.password_file)
    invite = _client(args).call("invite", **options)
    if args.json:
        _print_json(invite)
        return 0
    print(f"Invite {_text(invite, 'invite_id')}: open this link on the guest's phone or laptop")
    print()
    print(f"  {_text(invite, 'url')}")
    print()
    print_qr(str(invite["url"]))
    uses = int(invite.get("uses_left", 0))
    print(
        f"Valid for {_duration(int(invite.get('seconds_left', 0)))},"
        f" {uses} guest{'s' if uses != 1 else ''}"
        + (", each admitted by you (`p2pchat admit GUEST`)" if invite.get("approve") else "")
        + f". Revoke it with `p2pchat revoke {_text(invite, 'invite_id')}`."
    )
    if invite.get("server"):
        print(
            f"Served by {_text(invite, 'server')} ({_text(invite, 'server_state')});"
            f" its certificate's SHA-256 is {_text(invite, 'certificate_sha256')}"
        )
    else:
        print(
            "The browser will warn about the self-signed certificate; its SHA-256 is"
            f" {_text(invite, 'certificate_sha256')}"
        )
    if invite.get("password"):
        print(
            "The guest also needs the password: tell it another way than the link."
            " 5 wrong tries revoke the invite."
        )
    else:
        print(
            "Anyone with the link can join until it is used or expires:"
            " share it only with your guest."
        )
    return 0


def run_invites(args: argparse.Namespace) -> int:
    invites: list[dict[str, Any]] = _client(args).call("invites")
    if args.json:
        _print_json(invites)
        return 0
    if not invites:
        print("No open invites. Make one with `p2pchat invite`.")
        return 0
    _print_table(
        ("ID", "FOR", "LABEL", "TIME LEFT", "USES LEFT", "GUESTS", "APPROVE"),
        [
            (
                _text(i, "invite_id"),
                f"group {_text(i, 'group_name')}" if i.get("group") else "1:1",
                _text(i, "label") if i.get("label") else "-",
                _duration(int(i.get("seconds_left", 0))),
                _text(i, "uses_left"),
                _text(i, "guests"),
                "yes" if i.get("approve") else "no",
            )
            for i in invites
        ],
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    invite = _client(args).call("revoke", invite=args.invite)
    print(f"Invite {_text(invite, 'invite_id')} revoked: its link no longer works.")
    return 0


def run_admit(args: argparse.Namespace) -> int:
    guest = _client(args).call("admit", peer=args.guest, deny=args.deny)
    verb = "let in" if guest.get("state") == "admitted" else "turned away"
    print(f"{_text(guest, 'name')} ({_text(guest, 'peer_id')}) {verb}.")
    return 0


def server_options(args: argparse.Namespace) -> dict[str, str]:
    """``--server``, ``--server-token`` / ``--server-token-file`` as control-call args."""
    options: dict[str, str] = {}
    if args.server:
        from p2pchat.node.invite_server import parse_server_url

        parse_server_url(args.server)  # a bad URL is told before any node is asked
        options["server"] = args.server
    token = args.server_token
    if args.server_token_file:
        token = read_token_file(args.server_token_file, "--server-token-file")
    if token:
        if not args.server:
            raise UserError("--server-token goes with --server URL")
        options["server_token"] = token
    return options


def read_token_file(path: str, option: str) -> str:
    """The first line of ``path``, stripped; a one-line error if there is none."""
    try:
        with open(path, encoding="utf-8") as file:
            token = file.readline(4096).strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{option}: cannot read {path}: {exc}") from None
    if not token:
        raise UserError(f"{option}: {path} is empty: put the owner token on its first line")
    return token


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        return time.strftime("%Hh%Mm", time.gmtime(seconds)).lstrip("0")
    return f"{seconds // 60}m{seconds % 60:02d}s"
