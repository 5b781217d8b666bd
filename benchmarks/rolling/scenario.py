"""One run shared by the engine-tier test and the benchmark: two gateways behind haproxy, streaming load through
haproxy, and `rolls` rolling restarts of both gateways with steady load before, between and after them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.core import client, textload
from benchmarks.core.records import RequestRecord
from benchmarks.rolling import load, restart
from benchmarks.rolling.gateways import Gateway, Launcher
from testkit import haproxy

SLOTS = ("gw1", "gw2")


@dataclass
class Stack:
    lb: haproxy.HAProxy
    slots: dict[str, Gateway]
    launch: Launcher


@dataclass
class Outcome:
    records: list[RequestRecord]
    restarts: list[restart.Restart]
    wall_s: float
    servers: dict[str, haproxy.ServerState] = field(default_factory=dict)  # haproxy's counters at the end


@contextlib.contextmanager
def stack(launch: Launcher, work: Path, timeout_s: float = 60.0) -> Iterator[Stack]:
    """Both gateways and haproxy in front of them, UP; everything started is stopped on the way out."""
    lb = None
    try:
        slots = {slot: launch(slot) for slot in SLOTS}
        lb = haproxy.start(work / "haproxy", {slot: gw.port for slot, gw in slots.items()})
        for slot, gw in slots.items():
            lb.wait_status(slot, "UP", timeout_s, port=gw.port)
        yield Stack(lb, slots, launch)
    finally:
        if lb is not None:
            lb.stop()
        launch.stop_all()


async def run(
    s: Stack,
    model: str,
    shape: textload.Shape,
    concurrency: int,
    rolls: int,
    settle_s: float,
    timeout_s: float = 120.0,
    say: Callable[[str], None] = print,
    sig: signal.Signals = signal.SIGTERM,
) -> Outcome:
    """Load through haproxy for settle, then (roll, settle) `rolls` times; the load stops after the last settle
    and the requests still in flight finish. Times in records and restarts are seconds from the load's start."""
    t0 = time.perf_counter()

    def clock() -> float:  # one clock for requests and restarts
        return time.perf_counter() - t0

    target = client.Target("haproxy", s.lb.url, expect_disclaimer=True)
    stop = asyncio.Event()
    restarts: list[restart.Restart] = []
    async with client.make_session(timeout_s * 5) as session:
        send = textload.sender(session, target, shape.workload(model), client.request_headers())
        streams = asyncio.create_task(load.keep_streaming(send, concurrency, stop, t0))
        try:
            for n in range(rolls):
                await asyncio.sleep(settle_s)
                say(f"rolling restart {n + 1}/{rolls}")
                done = await asyncio.to_thread(restart.roll, s.lb, s.slots, s.launch, clock, timeout_s, sig)
                restarts += done
                for r in done:
                    say(
                        f"  {r.slot}: UP on the new gateway after {r.up_s:.1f} s, old exited {r.old_exit_code}"
                    )
            await asyncio.sleep(settle_s)
        finally:
            stop.set()
            records = await streams
    wall = time.perf_counter() - t0
    return Outcome(records, restarts, wall, await asyncio.to_thread(s.lb.servers))
