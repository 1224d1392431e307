"""The ``p2pchat`` command line: parse, dispatch, turn user errors into one line.

Only argparse is imported here; each command's module is imported when that
command runs, so ``p2pchat --help`` stays fast (no aiortc, av or zeroconf).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from p2pchat import __version__
from p2pchat.cli_args import (
    OneLineParser,
    invite_uses,
    link_duration,
    port_number,
    positive_int,
)

Handler = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
Private chat across your home network: no internet, no server, no setup.
Peers on the LAN find each other, become contacts and chat end-to-end encrypted;
history is kept in an encrypted database.

Run with no command to start p2pchat (first run creates your profile)."""

EPILOG = """\
passphrase: taken from --passphrase-file, else $P2PCHAT_PASSPHRASE, else a prompt.
data: one profile per data directory: --data-dir, else $P2PCHAT_HOME,
else ~/.local/share/p2pchat. Run `p2pchat COMMAND --help` for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    # Typed as the base class; sub-parsers are OneLineParsers too (argparse makes them
    # of the parser's own class).
    parser: argparse.ArgumentParser = OneLineParser(
        prog="p2pchat",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"p2pchat {__version__}")
    _add_common(parser, suppress=False)
    parser.add_argument(
        "--interface",
        action="append",
        metavar="IF",
        dest="tui_interfaces",
        help="with no command: use only this network interface (repeatable)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=0,
        metavar="PORT",
        dest="tui_port",
        help="with no command: the LAN signaling port (default: any free port)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    init = _command(
        commands,
        "init",
        "create your profile (identity key and encrypted database)",
        "p2pchat.commands.profile:run_init",
    )
    init.add_argument("--name", help="your display name on the LAN (default: your user name)")
    init.add_argument(
        "--no-history",
        action="store_true",
        help="never write message bodies to disk (can be changed later)",
    )

    daemon = _command(
        commands,
        "daemon",
        "run the node headless (discovery, sessions, outbox)",
        "p2pchat.commands.daemon:run_daemon",
    )
    daemon.add_argument(
        "--interface",
        action="append",
        metavar="IF",
        help="use only this network interface (repeatable; default: all)",
    )
    daemon.add_argument(
        "--port",
        type=port_number,
        default=0,
        help="LAN signaling port (default: any free port, advertised in mDNS)",
    )
    daemon.add_argument(
        "--downloads",
        metavar="DIR",
        help="save received files in DIR (default: the profile's setting, else your"
        " downloads folder)",
    )
    daemon.add_argument("--verbose", action="store_true", help="debug logging on stderr")
    _add_json(daemon)

    ident = _command(
        commands,
        "id",
        "show your name, peer id, fingerprint and a QR code",
        "p2pchat.commands.profile:run_id",
    )
    _add_json(ident)
    _add_node_commands(commands)
    _add_invite_commands(commands)
    _add_group_commands(commands)
    _add_file_commands(commands)
    _add_signal_server_command(commands)
    return parser


def _add_invite_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Browser guests: invite links served by the running node."""
    guests = "p2pchat.commands.invite_cmds:"
    invite = _command(
        commands, "invite", "make a link (and QR code) for a browser guest", guests + "run_invite"
    )
    invite.add_argument(
        "--expires",
        type=link_duration,
        default="15m",
        metavar="TIME",
        help="how long the link works: 90s, 15m, 2h, 1d (default 15m)",
    )
    invite.add_argument(
        "--uses",
        type=invite_uses,
        default=1,
        metavar="N",
        help="how many guests may come in with it (default 1)",
    )
    invite.add_argument("--name", metavar="LABEL", help="a label for this invite, for you")
    invite.add_argument(
        "--approve", action="store_true", help="ask you to admit each guest (`p2pchat admit GUEST`)"
    )
    invite.add_argument(
        "--group", metavar="NAME", help="its guests join this group (you must be its admin)"
    )
    _add_server_options(invite)
    # Password links (a second factor beside the link: docs/protocol.md "Password (CPace)").
    password = invite.add_mutually_exclusive_group()
    password.add_argument(
        "--password", action="store_true", help="the guest also needs a password (asked twice)"
    )
    password.add_argument(
        "--password-file", metavar="FILE", help="as --password, read from FILE's first line"
    )
    _add_json(invite)
    _add_json(
        _command(
            commands, "invites", "list open invites and their time left", guests + "run_invites"
        )
    )
    revoke = _command(commands, "revoke", "make an invite link stop working", guests + "run_revoke")
    revoke.add_argument("invite", metavar="ID", help="the invite id `p2pchat invites` shows")
    admit = _command(
        commands, "admit", "let in a guest waiting at an --approve invite", guests + "run_admit"
    )
    admit.add_argument("guest", metavar="GUEST", help="the guest's name or guest:id")
    admit.add_argument("--deny", action="store_true", help="turn the guest away instead")
    _add_server_command(commands)


