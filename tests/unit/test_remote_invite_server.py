"""The remote invite server's pure parts: the owner's reconnect back-off, the
``--server`` URL and owner-token checks, the invite link on a remote server."""

from __future__ import annotations

import random

import pytest

from p2pchat.crypto.link import LinkSecret
from p2pchat.errors import UserError
from p2pchat.node.invite_server import ServerUrl, check_server_token, parse_server_url
from signaling.owner_client import BACKOFF_S, JITTER, STABLE_AFTER_S, Backoff, backoff_delay

SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_backoff_steps_with_jitter_then_stays_at_the_last(seed: int) -> None:
    backoff = Backoff(random.Random(seed))
    delays = [backoff.next_delay(now=0.0) for _ in range(len(BACKOFF_S) + 3)]
    steps = [*BACKOFF_S, BACKOFF_S[-1], BACKOFF_S[-1], BACKOFF_S[-1]]
    for delay, step in zip(delays, steps, strict=True):
        assert step * (1 - JITTER) <= delay <= step * (1 + JITTER), f"seed {seed}"


@pytest.mark.parametrize("seed", SEEDS)
def test_backoff_resets_only_after_a_stable_connection(seed: int) -> None:
    backoff = Backoff(random.Random(seed))
    for _ in range(4):
        backoff.next_delay(now=0.0)
    backoff.connected(now=100.0)  # dropped again before STABLE_AFTER_S: keep climbing
    assert backoff.next_delay(now=100.0 + STABLE_AFTER_S - 1) >= BACKOFF_S[4] * (1 - JITTER)
    backoff.connected(now=200.0)  # a connection that lasted: start over
    assert backoff.next_delay(now=200.0 + STABLE_AFTER_S) <= BACKOFF_S[0] * (1 + JITTER)


def test_backoff_delay_bounds_its_attempt() -> None:
    rng = random.Random(1)
    assert backoff_delay(-5, rng) <= BACKOFF_S[0] * (1 + JITTER)
    assert backoff_delay(10**9, rng) <= BACKOFF_S[-1] * (1 + JITTER)


@pytest.mark.parametrize(
    ("text", "base"),
    [
        ("https://chat.example.org", "https://chat.example.org"),
        ("https://chat.example.org/", "https://chat.example.org"),
        ("https://Chat.Example.org:443", "https://chat.example.org"),
        ("chat.example.org:8443", "https://chat.example.org:8443"),
        ("https://10.0.0.1:8443", "https://10.0.0.1:8443"),
        ("https://[2001:db8::1]:8443/", "https://[2001:db8::1]:8443"),
        ("  https://h:1  ", "https://h:1"),
    ],
)
def test_server_urls_taken(text: str, base: str) -> None:
    assert parse_server_url(text).base == base


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "1 to 256"),
        ("https://" + "a" * 300, "1 to 256"),
        ("http://chat.example.org", "https://HOST[:PORT]"),
        ("wss://chat.example.org", "https://HOST[:PORT]"),
        ("https://chat.example.org/c/room", "without a path"),
        ("https://chat.example.org/?x=1", "without a path"),
        ("https://user:pw@chat.example.org", "no user name"),
        ("https://chat.example.org:99999", "not a URL"),
        ("https://chat.example.org:0", "1 to 65535"),
        ("https://bad_host!", "not a host"),
        ("https://-x.org", "not a host"),
        ("https://:8443", "not a host"),
    ],
)
def test_server_urls_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(UserError, match=r"^--server: ") as caught:
        parse_server_url(text)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_owner_token_bounds() -> None:
    assert check_server_token(" tok-en_123 ") == "tok-en_123"
    for bad in ("", " ", "has space", "x" * 257, "naïve", "tab\there"):
        with pytest.raises(UserError, match="--server-token"):
            check_server_token(bad)


def test_the_link_points_at_the_server() -> None:
    secret = LinkSecret(bytes(range(32)))
    link = ServerUrl("chat.example.org", 443).link(secret)
    assert link == f"https://chat.example.org/c/{secret.room_id}#{secret.fragment}"
    assert ServerUrl("::1", 8443).link(secret).startswith("https://[::1]:8443/c/")


def test_watch_says_the_server_state_in_one_line() -> None:
    from p2pchat.commands.node_cmds import describe_event
    from p2pchat.node.events import InviteServerStatus

    event = InviteServerStatus("https://h:8443", "reconnecting", "connection lost: in 0.2 s")
    text = describe_event(event.to_json()).split("  ", 1)[1]
    assert text == "invite server https://h:8443: reconnecting (connection lost: in 0.2 s)"
    connected = InviteServerStatus("https://h:8443", "connected").to_json()
    assert describe_event(connected).split("  ", 1)[1] == "invite server https://h:8443: connected"
