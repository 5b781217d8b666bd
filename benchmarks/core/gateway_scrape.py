"""What a run reads from the gateway's /metrics: its process (RSS, CPU, fds) and its own error counters."""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

PROCESS = {
    "process_resident_memory_bytes": "rss_bytes",
    "process_cpu_seconds_total": "cpu_s",
    "process_open_fds": "open_fds",
}
# Cumulative counters, summed over every label but the one kept.
COUNTERS = {
    "medgemma_gateway_requests_total": ("requests_by_status", "status"),
    "medgemma_gateway_errors_total": ("errors_by_code", "code"),
    "medgemma_gateway_upstream_errors_total": ("upstream_errors_by_kind", "kind"),
}


def parse(text: str) -> dict[str, Any]:
    """One scrape as plain numbers; a process metric the registry does not export is None."""
    out: dict[str, Any] = dict.fromkeys(PROCESS.values())
    counts: dict[str, Counter[str]] = {key: Counter() for key, _ in COUNTERS.values()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in PROCESS:
                out[PROCESS[sample.name]] = sample.value
            elif sample.name in COUNTERS:
                key, label = COUNTERS[sample.name]
                counts[key][sample.labels.get(label, "")] += int(sample.value)
    return out | {key: dict(c) for key, c in counts.items()}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """What the counters gained between two scrapes (a label that only appears later started at 0)."""
    out = {}
    for key, _ in COUNTERS.values():
        old, new = before.get(key, {}), after.get(key, {})
        gained = {label: n - old.get(label, 0) for label, n in new.items()}
        out[key] = {label: n for label, n in sorted(gained.items()) if n}
    return out


def non_2xx(requests_by_status: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in requests_by_status.items() if not status.startswith("2")}


async def scrape(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    """The parsed /metrics of a gateway, or {"error": ...} when it cannot be read (a run goes on)."""
    try:
        async with session.get(base_url + "/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                return {"error": f"http_{resp.status}"}
            return parse(await resp.text())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
