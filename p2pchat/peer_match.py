"""Which contact or peer the user means by PEER: a display name or a peer-id prefix.

Pure, used by the CLI (``p2pchat history``) and by the node (every PEER argument).
A message must never go to someone the user did not mean, so:

* a whole peer id always wins (it names one key);
* otherwise every candidate whose name equals PEER (ignoring case) *or* whose peer
  id starts with PEER (at least ``MIN_PREFIX_CHARS``, dashes and case ignored)
  matches, and more than one match is an error listing them, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from p2pchat.crypto.identity import normalize_peer_id, peer_id
from p2pchat.errors import UserError

T = TypeVar("T")

MIN_PREFIX_CHARS = 4  # one group of a peer id; shorter prefixes match too easily
MAX_SHOWN = 10  # candidates listed in an error message


def resolve_peer(
    query: str,
    candidates: Sequence[T],
    *,
    name_of: Callable[[T], str],
    key_of: Callable[[T], str | bytes],
    kind: str = "peer",
) -> T:
    """The one candidate ``query`` names; ``UserError`` if none or several.

    ``name_of`` gives a candidate's display name, ``key_of`` its peer id (or its
    32-byte public key, whose peer id is then derived); ``kind`` ("peer",
    "contact") is how the error message calls the candidates.
    """
    wanted = query.strip()
    if not wanted:
        raise UserError(f"no {kind} given: name one by display name or peer id")

    def id_of(candidate: T) -> str:
        key = key_of(candidate)
        return peer_id(key) if isinstance(key, bytes) else key

    prefix = normalize_peer_id(wanted)
    whole = [c for c in candidates if prefix and normalize_peer_id(id_of(c)) == prefix]
    if len(whole) == 1:
        return whole[0]
    folded = wanted.casefold()
    usable_prefix = len(prefix) >= MIN_PREFIX_CHARS
    matches = [
        c
        for c in candidates
        if name_of(c).strip().casefold() == folded
        or (usable_prefix and normalize_peer_id(id_of(c)).startswith(prefix))
    ]
    if len(matches) == 1:
        return matches[0]
    shown = _quoted(wanted)
    if matches:
        raise UserError(
            f"{shown} matches {len(matches)} {kind}s:"
            f" {_listing(matches, name_of, id_of)}; use more of the peer id"
        )
    if not candidates:
        raise UserError(f"no {kind} matches {shown}: there are no {kind}s yet")
    hint = "" if usable_prefix else f" (a peer-id prefix needs {MIN_PREFIX_CHARS}+ characters)"
    raise UserError(
        f"no {kind} matches {shown}{hint}; {kind}s: {_listing(candidates, name_of, id_of)}"
    )


def _listing(
    candidates: Sequence[T], name_of: Callable[[T], str], key_of: Callable[[T], str]
) -> str:
    listed = ", ".join(
        f"{_printable(name_of(c))} ({_printable(key_of(c))})" for c in candidates[:MAX_SHOWN]
    )
    more = len(candidates) - MAX_SHOWN
    return listed + (f", and {more} more" if more > 0 else "")


def _quoted(text: str) -> str:
    return f'"{_printable(text[:64])}"'


def _printable(text: str) -> str:
    # Names come from the network: no newlines or escape sequences in a one-line error.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