def _add_server_options(invite: argparse.ArgumentParser) -> None:
    """``invite --server``: the link points at a remote `p2pchat signal-server`."""
    invite.add_argument(
        "--server",
        metavar="URL",
        help="serve the link from this signal server (https://HOST[:PORT]) instead of"
        " this node; default: the one `p2pchat server set` saved, else the LAN",
    )
    token = invite.add_mutually_exclusive_group()
    token.add_argument("--server-token", metavar="TOKEN", help="the server's owner token")
    token.add_argument(
        "--server-token-file", metavar="FILE", help="read the owner token from FILE's first line"
    )


def _add_server_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``server [set URL | clear]``: the default remote invite server (profile setting)."""
    server = _command(
        commands,
        "server",
        "show the default invite server for guests outside your network",
        "p2pchat.commands.server_cmds:run_server",
    )
    _add_json(server)
    actions = server.add_subparsers(dest="server_action", metavar="{set,clear}")
    save = actions.add_parser("set", help="save URL as the default invite server")
    save.add_argument("url", metavar="URL", help="https://HOST[:PORT] of a `p2pchat signal-server`")
    save.add_argument("--token-file", metavar="FILE", help="its owner token, on FILE's first line")
    _add_common(save, suppress=True)
    _add_json(save)
    clear = actions.add_parser("clear", help="back to invites served by this node on the LAN")
    _add_common(clear, suppress=True)
    _add_json(clear)
    _add_json(
        _command(
            commands,
            "guests",
            "list this run's guests (live, waiting, past) with the label to write to each",
            "p2pchat.commands.node_cmds:run_guests",
        )
    )


def _add_group_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Groups: a signed member list kept by its admin; messages fan out to every member."""
    where = "p2pchat.commands.group_cmds:"
    group_help = "the group's name, or group:ID (the start of its id, `p2pchat groups`)"
    _add_json(
        _command(
            commands, "groups",
            "list your groups: members (online now or not), admin, id", where + "run_groups",
        )
    )  # fmt: skip
    group = commands.add_parser(
        "group",
        help="create a group, add or remove members (admin), leave one",
        description="Groups: everyone in one conversation. The creator is the group's admin:"
        " only the admin adds and removes members, picking them from its contacts; members"
        " need not be each other's contacts. Write to a group with `p2pchat send NAME TEXT`,"
        " read it with `p2pchat history NAME`.",
    )
    _add_common(group, suppress=True)
    group.set_defaults(handler=where + "run_group_usage")  # no ACTION: one line says which
    actions = group.add_subparsers(dest="group_command", metavar="ACTION")
    create = _command(actions, "create", "make a group with you as its admin",
                      where + "run_group_create")  # fmt: skip
    create.add_argument("name", metavar="NAME", help="its name (1 to 64 bytes)")
    create.add_argument("members", metavar="MEMBER", nargs="*",
                        help="contacts to put in it (name or peer id); add more later")  # fmt: skip
    add = _command(actions, "add", "add a contact to a group you are the admin of",
                   where + "run_group_add")  # fmt: skip
    add.add_argument("group", metavar="GROUP", help=group_help)
    add.add_argument("member", metavar="MEMBER", help="a contact: name or peer id")
    remove = _command(actions, "remove", "take a member out of a group you are the admin of",
                      where + "run_group_remove")  # fmt: skip
    remove.add_argument("group", metavar="GROUP", help=group_help)
    remove.add_argument("member", metavar="MEMBER", help="a member: name or peer id")
    keep = _command(actions, "keep", "keep a browser guest listed while its page is away (admin)",
                    where + "run_group_keep")  # fmt: skip
    keep.add_argument("group", metavar="GROUP", help=group_help)
    keep.add_argument("guest", metavar="GUEST",
                      help="a guest: its name as listed or its id (`groups --json`)")  # fmt: skip
    leave = _command(actions, "leave", "leave a group (its admin removes others first)",
                     where + "run_group_leave")  # fmt: skip
    leave.add_argument("group", metavar="GROUP", help=group_help)
    for sub in (create, add, remove, keep, leave):
        _add_json(sub)


