"""Runs the gateway app on a socket (aiohttp's AppRunner), with handler cancellation on client disconnect.

Client connection limits: serve/gateway/connections.py; graceful shutdown: serve/gateway/drain.py.
"""

from __future__ import annotations

import gc
import logging

from aiohttp import web

from serve.gateway.connections import GatewayRunner
from serve.gateway.dependencies import GATEWAY
from serve.gateway.telemetry import aiohttp_log

log = logging.getLogger("serve.gateway")


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port (port 0: a free one; `runner.addresses` says which)."""
    aiohttp_log.install()  # before the first connection: aiohttp logs malformed requests raw
    # handler_cancellation: a client that disconnects cancels its handler, which closes the engine request.
    # access_log=None: our own structured line per request replaces it (and never logs more than we choose).
    # shutdown_timeout: what aiohttp's own cleanup still waits for handlers after drain() has waited its deadline.
    runner = GatewayRunner(
        app, app[GATEWAY].settings.client, handler_cancellation=True, access_log=None, shutdown_timeout=5.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    # Everything allocated so far (modules, the app, its config) lives as long as the process: move it out of
    # the cyclic collector's view, so a full collection scans only what requests allocate (full collections
    # took 18-49 ms under load without this, each a latency spike for every request in flight).
    gc.freeze()
    log.info("gateway listening on http://%s:%d", host, runner.addresses[0][1])
    return runner
