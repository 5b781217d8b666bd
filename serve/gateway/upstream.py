"""The engine as the gateway sees it: one pooled aiohttp client session against a base URL."""

from __future__ import annotations

import aiohttp


class Upstream:
    def __init__(
        self, base_url: str, *, connect_timeout_s: float = 5.0, read_timeout_s: float = 300.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            # Bodies are relayed as bytes: no decompression, no default headers the engine does not need.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        return self._session

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> aiohttp.client._RequestContextManager:
        return self.session.post(self.base_url + path, data=body, headers=headers)

    def get(self, path: str, headers: dict[str, str] | None = None) -> aiohttp.client._RequestContextManager:
        return self.session.get(self.base_url + path, headers=headers)

    async def healthy(self, timeout_s: float = 2.0, *, path: str = "/health") -> bool:
        try:
            async with self.session.get(
                self.base_url + path, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                return resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
