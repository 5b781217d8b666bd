"""What /health says about the engines: ready when one replica is, and each replica's state where readable."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from serve.gateway.engine_client.client import Upstream, UpstreamError

# (ready or None when the probe cannot tell, replicas): the ray launcher injects its Serve status here.
BackendProbe = Callable[[], Awaitable[tuple[bool | None, list[dict[str, Any]]]]]

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
