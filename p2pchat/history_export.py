"""Export one conversation out of the encrypted profile: JSON or Markdown, written safely.

An export is plaintext on purpose (it is for reading elsewhere), so the command
warns first; this module makes the file itself as private as a file can be: it
is created 0600 under a temporary name in the target's directory and moved into
place only when complete, and it never replaces an existing file unless asked.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from p2pchat.errors import UsageError, UserError
from p2pchat.history_view import DELIVERY_LABELS, Conversation, format_time, terminal_safe
from p2pchat.store.records import StoredMessage

FORMATS_BY_SUFFIX = {".json": "json", ".md": "markdown", ".markdown": "markdown"}
EXPORT_FORMAT_NAME = "p2pchat-history"
EXPORT_FORMAT_VERSION = 1

# Backslash-escaped in Markdown bodies: what could start emphasis, code, links,
# HTML, tables or strikethrough inside a line. (Each message is on a list line of
# our own, so line-start syntax such as `#` or `1.` never applies to a body.)
_MARKDOWN_SPECIAL = frozenset("\\`*_[]<>|~&")


def export_format(target: str, *, json_requested: bool) -> str:
    """``json`` or ``markdown``, from the file's extension (``-``: JSON if ``--json``)."""
    if target == "-":
        return "json" if json_requested else "markdown"
    found = FORMATS_BY_SUFFIX.get(Path(target).suffix.lower())
    if found is None:
        raise UsageError(
            f"cannot tell the export format of {target!r} from its extension:"
            " name it .json or .md (or - for stdout)"
        )
    return found


def check_can_write(target: Path, *, force: bool) -> None:
    """Fail early (before the passphrase) if ``target`` cannot be written or would be
    replaced without ``force``."""
    if not force and (target.exists() or target.is_symlink()):
        raise UserError(f"{target} already exists: choose another name, or pass --force")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: there is no directory {target.parent}")


def render_export(
    export: str,
    conversation: Conversation,
    messages: Sequence[StoredMessage],
    *,
    exported_ms: int,
    filters: dict[str, Any],
    ascii_only: bool = False,
) -> Iterator[str]:
    """The export as text chunks (``export``: ``json`` or ``markdown``).

    ``ascii_only`` (for a terminal): JSON escapes every non-ASCII character, so
    no C1 control or bidi override from a message reaches the screen raw.
    """
    if export == "json":
        return _render_json(
            conversation, messages, exported_ms=exported_ms, filters=filters, ascii_only=ascii_only
        )
    return _render_markdown(conversation, messages, exported_ms=exported_ms, filters=filters)


def write_private_file(target: Path, chunks: Iterator[str], *, force: bool) -> None:
    """Write ``chunks`` to ``target`` atomically, mode 0600.

    Without ``force`` an existing ``target`` is never replaced, even one that
    appears while we write (the final step is a hard link, which fails then).
    """
    directory = target.parent
    try:
        fd, temporary_name = tempfile.mkstemp(  # 0600 whatever the umask
            prefix=f".{target.name}.", suffix=".tmp", dir=directory
        )
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror or error}") from None
    temporary = Path(temporary_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        _move_into_place(temporary, target, force=force)
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(directory)


def message_record(message: StoredMessage) -> dict[str, Any]:
    """A message as an export (and ``--json``) object."""
    return {
        "message_id": message.message_id.hex(),
        "direction": message.direction.value,
        "sender": message.sender,
        "timestamp_ms": message.timestamp_ms,
        "time": _iso_time(message.timestamp_ms),
        "text": message.body,
        "delivery": message.delivery.value,
    }


def markdown_escape(text: str) -> str:
    """``text`` as inert Markdown on one line: special characters escaped, control
    characters shown escaped, line breaks as ``<br>``."""
    lines = []
    for line in text.splitlines() or [""]:
        safe = terminal_safe(line)
        lines.append("".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in safe))
    return "<br>".join(lines)


# -- private -------------------------------------------------------------------


def _render_json(
    conversation: Conversation,
    messages: Sequence[StoredMessage],
    *,
    exported_ms: int,
    filters: dict[str, Any],
    ascii_only: bool,
) -> Iterator[str]:
    head = {
        "format": EXPORT_FORMAT_NAME,
        "version": EXPORT_FORMAT_VERSION,
        "exported_at": _iso_time(exported_ms),
        "conversation": {
            "id": conversation.conversation_id,
            "name": conversation.name,
            "kind": conversation.kind,
            "peer_id": conversation.peer_id,
        },
        "filters": filters,
        "message_count": len(messages),
    }
    # One message per line: a 100k-message export stays a stream of small writes.
    yield json.dumps(head, ensure_ascii=ascii_only, indent=1)[:-2] + ',\n "messages": ['
    for index, message in enumerate(messages):
        separator = "," if index else ""
        yield f"{separator}\n  {json.dumps(message_record(message), ensure_ascii=ascii_only)}"
    yield "\n ]\n}\n"


def _render_markdown(
    conversation: Conversation,
    messages: Sequence[StoredMessage],
    *,
    exported_ms: int,
    filters: dict[str, Any],
) -> Iterator[str]:
    kind = "guest" if conversation.kind == "guest" else "contact"
    yield f"# Conversation with {markdown_escape(conversation.name)}\n\n"
    yield f"- {kind.capitalize()}: `{terminal_safe(conversation.peer_id).replace('`', '')}`\n"
    if messages:
        first, last = format_time(messages[0].timestamp_ms), format_time(messages[-1].timestamp_ms)
        yield f"- Messages: {len(messages)}, from {first} to {last}\n"
    else:
        yield "- Messages: none\n"
    chosen = ", ".join(f"{key} {value}" for key, value in filters.items() if value is not None)
    if chosen:
        yield f"- Only: {markdown_escape(chosen)}\n"
    yield f"- Exported: {format_time(exported_ms)} (local time), not encrypted\n\n"
    for message in messages:
        label = DELIVERY_LABELS.get(message.delivery.value, message.delivery.value)
        state = f" *({label})*" if message.direction.value == "out" and label != "delivered" else ""
        yield (
            f"- **{format_time(message.timestamp_ms)}** {markdown_escape(message.sender)}:"
            f" {markdown_escape(message.body)}{state}\n"
        )


def _iso_time(timestamp_ms: int) -> str | None:
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000).astimezone()
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds")


def _move_into_place(temporary: Path, target: Path, *, force: bool) -> None:
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)  # fails if target exists: never a silent overwrite
    except FileExistsError:
        raise UserError(f"{target} already exists: choose another name, or pass --force") from None
    except OSError:  # a filesystem without hard links (FAT on a USB stick)
        if target.exists():
            raise UserError(
                f"{target} already exists: choose another name, or pass --force"
            ) from None
        os.replace(temporary, target)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
