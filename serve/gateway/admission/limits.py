"""Admission by concurrency: a global and a per-key cap; past either, 429 at once instead of a growing queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from serve.config import LimitSettings
from serve.gateway.errors import GatewayError

RETRY_AFTER_S = "1"


class ConcurrencyLimiter:
    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.active = 0
        self.per_key: Counter[str] = Counter()

    @contextmanager
    def slot(self, key: str | None) -> Iterator[None]:
        """Hold one slot for the request's whole life (a stream holds it until its last byte)."""
        self._admit(key)
        self.active += 1
        if key is not None:
            self.per_key[key] += 1
        try:
            yield
        finally:
            self.active -= 1
            if key is not None:
                self.per_key[key] -= 1
                if not self.per_key[key]:
                    del self.per_key[key]

    def _admit(self, key: str | None) -> None:
        if self.active >= self.settings.max_concurrent:
            raise overloaded(
                f"the gateway is at its limit of {self.settings.max_concurrent} concurrent requests"
            )
        if key is not None and self.per_key[key] >= self.settings.max_concurrent_per_key:
            raise overloaded(
                f"this API key is at its limit of {self.settings.max_concurrent_per_key} concurrent requests"
            )


def overloaded(why: str) -> GatewayError:
    return GatewayError(
        429,
        f"Too many requests: {why}. Retry after a moment.",
        "rate_limit_error",
        "too_many_concurrent_requests",
        headers={"Retry-After": RETRY_AFTER_S},
    )
