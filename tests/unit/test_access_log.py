"""The batched access log: lines wait for the batch, never for a request, and a broken stream fails nothing."""

from __future__ import annotations

import asyncio
import io
import json

from serve.gateway.telemetry.access_log import AccessLog


class CountingStream(io.BytesIO):
    writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


async def test_lines_are_written_together_once_the_batch_is_due():
    stream = CountingStream()
    log = AccessLog(stream, flush_after_s=0.05)
    for i in range(3):
        log.write({"request_id": f"r{i}", "status": 200})
    assert stream.getvalue() == b""
    await asyncio.sleep(0.1)
    assert [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()] == ["r0", "r1", "r2"]
    assert stream.writes == 1


async def test_a_full_batch_is_written_at_once():
    stream = CountingStream()
    log = AccessLog(stream, flush_after_s=60, max_lines=4)
    for i in range(9):
        log.write({"i": i})
    assert len(stream.getvalue().splitlines()) == 8 and stream.writes == 2
    log.flush()  # what shutdown does
    assert len(stream.getvalue().splitlines()) == 9


async def test_switched_off_or_broken_it_writes_nothing_and_raises_nothing():
    off = AccessLog(None)
    off.write({"i": 1})
    off.flush()
    assert not off.enabled

    class Full(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise OSError(28, "No space left on device")

    broken = AccessLog(Full(), max_lines=1)
    broken.write({"i": 1})  # flushes at once, and swallows the error
