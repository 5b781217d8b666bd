"""The access log: one JSON line per request, written in batches by a thread of its own, never on the loop.

Through `logging`, the line cost ~10% of the gateway's CPU at capacity (a LogRecord, a formatted timestamp and
a write(2) per request). Here a request only appends its encoded line; the batch goes to the writer thread
when it is full or `flush_after_s` after its first line, and at shutdown. A slow or stuck stream (a full pipe,
a slow disk) then delays the log, not the requests. What goes in a line is accounting.access_line's choice.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import orjson


class AccessLog:
    def __init__(
        self,
        stream: BinaryIO | None,
        *,
        flush_after_s: float = 0.05,
        max_lines: int = 256,
        max_batches: int = 64,
    ) -> None:
        """`stream` None: no access log at all. Past `max_batches` batches waiting for a stuck stream, batches
        are dropped (counted in `dropped_lines`) rather than held without bound."""
        self.stream = stream
        self.flush_after_s, self.max_lines = flush_after_s, max_lines
        self.dropped_lines = 0
        self._lines: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slots = threading.BoundedSemaphore(max_batches)
        self._writer: ThreadPoolExecutor | None = None  # started with the first batch
        self._last: Future[None] | None = None

    @classmethod
    def to_stderr(cls, enabled: bool = True) -> AccessLog:
        return cls(sys.stderr.buffer if enabled else None)

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def write(self, line: dict) -> None:
        if self.stream is None:
            return
        lines = self._lines
        lines.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if len(lines) >= self.max_lines:
            self._hand_off()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_after_s, self._hand_off)

    def flush(self) -> None:
        """Write every line so far and return once they are written (blocking: for tests and shutdown)."""
        self._hand_off()
        if self._last is not None:
            self._last.result()

    async def close(self) -> None:
        """At shutdown: all lines so far written, then the writer thread ends (a later line restarts it)."""
        self._hand_off()
        writer, self._writer, last, self._last = self._writer, None, self._last, None
        if last is not None:
            await asyncio.wrap_future(last)
        if writer is not None:
            await asyncio.to_thread(writer.shutdown, wait=True)

    def _hand_off(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines or self.stream is None:
            return
        lines, self._lines = self._lines, []
        if not self._slots.acquire(blocking=False):  # the stream has not kept up for max_batches batches
            self.dropped_lines += len(lines)
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="access-log")
        self._last = self._writer.submit(self._write, self.stream, b"".join(lines))

    def _write(self, stream: BinaryIO, data: bytes) -> None:
        """In the writer thread, one batch at a time and in order."""
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):  # a full or closed log stream must not fail requests
            pass
        finally:
            self._slots.release()
