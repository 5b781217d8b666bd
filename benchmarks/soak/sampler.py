"""A soak's time series: every interval, one scrape of the gateway and the requests that ended since the last."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import SendOne
from benchmarks.soak.stats import window

Scrape = Callable[[], Awaitable[dict[str, Any]]]


class Sampler:
    """Feed it every finished request (`on_done`) and send through `counting`; `run` ticks until stopped."""

    def __init__(
        self, scrape: Scrape, interval_s: float = 10.0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.scrape, self.interval_s, self.clock = scrape, interval_s, clock
        self.done: list[RequestRecord] = []
        self.samples: list[dict[str, Any]] = []
        self.sent = 0
        self._seen = 0
        self._t0 = self._last = clock()

    def on_done(self, rec: RequestRecord) -> None:
        self.done.append(rec)

    def counting(self, send: SendOne) -> SendOne:
        async def counted(i: int) -> RequestRecord:
            self.sent += 1
            return await send(i)

        return counted

    async def tick(self) -> dict[str, Any]:
        gateway = await self.scrape()
        now = self.clock()
        new, self._seen = self.done[self._seen :], len(self.done)
        sample = {
            "t": now - self._t0,
            "gateway": gateway,
            "window": window(new, now - self._last),
            "sent": self.sent,
            "done": len(self.done),
            "in_flight": self.sent - len(self.done),
        }
        self._last = now
        self.samples.append(sample)
        return sample

    async def run(
        self, stop: asyncio.Event, on_sample: Callable[[dict[str, Any]], Any] | None = None
    ) -> None:
        """A sample at once (the baseline), then on the interval's grid, and a last one after `stop`."""
        while True:
            sample = await self.tick()
            if on_sample is not None:
                on_sample(sample)
            if stop.is_set():
                return
            wait = self.interval_s - (self.clock() - self._t0) % self.interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
