"""One block of the loop-blocking run: text streams back to back for a window, acknowledgements at a fixed
rate (open loop: sent on schedule whether or not earlier ones were answered) and, in the locked phase, another
process holding the store's write lock from before the first request until the window ends."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.core import client, procs
from benchmarks.core.workload import Workload, request_body
from serve.terms import TERMS_VERSION

MAX_ACKS_IN_FLIGHT = 2000  # past this, a stalled gateway would only pile up connections: count, don't send


class Locker:
    """The lock-holding process (benchmarks/loopblock/locker.py), driven over its stdin."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, cpu: int | None, cwd: Path) -> Locker:
        cmd = procs.pinned([sys.executable, "-m", "benchmarks.loopblock.locker"], cpu)
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc)

    async def _say(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        answer = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if not answer.endswith(b"done\n"):
            raise RuntimeError(f"the locker did not answer {line!r} (it said {answer!r})")

    async def lock(self, db: Path) -> None:
        await self._say(f"lock {db}")

    async def unlock(self) -> None:
        await self._say("unlock")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            await asyncio.wait_for(self.proc.wait(), 30)


@dataclass
class Arm:
    name: str
    url: str
    db: Path
    stream_key: str
    ack_keys: Iterator[str]  # each acknowledgement a new key: a real insert and fsync, as a new client's is


async def block(
    session: aiohttp.ClientSession,
    arm: Arm,
    *,
    model: str,
    streams: int,
    window_s: float,
    ack_rate: float,
    locker: Locker | None,
) -> dict[str, Any]:
    """Streams and acknowledgements for `window_s`; with `locker`, the store's write lock held meanwhile."""
    if locker is not None:
        await locker.lock(arm.db)
    end = time.monotonic() + window_s
    target = client.Target(arm.name, arm.url, expect_disclaimer=True)
    records: list[Any] = []
    acks: list[tuple[int | str, float]] = []
    text = Workload("text", model, 64, 100)
    headers = client.request_headers(arm.stream_key)

    async def streamer(k: int) -> None:
        i = k
        while time.monotonic() < end:
            records.append(await client.send(session, target, request_body(text, i)[1], headers=headers))
            i += streams

    runners = [asyncio.create_task(streamer(k)) for k in range(streams)]
    in_flight, skipped = await pace_acks(session, arm, ack_rate, end, acks)
    if locker is not None:
        await locker.unlock()
    await asyncio.gather(*runners, *in_flight)
    return {
        "gaps": [g for r in records for g in r.itl],
        # A blocked loop can hold a stream before its first token (then the tokens come in one burst, and
        # their gaps are ~0): the longest wait of each stream counts the first token's wait too.
        "waits": [max([r.ttft, *r.itl]) for r in records if r.ttft is not None],
        "streams_ok": sum(1 for r in records if r.ok),
        "streams_failed": sum(1 for r in records if not r.ok),
        "stream_errors": dict(Counter(r.error for r in records if not r.ok)),
        "acks": acks,
        "acks_skipped": skipped,
    }


async def pace_acks(
    session: aiohttp.ClientSession, arm: Arm, rate: float, end: float, out: list
) -> tuple[set[asyncio.Task[None]], int]:
    """Acknowledgements at `rate` per second until `end` (returns then: the ones still waiting, and how many
    were not sent because too many were waiting)."""
    in_flight: set[asyncio.Task[None]] = set()
    skipped, n, start = 0, 0, time.monotonic()
    while rate > 0 and (due := start + n / rate) < end:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        n += 1
        if len(in_flight) >= MAX_ACKS_IN_FLIGHT:
            skipped += 1
            continue
        task = asyncio.create_task(acknowledge(session, arm, next(arm.ack_keys), out))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    return set(in_flight), skipped


async def acknowledge(session: aiohttp.ClientSession, arm: Arm, key: str, out: list) -> None:
    started = time.perf_counter()
    status: int | str
    try:
        async with session.post(
            arm.url + "/v1/terms/acknowledge",
            json={"version": TERMS_VERSION},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        status = type(exc).__name__
    out.append((status, time.perf_counter() - started))
