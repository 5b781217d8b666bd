"""Keeps raw request bytes out of aiohttp's server log: a malformed request is logged by its error type only.

aiohttp logs a request its parser refuses at ERROR with the offending line in the message (a whole
`Authorization: Bearer sk-...` header, or a request line with patient text in its query). Our handlers' own
exceptions keep their tracebacks: they carry our code's state, not the client's raw bytes.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"


class DropRawRequest(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | UnicodeError):
            record.msg = "refused a malformed request: %s %s (its raw bytes are not logged)"
            record.args = (getattr(exc, "code", ""), type(exc).__name__)
            record.exc_info = record.exc_text = record.stack_info = None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Idempotent: the gateway calls it at start-up, tests may call it again."""
    logger = logger or logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, DropRawRequest) for f in logger.filters):
        logger.addFilter(DropRawRequest())
