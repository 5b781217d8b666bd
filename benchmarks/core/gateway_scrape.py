"""What a run reads from the gateway's /metrics: its process (RSS, CPU, fds), its own error counters and its
event loop's lag (serve/gateway/telemetry/loop_lag.py: how late a 100 ms timer ran, measured inside the
gateway)."""

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
LOOP_LAG = "medgemma_gateway_event_loop_lag_seconds_bucket"


def parse(text: str) -> dict[str, Any]:
    """One scrape as plain numbers; a process metric the registry does not export is None."""
    out: dict[str, Any] = dict.fromkeys(PROCESS.values())
    counts: dict[str, Counter[str]] = {key: Counter() for key, _ in COUNTERS.values()}
    lag: dict[str, int] = {}  # by the `le` label as exposed ("0.005", "+Inf"): a run's JSON keeps it
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LOOP_LAG:
                lag[sample.labels["le"]] = int(sample.value)
            elif sample.name in PROCESS:
                out[PROCESS[sample.name]] = sample.value
            elif sample.name in COUNTERS:
                key, label = COUNTERS[sample.name]
                counts[key][sample.labels.get(label, "")] += int(sample.value)
    return out | {key: dict(c) for key, c in counts.items()} | {"loop_lag_le": lag}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """What the counters gained between two scrapes (a label that only appears later started at 0)."""
    out = {}
    for key, _ in COUNTERS.values():
        old, new = before.get(key, {}), after.get(key, {})
        gained = {label: n - old.get(label, 0) for label, n in new.items()}
        out[key] = {label: n for label, n in sorted(gained.items()) if n}
    return out


def loop_lag_over(before: dict[str, Any], after: dict[str, Any]) -> dict[float, int]:
    """Between two scrapes: how many loop-lag samples were taken (key 0.0) and how many exceeded each bucket's
    bound (the histogram counts those at or under it)."""
    old, new = before.get("loop_lag_le", {}), after.get("loop_lag_le", {})
    gained = {float(le): n - old.get(le, 0) for le, n in new.items()}
    total = gained.get(float("inf"), 0)
    return {0.0: total} | {le: total - n for le, n in sorted(gained.items()) if le != float("inf")}


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