def _add_file_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Files: send to a contact, list transfers, accept or cancel one."""
    where = "p2pchat.commands.file_cmds:"
    send = _command(commands, "send-file",
                    "send files to a contact or a group (resumable, end to end)",
                    where + "run_send_file")  # fmt: skip
    send.add_argument("peer", metavar="PEER|GROUP",
                      help="a contact: display name or the start of a peer id;"
                      " a browser guest in the chat: guest:ID (`p2pchat guests`);"
                      " or a group: its name or group:ID (each LAN member gets it)")  # fmt: skip
    send.add_argument("paths", metavar="PATH", nargs="+", help="the files to send")
    send.add_argument("--no-wait", action="store_true",
                      help="return once queued, without a progress bar")  # fmt: skip
    _add_json(send)
    files = _command(commands, "files", "list file transfers; accept or cancel one",
                     where + "run_files")  # fmt: skip
    _add_json(files)
    actions = files.add_subparsers(dest="files_command", metavar="ACTION")
    id_help = "the transfer's id, or its first 4+ hex digits (`p2pchat files`)"
    accept = _command(actions, "accept", "accept a file offered to you", where + "run_file_accept")
    accept.add_argument("transfer", metavar="ID", help=id_help)
    accept.add_argument("--to", metavar="DIR", help="save it in DIR (default: downloads)")
    _add_json(accept)
    cancel = _command(actions, "cancel", "cancel (or decline) a transfer, either way",
                      where + "run_file_cancel")  # fmt: skip
    cancel.add_argument("transfer", metavar="ID", help=id_help)
    _add_json(cancel)


def _add_signal_server_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    from signaling.cli import add_signal_server_arguments  # argparse only, no aiohttp

    server = _command(
        commands,
        "signal-server",
        "run the invite server on its own (for a TLS proxy or a shared host)",
        "signaling.cli:run_signal_server",
    )
    add_signal_server_arguments(server)


def _add_node_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands that talk to the running node over its control socket (and ``history``)."""
    node = "p2pchat.commands.node_cmds:"
    peer_help = "a display name or the start of a peer id (4+ characters)"
    _add_json(_command(commands, "status", "show the running node", node + "run_status"))
    _add_json(_command(commands, "peers", "list the peers found on the LAN", node + "run_peers"))
    _add_json(
        _command(commands, "contacts", "list your contacts and their state", node + "run_contacts")
    )
    add = _command(commands, "add", "ask a peer on the LAN to become a contact", node + "run_add")
    add.add_argument("peer", metavar="PEER", help=peer_help)
    _add_json(
        _command(
            commands, "requests", "list contact requests waiting for you", node + "run_requests"
        )
    )
    accept = _command(commands, "accept", "accept a contact request", node + "run_accept")
    accept.add_argument("peer", metavar="PEER", help=peer_help)
    reject = _command(commands, "reject", "refuse a contact request", node + "run_reject")
    reject.add_argument("peer", metavar="PEER", help=peer_help)
    verify = _command(
        commands,
        "verify",
        "show the safety number to compare with a contact, and mark them verified",
        node + "run_verify",
    )
    verify.add_argument("peer", metavar="PEER", help=peer_help)
    verify.add_argument(
        "--mark-verified",
        action="store_true",
        help="record that the numbers matched on both screens",
    )
    _add_json(verify)
    send = _command(commands, "send", "send a message to a contact or a guest", node + "run_send")
    send.add_argument(
        "peer",
        metavar="PEER",
        help=peer_help + ", a guest's name or guest:ID (a guest here now wins over past ones),"
        " or a group's name or group:ID",
    )
    send.add_argument(
        "text",
        metavar="TEXT",
        nargs="+",
        help="the message (words joined by spaces; - reads stdin)",
    )
    _add_json(send)
    _add_json(
        _command(
            commands,
            "watch",
            "print what happens (messages, peers, requests) until Ctrl-C",
            node + "run_watch",
        )
    )
    history = _command(
        commands,
        "history",
        "list, read, search and export your encrypted history (no running node needed)",
        "p2pchat.commands.history_cmd:run_history",
    )
    history.epilog = HISTORY_EPILOG
    history.formatter_class = argparse.RawDescriptionHelpFormatter
    history.add_argument(
        "peer",
        metavar="PEER",
        nargs="?",
        help="a contact (name or peer id), a guest (name or guest:ID) or a group (name or"
        " group:ID);"
        " without it, list the conversations",
    )
    history.add_argument(
        "--since", metavar="DATE", help="only messages from DATE on (2026-11-23, 2h, 3d…)"
    )
    history.add_argument(
        "--until", metavar="DATE", help="only messages before DATE (a day alone: to its end)"
    )
    history.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="only the last N messages (--search: the newest N hits, default 50)",
    )
    history.add_argument(
        "--search",
        metavar="WORDS",
        help="full-text search (all conversations, or PEER's); every word must match,"
        " word* matches a prefix",
    )
    history.add_argument(
        "--export",
        metavar="FILE",
        help="write PEER's conversation to FILE, NOT encrypted: .json or .md (- for stdout)",
    )
    history.add_argument(
        "--force", action="store_true", help="let --export replace an existing FILE"
    )
    _add_json(history)


