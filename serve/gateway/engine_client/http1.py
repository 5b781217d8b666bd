"""A keep-alive HTTP/1.1 client for the one upstream the gateway talks to (the engine, or Ray's ingress).

Why not aiohttp's ClientSession: under load its per-request path (URL and header building, payload registry,
tracing hooks, timeouts, connector bookkeeping) was ~22% of the gateway's CPU (BENCHMARKS.md, "Gateway
capacity"). The gateway needs much less: one origin on a trusted network, plain HTTP, no redirects, cookies,
proxies or decompression. So this client writes the request bytes itself and parses answers with httptools
(llhttp, the parser uvicorn uses), over a LIFO pool of keep-alive connections.

What it does keep: a connect timeout and answer deadlines matched to the work (engine_client.deadlines),
back-pressure on bodies the caller reads slower than they come, and a response closed before its end closes its
connection (vLLM aborts the request on disconnect). No request is ever sent twice (see Pool.request).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Iterable, Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools

from serve.gateway.engine_client.deadlines import Limits, check, first_check

HIGH_WATER = 256 * 1024  # buffered body bytes past which reading from the upstream pauses
COALESCE_LIMIT = 64 * 1024  # request head and body are joined into one write below this size
UNASKED = "the upstream sent an answer nobody asked for"
# Idle connections are dropped well before the server would time them out, so a request is rarely written to a
# connection the server is closing at that moment (such a request fails: it is never resent). vLLM's API server
# (uvicorn) closes idle connections after VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s by default (vllm/envs.py, vLLM 0.32);
# Ray Serve's proxy after http_options.keep_alive_timeout_s, 90 s by default since ray-project/ray#54127 (2025),
# 5 s before (ray.serve.config.HTTPOptions). 3 s keeps a 2 s margin under the shortest of them.
KEEPALIVE_S = 3.0


class UpstreamError(Exception):
    """The upstream could not be reached or failed mid-answer; `kind` is the bounded metric label."""

    kind = "disconnect"


class ConnectFailed(UpstreamError):
    kind = "connect"


class ReadTimeout(UpstreamError):
    kind = "timeout"


class Disconnected(UpstreamError):
    kind = "disconnect"


class Interrupted(UpstreamError):
    """The gateway itself ended the exchange (shutting down: Pool.fail_in_flight)."""

    kind = "shutdown"


class PoolTimeout(ConnectFailed):
    """Every connection the pool may open is busy, and none came free in time."""


def origin(base_url: str) -> tuple[str, int, str]:
    """(host, port, path prefix) of an http:// base URL; anything else is a ValueError."""
    url = urlsplit(base_url)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"the upstream must be an http:// URL (a loopback or private address): {base_url!r}")
    return url.hostname, url.port or 80, url.path.rstrip("/")


