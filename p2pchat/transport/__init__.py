"""Network transports: the aiortc data-channel adapter (and the LAN signaling client).

``DataChannelLink`` holds the WebRTC data channels (chat, files) to one peer; it takes and
gives complete SDP strings, which the signaling layer carries. See ``p2pchat.transport.webrtc``.
"""

from p2pchat.transport.errors import (
    LinkClosedError,
    LinkFailedError,
    LinkTimeoutError,
    LocalTransportError,
    MessageTooLargeError,
    RemoteSdpError,
    RemoteTransportError,
    SendBufferFullError,
    TransportError,
)
from p2pchat.transport.webrtc import (
    CHANNEL_LABEL,
    DEFAULT_LOW_WATER,
    FILES_CHANNEL_ID,
    FILES_CHANNEL_LABEL,
    FILES_LOW_WATER,
    MAX_BUFFERED_AMOUNT,
    MAX_MESSAGE_SIZE,
    DataChannelLink,
    LinkState,
)

__all__ = [
    "CHANNEL_LABEL",
    "DEFAULT_LOW_WATER",
    "FILES_CHANNEL_ID",
    "FILES_CHANNEL_LABEL",
    "FILES_LOW_WATER",
    "MAX_BUFFERED_AMOUNT",
    "MAX_MESSAGE_SIZE",
    "DataChannelLink",
    "LinkClosedError",
    "LinkFailedError",
    "LinkState",
    "LinkTimeoutError",
    "LocalTransportError",
    "MessageTooLargeError",
    "RemoteSdpError",
    "RemoteTransportError",
    "SendBufferFullError",
    "TransportError",
]
