"""A bare HTTP/1.1 keep-alive client for capacity runs, where the generator must cost far less than the proxy.

aiohttp's client spends ~0.15 ms of CPU per request here, about what a fast proxy spends: sharing one core
with the upstream, it would saturate before the proxy under test. This one writes prebuilt request bytes
on pooled connections and parses only the status line, the framing and the SSE it must read (~20 us).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from benchmarks.core import records as R
from benchmarks.core.client import CHAT_PATH, Clock, Target, json_outcome, stream_outcome, verdict
from benchmarks.core.records import RequestRecord
from benchmarks.core.sse import StreamParser


def request_bytes(target: Target, body: bytes, headers: dict[str, str], path: str = CHAT_PATH) -> bytes:
    host = urlsplit(target.base_url).netloc
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        *(f"{k}: {v}" for k, v in headers.items()),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ResponseReader:
    """Incremental HTTP/1.1 response framing (pure): Content-Length or chunked; yields the decoded body."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.done = False
        self.keep_alive = True
        self._buf = b""
        self._length: int | None = None  # None with chunked framing
        self._left = 0  # bytes of the current chunk (or of the body) still to come
        self._state = "head"

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        if self._state == "head" and not self._head():
            return b""
        return self._fixed() if self._length is not None else self._chunked()

    def _head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = self._buf[:end].split(b"\r\n")
        self._buf = self._buf[end + 4 :]
        self.status = int(lines[0].split(b" ", 2)[1])
        self._length, self._state = 0, "body"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                self._length = self._left = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self._length, self._state = None, "size"
            elif name == b"connection" and value == b"close":
                self.keep_alive = False
        return True

    def _fixed(self) -> bytes:
        out, self._buf = self._buf[: self._left], self._buf[self._left :]
        self._left -= len(out)
        self.done = self._left == 0
        return out

    def _chunked(self) -> bytes:
        out = []
        while not self.done:
            if self._state == "size":
                end = self._buf.find(b"\r\n")
                if end < 0:
                    break
                self._left = int(self._buf[:end].split(b";", 1)[0], 16)
                self._buf = self._buf[end + 2 :]
                self._state = "data" if self._left else "trailer"
            elif self._state == "data":
                if not self._buf:
                    break
                piece, self._buf = self._buf[: self._left], self._buf[self._left :]
                out.append(piece)
                self._left -= len(piece)
                if self._left == 0:
                    self._state = "crlf"
            else:  # "crlf" after a chunk's data, "trailer" after the last chunk
                if len(self._buf) < 2:
                    break
                self._buf = self._buf[2:]
                self.done = self._state == "trailer"
                self._state = "size"
        return b"".join(out)


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_data = None
        self.on_lost = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.on_lost is not None:
            self.on_lost()


class RawClient:
    """Pooled keep-alive connections to one target; each closed-loop worker holds at most one."""

    def __init__(self, target: Target, clock: Clock = time.perf_counter, timeout_s: float = 60.0) -> None:
        parts = urlsplit(target.base_url)
        self.target, self.clock, self.timeout_s = target, clock, timeout_s
        self._addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._idle: list[_Connection] = []

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, *self._addr)
        return conn

    async def send(self, payload: bytes, *, stream: bool, kind: str = "text") -> RequestRecord:
        """`payload` is a whole request from request_bytes(); never raises for a failed request."""
        rec, clock = RequestRecord(kind=kind), self.clock
        t0 = clock()
        try:
            conn = await self._connection()
        except OSError:
            return rec.fail(R.CONNECT)
        reader, parser, body = ResponseReader(), StreamParser(), []
        finished = asyncio.get_running_loop().create_future()

        def on_data(data: bytes) -> None:
            now = clock()
            piece = reader.feed(data)
            if stream and reader.status == 200:
                parser.feed(piece, now)
            else:
                body.append(piece)
            if reader.done and not finished.done():
                finished.set_result(now)

        def fail(exc: Exception) -> None:
            if not finished.done():
                finished.set_exception(exc)

        conn.on_data, conn.on_lost = on_data, lambda: fail(ConnectionResetError())
        timer = asyncio.get_running_loop().call_later(self.timeout_s, fail, TimeoutError())
        assert conn.transport is not None
        conn.transport.write(payload)
        try:
            end = await finished
        except ConnectionResetError:
            return rec.fail(R.DISCONNECT)
        except TimeoutError:
            conn.transport and conn.transport.close()
            return rec.fail(R.TIMEOUT)
        finally:
            timer.cancel()
        if reader.keep_alive:
            conn.on_data = conn.on_lost = None
            self._idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()
        return self._outcome(rec, reader, parser, b"".join(body), t0, end, stream)

    def _outcome(
        self,
        rec: RequestRecord,
        reader: ResponseReader,
        parser: StreamParser,
        body: bytes,
        t0: float,
        end: float,
        stream: bool,
    ) -> RequestRecord:
        rec.status = reader.status
        if reader.status != 200:
            rec.e2e = end - t0
            return rec.fail(R.http_error(reader.status or 0))
        if stream:
            stream_outcome(rec, parser, t0, end)
        else:
            rec.e2e = rec.ttft = end - t0
            json_outcome(rec, body)
        return verdict(rec, self.target.expect_disclaimer)

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
