"""Load shapes: a closed loop at fixed concurrency and an open loop of Poisson arrivals, warm-up excluded."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from benchmarks.core.records import RequestRecord

SendOne = Callable[[int], Awaitable[RequestRecord]]  # request index -> its record
OnDone = Callable[[RequestRecord], None]


@dataclass(frozen=True)
class Level:
    mode: str  # "concurrency" | "rate"
    value: float

    @property
    def label(self) -> str:
        return f"c={int(self.value)}" if self.mode == "concurrency" else f"rate={self.value:g}/s"


@dataclass(frozen=True)
class Budget:
    """How much to send per level: a request count, a duration, or both (whichever ends first)."""

    requests: int | None = None
    duration_s: float | None = None
    warmup: int = 0

    def measured(self, level: Level) -> int | None:
        """The request count of a level; with neither given, enough to fill the concurrency 4 times."""
        if self.requests is None and self.duration_s is None:
            return max(32, 4 * int(level.value)) if level.mode == "concurrency" else 64
        return self.requests


@dataclass
class RunResult:
    records: list[RequestRecord] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the generator's own CPU over the measured phase

    @property
    def cpu_fraction(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


async def run_level(
    send: SendOne,
    level: Level,
    budget: Budget,
    *,
    on_done: OnDone | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.process_time,
) -> RunResult:
    """Warm up (not recorded), then the measured phase. Request indices continue after the warm-up ones,
    so every target of a comparison gets the same sequence of prompts."""
    if budget.warmup:
        warm = Budget(requests=budget.warmup)
        await closed_loop(send, min(budget.warmup, max(int(level.value), 1)), warm, first=0, clock=clock)
    t0, cpu0 = clock(), cpu_clock()
    plan = Budget(budget.measured(level), budget.duration_s)
    if level.mode == "concurrency":
        records = await closed_loop(send, int(level.value), plan, budget.warmup, on_done, clock)
    else:
        records = await open_loop(send, level.value, plan, budget.warmup, on_done, clock, rng)
    return RunResult(records, clock() - t0, cpu_clock() - cpu0)


async def closed_loop(
    send: SendOne,
    concurrency: int,
    budget: Budget,
    first: int = 0,
    on_done: OnDone | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[RequestRecord]:
    """`concurrency` workers, each sending its next request as soon as its last one ends."""
    records: list[RequestRecord] = []
    t0 = clock()
    limit = None if budget.requests is None else first + budget.requests
    deadline = None if budget.duration_s is None else t0 + budget.duration_s
    counter = iter(range(first, limit if limit is not None else 1 << 62))

    async def worker() -> None:
        for i in counter:  # shared: each index is taken once
            if deadline is not None and clock() >= deadline:
                return
            await _one(send, i, t0, records, on_done, clock)

    await asyncio.gather(*(worker() for _ in range(max(concurrency, 1))))
    return records


async def open_loop(
    send: SendOne,
    rate: float,
    budget: Budget,
    first: int = 0,
    on_done: OnDone | None = None,
    clock: Callable[[], float] = time.perf_counter,
    rng: random.Random | None = None,
) -> list[RequestRecord]:
    """Arrivals of a Poisson process at `rate` per second, each sent whether or not earlier ones ended."""
    rng = rng or random.Random(0)
    records: list[RequestRecord] = []
    tasks: list[asyncio.Task[None]] = []
    t0 = arrival = clock()
    i = first
    while budget.requests is None or i < first + budget.requests:
        arrival += rng.expovariate(rate)
        if budget.duration_s is not None and arrival - t0 >= budget.duration_s:
            break
        await asyncio.sleep(max(arrival - clock(), 0.0))
        tasks.append(asyncio.create_task(_one(send, i, t0, records, on_done, clock)))
        i += 1
    await asyncio.gather(*tasks)
    return records


async def _one(
    send: SendOne,
    i: int,
    t0: float,
    records: list[RequestRecord],
    on_done: OnDone | None,
    clock: Callable[[], float],
) -> None:
    start = clock()
    rec = await send(i)
    rec.start = start - t0
    records.append(rec)
    if on_done is not None:
        on_done(rec)
