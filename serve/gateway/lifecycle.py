"""The gateway's shutdown state: serving, draining (the port still accepts) or closing (the port is closed), and
the model requests in flight that a drain waits for (serve/gateway/drain.py runs the drain)."""

from __future__ import annotations

import asyncio


class Lifecycle:
    """Serving, draining (the port still accepts) or closing (the port is closed): read by /health and the
    model routes, and the count of model requests in flight that the drain waits for."""

    __slots__ = ("_idle", "closing", "draining", "in_flight")

    def __init__(self) -> None:
        self.draining = False  # /health answers 503 and responses close their connections
        self.closing = False  # new model requests are refused; the requests left are ended server-side
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout_s: float, hurry: asyncio.Event) -> bool:
        """True once no model request is in flight; False at the timeout or when `hurry` is set first."""
        if not self.in_flight:
            return True
        self._idle = asyncio.Event()
        idle = asyncio.ensure_future(self._idle.wait())
        rushed = asyncio.ensure_future(hurry.wait())
        try:
            await asyncio.wait({idle, rushed}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            rushed.cancel()
        return not self.in_flight
