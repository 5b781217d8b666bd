"""The engine as the gateway sees it: a keep-alive connection pool against a base URL (serve.gateway.engine_client.http1)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from serve.config import EngineTimeoutSettings
from serve.gateway.engine_client.http1 import Interrupted, Pool, Response, UpstreamError

__all__ = ["Interrupted", "Response", "Upstream", "UpstreamError"]

# GETs (model list, health, metrics) answer in milliseconds; 10 s is also Prometheus's default scrape_timeout,
# the longest a scrape relayed through /metrics/engine is waited for anyway.
GET_TIMEOUT_S = 10.0


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        timeouts: EngineTimeoutSettings | None = None,
        max_connections: int = 1100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        t = timeouts or EngineTimeoutSettings()
        self._pool = Pool(
            self.base_url,
            connect_timeout_s=t.connect_s,
            first_byte_s=t.first_byte_s,
            stream_stall_s=t.stream_stall_s,
            total_s=t.total_s,
            max_connections=max_connections,
        )

    async def post(
        self, path: str, body: bytes | Sequence[bytes | memoryview], headers: dict[str, str], *, stream: bool
    ) -> Response:
        """`stream`: the answer is an SSE stream (first-byte then stall limits), else a whole one (total limit)."""
        return await self._pool.request("POST", path, body, headers, stream=stream)

    async def get(
        self, path: str, headers: dict[str, str] | None = None, *, timeout_s: float = GET_TIMEOUT_S
    ) -> Response:
        return await self._pool.request("GET", path, headers=headers, timeout_s=timeout_s)

    async def healthy(self, timeout_s: float = 2.0, *, path: str = "/health") -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                async with await self.get(path, timeout_s=timeout_s) as resp:
                    await resp.read()
                    return resp.status == 200
        except (TimeoutError, UpstreamError):
            return False

    def fail_in_flight(self, error: UpstreamError) -> int:
        """Ends every engine exchange in flight with `error` (e.g. Interrupted) and drops its connection, so the
        engine aborts the work; returns how many. For graceful shutdown, once its deadline has passed."""
        return self._pool.fail_in_flight(error)

    async def close(self) -> None:
        self._pool.close()
