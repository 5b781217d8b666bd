"""Graceful drain on SIGTERM or Ctrl-C: /health says "draining" at once, the port stays open a short delay, then
requests in flight get a deadline to finish and what is left is ended server-side, never silently cut."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from serve.config import DrainSettings
from serve.gateway.dependencies import GATEWAY
from serve.gateway.engine_client.http1 import Interrupted
from serve.gateway.lifecycle import Lifecycle

log = logging.getLogger("serve.gateway")
SETTLE_S = 10.0  # ended requests write their last frame and return; a bound, not an expectation


async def drain(runner: web.AppRunner, settings: DrainSettings, hurry: asyncio.Event | None = None) -> None:
    """Stop the gateway gracefully; `hurry` (a second signal) skips what is left of the delay and the deadline."""
    hurry = hurry or asyncio.Event()
    life = runner.app[GATEWAY].lifecycle
    started = time.monotonic()
    life.draining = True
    log.info(
        "draining: /health answers 503; accepting for %g s more, then up to %g s for the %d requests in flight "
        "(a second SIGTERM or Ctrl-C skips the waits)",
        settings.delay_s,
        settings.deadline_s,
        life.in_flight,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hurry.wait(), settings.delay_s)
    for site in list(runner.sites):
        await site.stop()  # the listening socket closes: new connections are refused from here
    life.closing = True
    if runner.server is not None:
        runner.server.pre_shutdown()  # idle keep-alive connections close; busy ones after their answer
    if not await life.wait_idle(settings.deadline_s, hurry):
        await _end_the_rest(runner, life)
    log.info("drained in %.1f s; stopping", time.monotonic() - started)
    await runner.cleanup()


async def _end_the_rest(runner: web.AppRunner, life: Lifecycle) -> None:
    """Past the deadline: the engine answers still coming are failed (streams end with an in-band error frame and
    [DONE], others get a 503), their engine connections close (vLLM aborts the generations)."""
    ended = runner.app[GATEWAY].upstream.fail_in_flight(Interrupted("the gateway is shutting down"))
    log.warning(
        "drain deadline reached: ending %d requests in flight (%d engine answers)", life.in_flight, ended
    )
    if not await life.wait_idle(SETTLE_S, asyncio.Event()):
        log.warning("%d requests still in flight after ending them: cancelling", life.in_flight)
