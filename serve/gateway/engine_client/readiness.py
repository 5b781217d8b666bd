"""What /health says about the engines: ready when one replica is, and each replica's state where readable."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from serve.gateway.engine_client.client import Upstream, UpstreamError

# (ready or None when the probe cannot tell, replicas): the ray launcher injects its Serve status here.
BackendProbe = Callable[[], Awaitable[tuple[bool | None, list[dict[str, Any]]]]]

# /health answers from an engine probe at most this old: each probe costs the engine two requests, and
# /health needs no key, so without it anyone could multiply their requests onto the engine.
HEALTH_TTL_S = 1.0

# vLLM labels its scheduler gauges by engine core: engine="0", "1", ... one per data-parallel rank.
GAUGE = re.compile(r"^vllm:num_requests_(running|waiting)\{([^}]*)\}\s+([0-9.eE+-]+)", re.MULTILINE)
ENGINE = re.compile(r'engine="([^"]*)"')


def engines_from_metrics(text: str) -> list[dict[str, Any]]:
    """Per engine core: requests running and waiting, from vLLM's exposition (pure)."""
    engines: dict[str, dict[str, Any]] = {}
    for kind, labels, value in GAUGE.findall(text):
        found = ENGINE.search(labels)
        if found is None:
            continue
        entry = engines.setdefault(found.group(1), {"engine": found.group(1), "running": 0, "waiting": 0})
        entry[kind] += int(float(value))
    return sorted(engines.values(), key=lambda e: (len(e["engine"]), e["engine"]))


async def engines_via_metrics(upstream: Upstream, timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """The engine ranks vLLM reports on /metrics; empty when it cannot be read (not a failure of health)."""
    try:
        async with await upstream.get("/metrics", timeout_s=timeout_s) as resp:
            if resp.status != 200:
                return []
            return engines_from_metrics(await resp.text())
    except UpstreamError:
        return []


def verdict(upstream_ok: bool, probe: tuple[bool | None, list[dict[str, Any]]] | None) -> bool:
    """Ready when the probe says a replica runs; without a probe's answer, when the upstream answers."""
    if probe is not None and probe[0] is not None:
        return probe[0]
    return upstream_ok


@dataclass(frozen=True)
class Health:
    ready: bool
    replicas: list[dict[str, Any]]


class SharedProbe:
    """Single flight: one probe at a time, which every concurrent caller awaits, its answer reused for ttl_s.
    A probe that failed is not reused; a caller that leaves does not cancel the probe the others wait on."""

    def __init__(self, ttl_s: float = HEALTH_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._task: asyncio.Task[Health] | None = None
        self._expires = 0.0

    async def get(self, probe: Callable[[], Coroutine[Any, Any, Health]]) -> Health:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or (task.done() and loop.time() >= self._expires):
            task = self._task = loop.create_task(probe())
            task.add_done_callback(self._settled)
        return await asyncio.shield(task)

    def _settled(self, task: asyncio.Task[Health]) -> None:
        failed = task.cancelled() or task.exception() is not None
        self._expires = 0.0 if failed else task.get_loop().time() + self.ttl_s
