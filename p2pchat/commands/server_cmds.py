"""``server``, ``server set URL``, ``server clear``: the default remote invite server.

Saved in the profile (through the running node, which holds it open); ``invite``
without ``--server`` uses it. The owner token is never printed.
"""

from __future__ import annotations

import argparse

from p2pchat.commands.invite_cmds import read_token_file
from p2pchat.commands.node_cmds import _client, _print_json, _text
from p2pchat.node.invite_server import parse_server_url


def run_server(args: argparse.Namespace) -> int:
    action = getattr(args, "server_action", None)
    if action == "set":
        parse_server_url(args.url)  # a bad URL is told before any node is asked
    client = _client(args)
    if action == "set":
        options = {"url": args.url}
        if args.token_file:
            options["token"] = read_token_file(args.token_file, "--token-file")
        view = client.call("server_set", **options)
    elif action == "clear":
        view = client.call("server_clear")
    else:
        view = client.call("server")
    if args.json:
        _print_json(view)
        return 0
    if not view.get("url"):
        print("Invites are served by this node, for guests on your network (no server set).")
        if action is None:
            print("Guests outside it: `p2pchat server set https://HOST[:PORT] --token-file FILE`.")
        return 0
    token = "with an owner token" if view.get("token_set") else "without an owner token"
    state = view.get("state") or "not connected yet (no invite on it in this run)"
    verb = "saved" if action == "set" else "is"
    print(f"Invite server {verb}: {_text(view, 'url')}, {token}; {state}.")
    return 0
