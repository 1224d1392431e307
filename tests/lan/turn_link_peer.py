"""One side of a DataChannelLink through TURN, run inside a namespace by test_turn_credentials.

    python -m tests.lan.turn_link_peer offer|answer '<IceConfig as JSON>'

Lines of JSON on stdin/stdout carry the SDP (the test is the signaling channel):
the offerer prints {"sdp"}, reads {"sdp"} (the answer), sends "ping"; the answerer
reads {"sdp"} (the offer), prints {"sdp"}, answers "pong". Each prints at the end
{"path": selected_path, "got": <text received>}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from p2pchat.transport.ice_config import IceConfig
from p2pchat.transport.webrtc import DataChannelLink

OPEN_TIMEOUT_S = 30.0


def emit(value: dict[str, object]) -> None:
    print(json.dumps(value), flush=True)


async def read_line() -> dict[str, object]:
    line = await asyncio.to_thread(sys.stdin.readline)
    value: dict[str, object] = json.loads(line)
    return value


async def main(role: str, ice: IceConfig) -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()
    if role == "offer":
        link, offer = await DataChannelLink.async_create_offer(
            on_message=got.put_nowait, interfaces=["eth0"], files_channel=False, ice=ice
        )
        emit({"sdp": offer})
        await link.async_apply_answer(str((await read_line())["sdp"]))
        await link.async_wait_open(OPEN_TIMEOUT_S)
        link.send(b"ping")
    else:
        offer = str((await read_line())["sdp"])
        link, answer = await DataChannelLink.async_accept_offer(
            offer, on_message=got.put_nowait, interfaces=["eth0"], files_channel=False, ice=ice
        )
        emit({"sdp": answer})
        await link.async_wait_open(OPEN_TIMEOUT_S)
    message = await asyncio.wait_for(got.get(), OPEN_TIMEOUT_S)
    if role == "answer":
        link.send(b"pong")
    emit({"path": link.selected_path, "got": message.decode()})
    await read_line()  # the test says when both are done: closing early would cut the pong
    await link.async_close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], IceConfig(**json.loads(sys.argv[2]))))
