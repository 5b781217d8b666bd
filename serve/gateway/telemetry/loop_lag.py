"""Event-loop lag, measured from inside: a timer due every 100 ms records how late it ran. Whatever holds the
loop (a parse, a blocking call) delays every stream by as much, so this is the gateway's own stall meter."""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

INTERVAL_S = 0.1


class LoopLag:
    """Started with the app, stopped at cleanup; one timer callback per interval (~1 us each)."""

    def __init__(self, histogram: Histogram, interval_s: float = INTERVAL_S) -> None:
        self.histogram, self.interval_s = histogram, interval_s
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._schedule(self._loop.time())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.interval_s
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.histogram.observe(max(0.0, now - self._due))
        self._schedule(now)