HISTORY_EPILOG = """\
examples:
  p2pchat history                              conversations, most recent first
  p2pchat history alice --since 3d             alice's messages of the last 3 days
  p2pchat history alice --since 2026-11-01 --until "2026-11-23 14:30"
  p2pchat history --search "lunch tomorrow"    search every conversation
  p2pchat history alice --export alice.md      Markdown (.json: JSON), not encrypted

DATE: 2026-11-23, "2026-11-23 14:30", ISO 8601 (2026-11-23T14:30:00+01:00), or
2h / 3d / 1w ago; local time unless an offset is given."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser, which names the command and its help
        command = getattr(args, "command", None)
        _subparser(parser, command).error(f"unrecognized arguments: {' '.join(extra)}")
    handler_path: str = getattr(args, "handler", "p2pchat.commands.start:run_default")
    try:
        return _resolve(handler_path)(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # `p2pchat id | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except Exception as exc:  # user errors become one line; bugs keep their traceback
        message = _user_message(exc)
        if message is None:
            raise
        print(f"p2pchat: {message}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))


def _user_message(exc: Exception) -> str | None:
    from p2pchat.errors import UserError

    if isinstance(exc, UserError):
        return str(exc)
    store_errors = sys.modules.get("p2pchat.store.errors")
    if store_errors is not None and isinstance(exc, store_errors.StoreError):
        return str(exc.user_message)
    return None


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        choices = action.choices
        if isinstance(choices, dict) and command in choices:
            found: argparse.ArgumentParser = choices[command]
            return found
    return parser


def _resolve(path: str) -> Handler:
    module_name, _, function = path.partition(":")
    handler: Handler = getattr(importlib.import_module(module_name), function)
    return handler


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    handler: str,
) -> argparse.ArgumentParser:
    sub = commands.add_parser(
        name, help=summary, description=summary[0].upper() + summary[1:] + "."
    )
    sub.set_defaults(handler=handler)
    _add_common(sub, suppress=True)
    return sub


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Accepted before or after the command; SUPPRESS keeps a sub-parser from
    # overwriting a value given before the command.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=default,
        help="profile directory (default: $P2PCHAT_HOME or ~/.local/share/p2pchat)",
    )
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        default=default,
        help="read the profile passphrase from FILE (its whole content, less one final newline)",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


if __name__ == "__main__":
    raise SystemExit(main())
