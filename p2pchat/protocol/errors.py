"""Whose fault it is: our own misuse, or bad data from the other side (as in h11)."""

from __future__ import annotations


class ProtocolError(Exception):
    code = "protocol"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class LocalProtocolError(ProtocolError):
    """We asked for something the protocol does not allow (a bug or a misuse)."""

    code = "local"


class RemoteProtocolError(ProtocolError):
    """The peer (or someone in between) sent something we refuse."""

    code = "remote"
