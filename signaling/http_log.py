"""The logger for aiohttp's HTTP servers: a client's malformed request is not our error.

aiohttp logs every request it cannot parse (random bytes, a header line without a
colon, a missing Host, a line over 8 KiB...) at ERROR, with a traceback. Anyone on the
LAN can send those as fast as the wire goes, so it is log volume an attacker controls
(and a daemon whose stderr is a pipe nobody drains stops when the pipe fills). Those
go to DEBUG in one line; anything else, such as a bug in a handler, keeps its ERROR
and its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError


class RemoteErrorsAtDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Pass as ``logger=`` to ``web.AppRunner``."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            self.debug(f"{msg} (%s)", *args, type(exc).__name__)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def http_server_logger() -> RemoteErrorsAtDebug:
    return RemoteErrorsAtDebug(logging.getLogger("aiohttp.server"), {})
