"""The batched access log: lines wait for the batch, never for a request; the batch is written by a thread of
its own, so a stuck stream stalls nothing; shutdown writes every line; a broken stream fails nothing."""

from __future__ import annotations

import asyncio
import io
import json
import threading

from serve.gateway.telemetry.access_log import AccessLog


class CountingStream(io.BytesIO):
    writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


class StuckStream(io.BytesIO):
    """A pipe nobody reads: write() blocks until the test lets it go, and says which thread it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.go = threading.Event(), threading.Event()
        self.threads: set[threading.Thread] = set()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.threads.add(threading.current_thread())
        self.entered.set()
        self.go.wait(60)
        return super().write(data)


def ids(stream: io.BytesIO) -> list:
    return [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()]


async def eventually(condition, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_lines_are_written_together_once_the_batch_is_due():
    stream = CountingStream()
    log = AccessLog(stream, flush_after_s=0.05)
    for i in range(3):
        log.write({"request_id": f"r{i}", "status": 200})
    assert stream.getvalue() == b""
    await eventually(lambda: stream.getvalue() != b"")
    assert ids(stream) == ["r0", "r1", "r2"] and stream.writes == 1
    await log.close()


async def test_a_full_batch_is_handed_over_at_once_and_flush_writes_the_rest():
    stream = CountingStream()
    log = AccessLog(stream, flush_after_s=60, max_lines=4)
    for i in range(9):
        log.write({"request_id": i})
    await eventually(lambda: len(stream.getvalue().splitlines()) == 8)  # two full batches, no timer needed
    log.flush()  # what tests do before reading the stream: returns once written
    assert ids(stream) == list(range(9)) and stream.writes == 3
    await log.close()


async def test_a_stuck_stream_blocks_the_writer_thread_not_the_loop_and_close_writes_every_line():
    stream = StuckStream()
    log = AccessLog(stream, flush_after_s=60, max_lines=2)
    for i in range(6):
        log.write({"request_id": i})  # three batches: the first is stuck in write(), two wait behind it
    assert await asyncio.to_thread(stream.entered.wait, 30)
    await asyncio.sleep(0)  # the loop still runs: requests go on while the stream is stuck
    log.write({"request_id": 6})
    (writer,) = stream.threads
    assert writer is not threading.current_thread() and writer.name.startswith("access-log")
    closing = asyncio.create_task(log.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # shutdown waits for the lines...
    stream.go.set()
    await asyncio.wait_for(closing, 30)
    assert ids(stream) == list(range(7))  # ...and every one is written, in order
    assert not writer.is_alive()  # the writer thread has ended


async def test_a_stream_that_never_catches_up_loses_lines_not_memory():
    stream = StuckStream()
    log = AccessLog(stream, flush_after_s=60, max_lines=1, max_batches=2)
    for i in range(5):
        log.write({"request_id": i})  # two batches held (one in write(), one waiting), three dropped
    assert log.dropped_lines == 3
    stream.go.set()
    await log.close()
    assert ids(stream) == [0, 1]


async def test_switched_off_or_broken_it_writes_nothing_and_raises_nothing():
    off = AccessLog(None)
    off.write({"i": 1})
    off.flush()
    await off.close()
    assert not off.enabled

    class Full(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise OSError(28, "No space left on device")

    broken = AccessLog(Full(), max_lines=1)
    broken.write({"i": 1})  # handed over at once: the writer swallows the error
    broken.flush()
    closed = io.BytesIO()
    closed.close()
    gone = AccessLog(closed, max_lines=1)
    gone.write({"i": 1})
    await gone.close()
