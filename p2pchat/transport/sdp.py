"""Bounds and checks for the SDP strings a data-channel link exchanges.

A remote SDP is untrusted input (it arrives through signaling): it is size-bounded,
parsed and checked here so that a bad one becomes a one-line ``RemoteSdpError`` instead
of an ``AssertionError``, ``AttributeError`` or ``ValueError`` from deep inside aiortc.
Only what a p2pchat link needs is accepted: one ``m=application`` section (a data
channel over DTLS/SCTP), ICE credentials, a DTLS fingerprint and at least one candidate
(we do not trickle, so an SDP without candidates could never connect).
"""

from __future__ import annotations

import re
from typing import Literal

from aiortc.sdp import SessionDescription

from p2pchat.transport.errors import NoCandidatesError, RemoteSdpError

__all__ = [
    "MAX_CANDIDATES",
    "MAX_SDP_SIZE",
    "check_remote_sdp",
    "drop_mdns_candidates",
    "set_max_message_size",
]

#: Largest SDP accepted from a peer, in bytes. aiortc's offers are ~1 KiB; a browser's
#: with a dozen candidates stays under 4 KiB.
MAX_SDP_SIZE = 16 * 1024

#: Most ICE candidates accepted in one SDP; each costs a socket pairing and checks.
MAX_CANDIDATES = 32

_DATA_CHANNEL_PROFILES = frozenset({"UDP/DTLS/SCTP", "DTLS/SCTP", "TCP/DTLS/SCTP"})
_MAX_MESSAGE_SIZE_LINE = re.compile(r"^a=max-message-size:\d+", re.MULTILINE)
# a=candidate:<foundation> <component> <transport> <priority> <address> ...
_MDNS_CANDIDATE_LINE = re.compile(
    r"^a=candidate:\S+ \S+ \S+ \S+ \S+\.local\.? [^\r\n]*(?:\r?\n|$)",
    re.MULTILINE | re.IGNORECASE,
)
_END_OF_CANDIDATES_LINE = re.compile(r"^a=end-of-candidates[ \t]*(?:\r?\n|$)", re.MULTILINE)


def check_remote_sdp(sdp: object, expected_type: Literal["offer", "answer"]) -> SessionDescription:
    """Check an SDP string received from the peer; return it parsed.

    Raises ``RemoteSdpError`` with a one-line reason if it is not a usable data-channel
    ``expected_type``.
    """
    what = f"SDP {expected_type}"
    if not isinstance(sdp, str):
        raise RemoteSdpError(f"{what} must be a string, not {type(sdp).__name__}")
    # Cheap bound first: a str never encodes to fewer bytes than it has characters.
    if len(sdp) > MAX_SDP_SIZE or len(sdp.encode("utf-8", "replace")) > MAX_SDP_SIZE:
        raise RemoteSdpError(f"{what} is larger than {MAX_SDP_SIZE} bytes")
    if not sdp.startswith("v=0"):
        raise RemoteSdpError(f"{what} is not SDP (it must start with 'v=0')")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser fails with any exception type
        raise RemoteSdpError(f"{what} is malformed ({type(exc).__name__})") from exc

    if len(parsed.media) != 1 or parsed.media[0].kind != "application":
        kinds = ", ".join(media.kind for media in parsed.media) or "none"
        raise RemoteSdpError(
            f"{what} must have exactly one m=application section (it has: {kinds})"
        )
    media = parsed.media[0]
    if media.profile not in _DATA_CHANNEL_PROFILES or media.fmt != ["webrtc-datachannel"]:
        raise RemoteSdpError(f"{what} does not describe a WebRTC data channel")
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise RemoteSdpError(f"{what} lacks ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if media.dtls is None or not media.dtls.fingerprints:
        raise RemoteSdpError(f"{what} lacks a DTLS fingerprint or a=setup role")
    if expected_type == "answer" and media.dtls.role not in ("client", "server"):
        raise RemoteSdpError(f"{what} must set a=setup to 'active' or 'passive'")
    if not media.ice_candidates:
        raise NoCandidatesError(f"{what} carries no ICE candidates (trickle ICE is not supported)")
    if len(media.ice_candidates) > MAX_CANDIDATES:
        raise RemoteSdpError(f"{what} carries more than {MAX_CANDIDATES} ICE candidates")
    return parsed


def set_max_message_size(sdp: str, size: int) -> str:
    """Return ``sdp`` advertising ``a=max-message-size:size`` (RFC 8841).

    aiortc advertises 256 KiB; we announce our own, smaller bound so that a conforming
    peer never sends a message we would reject. Only this attribute is changed.
    """
    return _MAX_MESSAGE_SIZE_LINE.sub(f"a=max-message-size:{size}", sdp)


def drop_mdns_candidates(sdp: str) -> str:
    """Return ``sdp`` without its ``<name>.local`` (mDNS) host candidates.

    Browsers hide their addresses behind such names. aioice would try to resolve each
    one before we can answer (1 s each, in vain: Firefox answers only once ICE checks
    start, and dnspython refuses Chromium's answer), and with none resolved and
    ``a=end-of-candidates`` it drops the whole ICE component and gathers nothing. So
    they go, and so does ``a=end-of-candidates`` when any did: ICE then waits for the
    browser's checks, which reach our own candidates and become peer-reflexive ones.
    """
    kept, dropped = _MDNS_CANDIDATE_LINE.subn("", sdp)
    if dropped:
        kept = _END_OF_CANDIDATES_LINE.sub("", kept)
    return kept
