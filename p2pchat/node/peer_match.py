"""Which contact or peer the user means by PEER: a display name or a peer-id prefix.

Pure, used by the CLI (``p2pchat history``) and by the node (every PEER argument).
A message must never go to someone the user did not mean, so:

* a whole peer id always wins (it names one key);
* otherwise every candidate whose name equals PEER (ignoring case) *or* whose peer
  id starts with PEER (at least ``MIN_PREFIX_CHARS``, dashes and case ignored)
  matches, and more than one match is an error listing them, never a guess;
* except that candidates marked *past* (guests who left) yield to current ones: a
  guest in the chat now is the "Dana" meant, not the Danas of earlier visits.
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
    plural: str | None = None,
    kind_of: Callable[[T], str] | None = None,
    past: Callable[[T], bool] | None = None,
    describe: Callable[[T], str] | None = None,
    none_yet: str | None = None,
    no_match: str | None = None,
    pick_one: str = "use more of the peer id",
) -> T:
    """The one candidate ``query`` names; ``UserError`` if none or several.

    ``name_of`` gives a candidate's display name, ``key_of`` its peer id (or its
    32-byte public key, whose peer id is then derived). The rest is wording and one
    rule:

    * ``kind`` / ``plural``: what the candidates are called ("contact"; "contacts");
      ``kind_of``: each one's own kind, when they are of several ("guest");
    * ``past``: candidates that yield to the others (a guest who left, against the
      one in the chat now): they are chosen only when no current one matches;
    * ``describe``: one candidate in a listing (default: "name (peer id)");
    * ``none_yet`` / ``no_match``: the whole message when there is no candidate at
      all / the start of it when none matches, with ``{query}`` for the quoted query;
    * ``pick_one``: how to name one of several that match.
    """
    wanted = query.strip()
    plural = plural or f"{kind}s"
    if not wanted:
        raise UserError(f"no {kind} given: name one by display name or peer id")

    def id_of(candidate: T) -> str:
        key = key_of(candidate)
        return peer_id(key) if isinstance(key, bytes) else key

    def shown(candidate: T) -> str:
        if describe is not None:
            return describe(candidate)
        return f"{printable(name_of(candidate))} ({printable(id_of(candidate))})"

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
    if past is not None and len(matches) > 1:
        current = [c for c in matches if not past(c)]
        matches = current or matches
    if len(matches) == 1:
        return matches[0]
    quoted = _quoted(wanted)
    if matches:
        raise UserError(
            f"{quoted} matches {len(matches)} {_plural_of(matches, kind_of, plural)}:"
            f" {_listing(matches, shown)}; {pick_one}"
        )
    if not candidates:
        message = none_yet or f"no {kind} matches {{query}}: there are no {plural} yet"
        raise UserError(message.replace("{query}", quoted))
    hint = "" if usable_prefix else f" (a peer-id prefix needs {MIN_PREFIX_CHARS}+ characters)"
    start = (no_match or f"no {kind} matches {{query}}").replace("{query}", quoted)
    raise UserError(
        f"{start}{hint}; {_plural_of(candidates, kind_of, plural)}: {_listing(candidates, shown)}"
    )


def _plural_of(candidates: Sequence[T], kind_of: Callable[[T], str] | None, plural: str) -> str:
    if kind_of is None:
        return plural
    kinds = sorted({kind_of(c) for c in candidates})
    return " and ".join(f"{k}s" for k in kinds)


def _listing(candidates: Sequence[T], shown: Callable[[T], str]) -> str:
    listed = ", ".join(shown(c) for c in candidates[:MAX_SHOWN])
    more = len(candidates) - MAX_SHOWN
    return listed + (f", and {more} more" if more > 0 else "")


def _quoted(text: str) -> str:
    return f'"{printable(text[:64])}"'


def printable(text: str) -> str:
    # Names come from the network: no newlines or escape sequences in a one-line error.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