def _check_header(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("header values must not contain line breaks")
    return value


class Response:
    """One answer: status and headers at once, the body read whole (`read`) or as it comes (`async for`)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_fed",
        "_head",
        "_loop",
        "_paused",
        "_taken",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn: _Connection | None = conn
        self._loop = conn.loop
        self._head = conn.loop.create_future()
        self._chunks: deque[bytes] = deque()
        self._fed = 0  # body bytes received so far (the first one ends a stream's first-byte limit)
        self._taken = 0  # of which handed to the caller: the rest is buffered
        self._paused = False  # reading from the upstream stopped until the caller catches up
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._error: UpstreamError | None = None
        self.status = 0
        self.headers: dict[str, str] = {}

    @property
    def content_type(self) -> str:
        """The media type without parameters; an answer without one is octet-stream (RFC 9110, 8.3)."""
        value = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return value or "application/octet-stream"

    async def read(self) -> bytes:
        parts = []
        async for data in self:
            parts.append(data)
        return b"".join(parts)

    async def text(self) -> str:
        return (await self.read()).decode("utf-8", "replace")

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        """Everything buffered so far, as one bytes object; waits when nothing is."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._taken = self._fed
        if self._paused and self._conn is not None:
            self._paused = False
            conn = self._conn
            conn.last_read = self._loop.time()  # the stall limit restarts: the pause was the caller's doing
            conn.transport.resume_reading()
        return data

    def close(self) -> None:
        """Done with this answer: an unfinished one closes its connection (the server sees the client go)."""
        conn, self._conn = self._conn, None
        if conn is not None and not self._done:
            conn.abort()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # Called by the connection's parser.
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._fed += len(data)
        if self._fed - self._taken >= HIGH_WATER and not self._paused and self._conn is not None:
            self._paused = True
            self._conn.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if self._done or self._error is not None:  # the first failure is the one the caller hears of
            return
        self._error = error
        if not self._head.done():
            self._head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request on it at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport  # set by connection_made, before the pool ever sees the connection
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.limits = Limits(0.0)
        self.sent_at = 0.0
        self.last_read = 0.0  # the hot path's one write per read; the timer reads it lazily
        self.idle_since = 0.0
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection's transport is a Transport

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: the connection can no longer be trusted
            self.abort()
            return
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(Disconnected(f"the upstream sent a malformed response ({exc})"))

    def eof_received(self) -> bool:
        return False  # close the transport: a half-open keep-alive connection is of no use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        resp, self.response = self.response, None
        self._cancel_timer()
        if resp is None:
            return
        if not resp.status:
            resp._fail(Disconnected("the upstream closed the connection before answering"))
        elif not ({"content-length", "transfer-encoding"} & resp.headers.keys()):
            resp._finish()  # an answer without framing ends where the connection does
        else:
            resp._fail(Disconnected("the upstream closed the connection mid-answer"))

    # httptools callbacks. Without a response they are reading a second answer that came in the same read as
    # the one asked for: raising makes feed_data fail, and data_received drop the connection.
    def on_header(self, name: bytes, value: bytes) -> None:
        resp = self.response
        if resp is None:
            raise Disconnected(UNASKED)
        resp.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        resp = self.response
        if resp is None:
            raise Disconnected(UNASKED)
        resp.status = self.parser.get_status_code()
        resp._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        resp = self.response
        if resp is None:
            raise Disconnected(UNASKED)
        resp._feed(body)

    def on_message_complete(self) -> None:
        resp, self.response = self.response, None
        if resp is None:
            raise Disconnected(UNASKED)
        self._cancel_timer()
        keep = self.parser.should_keep_alive()
        resp._finish()
        resp._conn = None
        if resp._paused:  # the answer ended in the same read that paused it
            resp._paused = False
            self.transport.resume_reading()
        if keep:
            self.pool.release(self)
        else:
            self.abort()

    # the pool's side
    def send(self, response: Response, data: Iterable[bytes | memoryview], limits: Limits) -> None:
        self.response, self.limits = response, limits
        self.sent_at = self.last_read = self.loop.time()
        self._timer = self.loop.call_at(first_check(limits, self.sent_at), self._check_timeout)
        self.transport.writelines(data)

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()
        self.pool.forget(self)

    def fail(self, error: UpstreamError) -> None:
        """Ends the current exchange with `error` and drops the connection (the server sees the client go)."""
        resp, self.response = self.response, None
        if resp is not None:
            resp._fail(error)
        self.abort()

    def _check_timeout(self) -> None:
        """One timer per request, re-armed only when it fires: reads cost the hot path just `last_read`."""
        self._timer = None
        resp = self.response
        if resp is None:
            return
        now = self.loop.time()
        due = check(
            self.limits, now, self.sent_at, self.last_read, started=resp._fed > 0, paused=resp._paused
        )
        if now < due.at:
            self._timer = self.loop.call_at(due.again, self._check_timeout)
        else:
            self.fail(ReadTimeout(due.why))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Pool:
    """Keep-alive connections to one origin, most recently used first, at most `max_connections` open; idle ones
    expire `keepalive_s` after their last answer, before the server's own keep-alive timeout (KEEPALIVE_S)."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 5.0,
        first_byte_s: float = 180.0,
        stream_stall_s: float = 60.0,
        total_s: float = 1800.0,
        keepalive_s: float = KEEPALIVE_S,
        max_idle: int = 512,
        max_connections: int = 1100,
    ) -> None:
        self.host, self.port, self.prefix = origin(base_url)
        self.connect_timeout_s = connect_timeout_s
        self._stream, self._whole = Limits(first_byte_s, stream_stall_s), Limits(total_s)
        self.keepalive_s, self.max_idle = keepalive_s, max_idle
        # A cap on open connections (busy, idle and opening): past it a request waits for one to come free,
        # up to connect_timeout_s, rather than opening more (400 concurrent /health once opened 399).
        self.max_connections = max_connections
        self._opening = 0
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._host_header = f"{self.host}:{self.port}".encode("latin-1")
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | Sequence[bytes | memoryview] = b"",
        headers: dict[str, str] | None = None,
        *,
        stream: bool = False,
        timeout_s: float | None = None,
    ) -> Response:
        """The answer once its status line and headers are in; the caller reads or closes it. `timeout_s` bounds
        the whole answer; without it a stream has the pool's first-byte and stall limits, others its total limit.

        Never sent twice: a connection is passed over only when it is seen closed before the request is written
        (an idle one the server timed out). Once written, a connection lost without an answer is Disconnected,
        not a resend: the engine may have read the request and begun the work."""
        data = self._encode(method, path, body, headers)
        limits = Limits(timeout_s) if timeout_s is not None else self._stream if stream else self._whole
        while True:
            conn, pooled = await self._checkout()
            if not (conn.closed or conn.transport.is_closing()):  # nothing awaited between here and the write
                return await self._exchange(conn, data, limits)
            conn.abort()
            if not pooled:
                raise ConnectFailed("the upstream closed the connection as it opened")

    def fail_in_flight(self, error: UpstreamError) -> int:
        """Fails every answer awaited or being read with `error` and drops its connection, so the engine aborts
        the work: the hook graceful shutdown ends what is left with. Returns how many there were."""
        busy = [conn for conn in self._all if conn.response is not None]
        for conn in busy:
            conn.fail(error)
        return len(busy)

    async def _checkout(self) -> tuple[_Connection, bool]:
        """(connection, whether it was used before): an idle one, a new one below the cap, or at the cap the
        next one released (or a freed slot), waited for up to connect_timeout_s."""
        deadline = self.loop.time() + self.connect_timeout_s
        while True:
            conn = self._take_idle()
            if conn is not None:
                return conn, True
            if len(self._all) + self._opening < self.max_connections:
                return await self._connect(), False
            conn = await self._wait(deadline)
            if conn is not None and not conn.closed:
                return conn, True

    async def _wait(self, deadline: float) -> _Connection | None:
        waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        except BaseException as exc:
            handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if handed is not None:  # cancelled or timed out just as a connection came: pass it on
                self.release(handed)
            if isinstance(exc, TimeoutError):
                raise PoolTimeout(
                    f"no free upstream connection within {self.connect_timeout_s:g} s "
                    f"({self.max_connections} open, all busy)"
                ) from None
            raise
        finally:
            if not waiter.done():
                self._waiters.remove(waiter)

    def _wake(self, conn: _Connection | None) -> bool:
        """Hand a released connection (or, None, a freed slot) to the longest waiter; False if none waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def _exchange(self, conn: _Connection, data: list[bytes | memoryview], limits: Limits) -> Response:
        response = Response(conn)
        conn.send(response, data, limits)
        try:
            await response._head
        except BaseException:
            response.close()
            raise
        return response

    def _encode(
        self,
        method: str,
        path: str,
        body: bytes | Sequence[bytes | memoryview],
        headers: dict[str, str] | None,
    ) -> list[bytes | memoryview]:
        """The request's writes: head and body joined when small; a body in pieces (a volume's slices held
        apart, see rewrite/inline_media.py) goes as its pieces, by one writelines, never joined here."""
        lines = [f"{method} {self.prefix}{path} HTTP/1.1".encode("latin-1"), b"Host: " + self._host_header]
        for name, value in (headers or {}).items():
            lines.append(f"{_check_header(name)}: {_check_header(value)}".encode("latin-1"))
        size = len(body) if isinstance(body, bytes) else sum(len(piece) for piece in body)
        if size or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d" % size)
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if not isinstance(body, bytes):
            return [head, *body]
        if len(body) < COALESCE_LIMIT:
            return [head + body]
        return [head, body]

    def _take_idle(self) -> _Connection | None:
        now = self.loop.time()
        while self._idle:
            conn = self._idle.pop()
            if (
                not conn.closed
                and not conn.transport.is_closing()
                and now - conn.idle_since < self.keepalive_s
            ):
                return conn
            conn.abort()
        return None

    async def _connect(self) -> _Connection:
        self._opening += 1  # counts against the cap while it opens
        try:
            conn = await self._open()
        except BaseException:
            self._opening -= 1
            self._wake(None)  # the slot it held is free again
            raise
        self._opening -= 1
        self._all.add(conn)
        return conn

    async def _open(self) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except TimeoutError:
            raise ConnectFailed(f"no connection within {self.connect_timeout_s:g} s") from None
        except OSError as exc:  # the address stays out of the message: clients see it
            why = os.strerror(exc.errno) if exc.errno else type(exc).__name__
            raise ConnectFailed(why.lower()) from None
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.closed or self._wake(conn):
            return
        if len(self._idle) >= self.max_idle:
            conn.abort()
            return
        conn.idle_since = self.loop.time()
        self._idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        if conn in self._all:
            self._all.remove(conn)
            self._wake(None)  # a slot came free: a waiter may open a connection

    def close(self) -> None:
        for conn in list(self._all):
            conn.abort()
        self._idle.clear()
