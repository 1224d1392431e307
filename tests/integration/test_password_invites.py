"""Password links end to end on loopback: a real node (its invite server on ``lo``) and a
Python guest doing what the page does: right password → chat; wrong → 4401 with the tries
left; a Join without the password → 4401, not counted; a second attempt while one is
pending → 1013; the 5th wrong password revokes the invite."""

from __future__ import annotations

import asyncio

from p2pchat.crypto.cpace import normalize_password
from p2pchat.node import Node
from p2pchat.node.events import GuestRefused
from tests.integration.password_guest import Attempt, async_attempt

PASSWORD = "hunter22"


async def _invite(node: Node, password: str | None = PASSWORD) -> str:
    view = await node.async_invite(
        expires_s=600, uses=1, label=None, approve=False,
        password=normalize_password(password) if password else None,
    )  # fmt: skip
    assert view.password == (password is not None)
    assert view.url.endswith(".pw") == (password is not None)
    return view.url


async def test_right_password_chats(node: Node) -> None:
    url = await _invite(node)
    attempt = await async_attempt(url, " hunter22 ", text="hello owner")  # normalised: stripped
    assert attempt.opened
    assert attempt.receipts == 1  # the owner read it
    assert [name for name, *_ in node.guests.conversations()] == ["pw-guest"]
    assert node.guests.invites()[0].uses_left == 0  # a right password consumes the use


async def test_wrong_password_is_told_the_tries_left(node: Node) -> None:
    url = await _invite(node)
    for left in (4, 3):
        attempt = await async_attempt(url, "hunter23")
        assert not attempt.opened
        assert (attempt.code, attempt.reason) == (4401, f"wrong password ({left} tries left)")
    assert node.guests.invites()[0].uses_left == 1  # a wrong password holds no use
    attempt = await async_attempt(url, PASSWORD, text="still works")
    assert attempt.opened


async def test_no_password_share_is_told_and_not_counted(node: Node) -> None:
    url = await _invite(node)
    for _ in range(6):  # more than MAX_PASSWORD_FAILURES: none of them counts
        attempt = await async_attempt(url, None)
        assert (attempt.code, attempt.reason) == (4401, "this link needs a password")
    attempt = await async_attempt(url, "wrong!")
    assert attempt.reason == "wrong password (4 tries left)"


async def test_a_share_on_a_link_without_password_is_a_bad_handshake(node: Node) -> None:
    url = await _invite(node, password=None)
    attempt = await async_attempt(url, PASSWORD)
    assert attempt.code == 4400
    assert "bad-handshake" in attempt.reason


async def test_one_pending_attempt_at_a_time(node: Node) -> None:
    url = await _invite(node)
    hold, first = asyncio.Event(), Attempt()
    pending = asyncio.create_task(async_attempt(url, "wrong-1", hold=hold, attempt=first))
    await first.answered.wait()  # the owner answered with its share: the attempt is pending
    second = await async_attempt(url, PASSWORD)
    assert (second.code, second.reason) == (1013, "busy: try again")
    hold.set()
    assert (await pending).reason == "wrong password (4 tries left)"


async def test_the_fifth_wrong_password_revokes_the_invite(node: Node) -> None:
    url = await _invite(node)
    refusals: list[str] = []
    seen = node.subscribe()

    async def collect() -> None:
        async for event in seen:
            if isinstance(event, GuestRefused):
                refusals.append(event.reason)

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)  # subscribed before the first attempt
    for left in (4, 3, 2, 1):
        attempt = await async_attempt(url, f"wrong-{left}")
        word = "try" if left == 1 else "tries"
        assert attempt.reason == f"wrong password ({left} {word} left)"
    last = await async_attempt(url, "wrong-0")
    assert (last.code, last.reason) == (4403, "5 wrong passwords: the invite is revoked")
    assert node.guests.invites() == []  # revoked: no longer open
    after = await async_attempt(url, PASSWORD)
    assert not after.opened
    assert after.code is not None
    assert after.code >= 4400
    await asyncio.sleep(0)
    collector.cancel()
    assert any("5 wrong passwords" in reason for reason in refusals)
    assert not any(PASSWORD in reason for reason in refusals)  # never told anywhere
