"""The load of a rolling restart: a fixed number of streaming chat requests kept in flight until told to stop;
every request is recorded, its start on the same clock as the restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import SendOne


async def keep_streaming(
    send: SendOne,
    concurrency: int,
    stop: asyncio.Event,
    t0: float,
    clock: Callable[[], float] = time.perf_counter,
) -> list[RequestRecord]:
    """`concurrency` workers, each sending its next request as soon as its last one ends, until `stop` is set
    (requests in flight then finish and are recorded). `rec.start` is seconds after `t0`."""
    records: list[RequestRecord] = []
    counter = iter(range(1 << 62))  # shared: each prompt index is taken once

    async def worker() -> None:
        for i in counter:
            if stop.is_set():
                return
            start = clock()
            rec = await send(i)
            rec.start = start - t0
            records.append(rec)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records
