"""Client connection limits aiohttp lacks: request-head and write deadlines, and a cap on open connections.

Idle keep-alive connections are closed by aiohttp's own keepalive_timeout (gateway.client.idle_timeout_s).

Per request the timers cost ~0.3 us: the head deadline is one float written when a request's first bytes arrive and
cleared when its handler starts; the one timer behind it is re-armed lazily (as aiohttp's keep-alive timer is),
and the write timer exists only while the socket refuses bytes (the transport paused writing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from serve.config import ClientSettings

log = logging.getLogger("serve.gateway")


class GatewayRunner(web.AppRunner):
    """aiohttp's AppRunner whose server is a GatewayServer."""

    def __init__(self, app: web.Application, limits: ClientSettings, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.idle_timeout_s, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        return GatewayServer(await super()._make_server(), self.limits)


class GatewayServer(web.Server):
    """The server the app's runner built, with guarded connections and a cap on how many are open."""

    def __init__(self, base: web.Server, limits: ClientSettings) -> None:
        # The same handler, request factory and handler options as `base` (aiohttp keeps the latter private).
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self.limits, self.open, self.refused = limits, 0, 0

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.open += 1
        if self.open > self.limits.max_connections:
            # Closed at once rather than left unaccepted: a client (or its load balancer) learns now and can go
            # elsewhere, instead of waiting in the kernel's backlog until its own connect timeout.
            self.refused += 1
            if self.refused == 1 or not self.refused % 1000:
                log.warning("at the limit of %d open connections: refused %d", self.open - 1, self.refused)
            handler.force_close()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.open -= 1
        super().connection_lost(handler, exc)


class GuardedHandler(RequestHandler):
    """One client connection: closed when a request head is late or when the client stops reading."""

    __slots__ = ("_handling", "_head_deadline", "_head_timer", "_limits", "_write_timer", "write_timed_out")

    def __init__(self, manager: GatewayServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = manager.limits
        self._head_deadline = 0.0  # 0: no request head is awaited (a handler runs, or the connection idles)
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self.write_timed_out = False
        # From the moment aiohttp hands a request over until its handler has finished. aiohttp's own
        # _request_in_progress is set only once the handler's task first runs: body bytes arriving before that
        # (a body sent after its head, the usual case for a large one) once re-armed the head deadline, and
        # header_timeout_s later the connection was closed in the middle of the answer.
        self._handling = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._force_close:  # a new connection has header_timeout_s to send its first request head
            self._await_head()

    def data_received(self, data: bytes) -> None:
        # The first bytes of a request on an idle connection start its head deadline; idle time before them is
        # the keep-alive timeout's.
        if not self._head_deadline and not self._handling:
            self._await_head()
        super().data_received(data)

    def _handle_request(self, request: Any, start_time: Any, request_handler: Any) -> Any:
        self._head_deadline = 0.0  # the head is in: from here the body deadline and the handler rule
        self._handling = True  # now, not when the coroutine starts (see __init__)
        return self._handled(super()._handle_request(request, start_time, request_handler))

    async def _handled(self, handling: Any) -> Any:
        try:
            return await handling
        finally:
            self._handling = False

    def _await_head(self) -> None:
        self._head_deadline = self._loop.time() + self._limits.header_timeout_s
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(self._head_deadline, self._check_head)

    def _check_head(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if not deadline or self._force_close or self._handling:  # never a request being answered
            return
        if self._loop.time() < deadline:  # re-armed since this timer was set: wait for the new deadline
            self._head_timer = self._loop.call_at(deadline, self._check_head)
            return
        self.force_close()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_timer = self._loop.call_later(self._limits.write_timeout_s, self._write_expired)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_expired(self) -> None:
        self._write_timer = None
        self.write_timed_out = True
        log.info(
            "client-side timeout: a client took no byte of its answer for %ss; connection dropped",
            self._limits.write_timeout_s,
        )
        if self.transport is not None:
            self.transport.abort()  # close() would wait, forever, to send what the client will not take

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None
        super().connection_lost(exc)


def write_timed_out(request: web.BaseRequest) -> bool:
    """True if the request's connection was dropped because its client stopped reading."""
    return getattr(request.protocol, "write_timed_out", False)
