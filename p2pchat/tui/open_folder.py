"""``o``: open the folder of a received file with the desktop's file manager.

``xdg-open`` where there is one; where there is none (a server, a container)
or it fails, the caller shows the path instead. Never an exception.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

#: xdg-open hands the folder to the file manager and returns; past this, we stop waiting.
OPEN_TIMEOUT_S = 10.0


async def open_folder(folder: Path) -> str | None:
    """None if the folder was handed to the file manager, else why not (one line)."""
    opener = shutil.which("xdg-open")
    if opener is None:
        return "no xdg-open here"
    try:
        process = await asyncio.create_subprocess_exec(
            opener, str(folder), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as exc:
        return f"xdg-open did not start: {exc.strerror or exc}"
    try:
        code = await asyncio.wait_for(process.wait(), OPEN_TIMEOUT_S)
    except TimeoutError:
        return None  # still running: it is opening it
    return None if code == 0 else f"xdg-open failed (exit {code})"
