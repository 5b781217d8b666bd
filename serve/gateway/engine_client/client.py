"""The engine as the gateway sees it: a keep-alive connection pool against a base URL (serve.gateway.engine_client.http1)."""

from __future__ import annotations

import asyncio

from serve.gateway.engine_client.http1 import Pool, Response, UpstreamError

__all__ = ["Response", "Upstream", "UpstreamError"]


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 300.0,
        max_connections: int = 1100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = Pool(
            self.base_url,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_connections=max_connections,
        )

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        return await self._pool.request("POST", path, body, headers)

    async def get(
        self, path: str, headers: dict[str, str] | None = None, *, timeout_s: float | None = None
    ) -> Response:
        return await self._pool.request("GET", path, headers=headers, read_timeout_s=timeout_s)

    async def healthy(self, timeout_s: float = 2.0, *, path: str = "/health") -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                async with await self.get(path, timeout_s=timeout_s) as resp:
                    await resp.read()
                    return resp.status == 200
        except (TimeoutError, UpstreamError):
            return False

    async def close(self) -> None:
        self._pool.close()
