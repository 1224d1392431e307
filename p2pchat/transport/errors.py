"""Errors raised by the transport adapters.

Each error says whose fault it is: ``Local*`` errors mean this program misused the API,
``Remote*`` errors mean the peer (or whoever rewrote its SDP) sent something bad, and the
rest describe the link itself (it closed, failed or timed out). Messages are one line,
fit to show to a user.
"""

from __future__ import annotations

__all__ = [
    "LinkClosedError",
    "LinkFailedError",
    "LinkTimeoutError",
    "LocalTransportError",
    "MessageTooLargeError",
    "NoCandidatesError",
    "RemoteSdpError",
    "RemoteTransportError",
    "SendBufferFullError",
    "TransportError",
]


class TransportError(Exception):
    """Base class of every error raised by p2pchat.transport."""


class LocalTransportError(TransportError):
    """This program used the transport wrongly (bad argument, wrong state)."""


class RemoteTransportError(TransportError):
    """The remote side sent data that breaks the rules."""


class RemoteSdpError(RemoteTransportError):
    """An SDP offer or answer from the remote side is too large, unparsable or unusable."""


class NoCandidatesError(RemoteSdpError):
    """The remote SDP offers no ICE candidate: no direct connection can come of it.

    Chromium sends such offers on a LAN without a default route."""


class MessageTooLargeError(LocalTransportError):
    """A message handed to ``send`` is larger than ``MAX_MESSAGE_SIZE``."""


class SendBufferFullError(LocalTransportError):
    """The send buffer is over its hard bound: the sender did not wait for it to drain."""


class LinkClosedError(TransportError):
    """The link is closed (or failed) and can carry no more messages."""


class LinkFailedError(TransportError):
    """The link could not be opened, or broke while open."""


class LinkTimeoutError(LinkFailedError):
    """The link did not open within the allotted time."""
