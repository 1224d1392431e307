"""Turn what a user typed into a safe FTS5 MATCH expression.

FTS5 has its own query syntax (AND/OR/NOT, quotes, parentheses, ``col:``), and
people type things like ``don't`` or ``(see`` that are syntax errors there. So
every whitespace-separated word becomes a quoted phrase, and the phrases are
ANDed: every input is a valid query. A trailing ``*`` keeps its meaning
(prefix search): ``hel*`` finds "hello".
"""

from __future__ import annotations


def to_match_expression(user_query: str) -> str | None:
    """The FTS5 expression for ``user_query``, or None if it has no words."""
    phrases = []
    for word in user_query.split():
        prefix = word.endswith("*")
        text = word.rstrip("*")
        if not text:
            continue
        phrase = '"' + text.replace('"', '""') + '"'
        phrases.append(phrase + "*" if prefix else phrase)
    return " ".join(phrases) if phrases else None
