"""The soak's arithmetic (pure): per-interval windows, RSS growth after warm-up, error tallies, the verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.core import gateway_scrape
from benchmarks.core.records import RequestRecord
from benchmarks.core.stats import distribution, errors_by_type

RSS_GROWTH_TARGET = 0.10  # the soak's bar: under 10% from the first sample after warm-up to the last


def window(records: Sequence[RequestRecord], dt: float) -> dict[str, Any]:
    """The requests that ended within one sampling interval of `dt` seconds."""
    ok = [r for r in records if r.ok]
    per_s = (lambda n: n / dt) if dt > 0 else (lambda n: 0.0)
    return {
        "done": len(records),
        "ok": len(ok),
        "errors": errors_by_type(records),
        "requests_per_s": per_s(len(ok)),
        "output_tokens_per_s": per_s(sum(r.output_tokens or 0 for r in ok)),
        "ttft_ms": distribution([r.ttft for r in ok if r.ttft is not None]),
        "e2e_ms": distribution([r.e2e for r in ok if r.e2e is not None]),
    }


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t, value): a steady leak shows here even when the end points are noisy."""
    if len(points) < 2:
        return None
    n = len(points)
    mt, mv = sum(t for t, _ in points) / n, sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / var


def rss_growth(samples: Sequence[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """From the first sample at or after the warm-up (the first sample of all if none is) to the last."""
    points = [(s["t"], s["gateway"].get("rss_bytes")) for s in samples]
    points = [(t, v) for t, v in points if v is not None]
    after = [p for p in points if p[0] >= warmup_s] or points
    if not after:
        return {
            "baseline_t_s": None,
            "start_bytes": None,
            "end_bytes": None,
            "peak_bytes": None,
            "growth_fraction": None,
            "slope_bytes_per_hour": None,
            "within_target": None,
        }
    (t0, v0), (_, v1) = after[0], after[-1]
    growth = (v1 - v0) / v0 if v0 else None
    per_s = slope(after)
    return {
        "baseline_t_s": t0,
        "start_bytes": v0,
        "end_bytes": v1,
        "peak_bytes": max(v for _, v in after),
        "growth_fraction": growth,
        "slope_bytes_per_hour": None if per_s is None else per_s * 3600,
        "within_target": None if growth is None else growth < RSS_GROWTH_TARGET,
    }


def error_tallies(
    records: Sequence[RequestRecord], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """Client-side failures by type, and what the gateway's own counters gained over the same span."""
    client = errors_by_type(records)
    out: dict[str, Any] = {"client": client, "client_total": sum(client.values())}
    if "error" in before or "error" in after:
        return out | {"gateway": None, "gateway_total": None, "zero": False}
    gained = gateway_scrape.delta(before, after)
    gateway = {
        "non_2xx_by_status": gateway_scrape.non_2xx(gained["requests_by_status"]),
        "errors_by_code": gained["errors_by_code"],
        "upstream_errors_by_kind": gained["upstream_errors_by_kind"],
    }
    # Overlapping views of the same failures (a 502 is a non-2xx and an upstream error): a check, not a sum.
    gateway_total = sum(sum(part.values()) for part in gateway.values())
    return out | {
        "gateway": gateway,
        "gateway_total": gateway_total,
        "zero": out["client_total"] == 0 and gateway_total == 0,
    }


def summary(
    records: Sequence[RequestRecord],
    samples: Sequence[dict[str, Any]],
    wall_s: float,
    warmup_s: float,
) -> dict[str, Any]:
    """The soak's figures; gateway counters are compared between the first and the last scrape."""
    ok = [r for r in records if r.ok]
    scrapes = [s["gateway"] for s in samples]
    first, last = (scrapes[0], scrapes[-1]) if scrapes else ({"error": "no samples"},) * 2
    return {
        "requests": len(records),
        "ok": len(ok),
        "wall_s": wall_s,
        "requests_per_s": len(ok) / wall_s if wall_s > 0 else 0.0,
        "output_tokens_per_s": sum(r.output_tokens or 0 for r in ok) / wall_s if wall_s > 0 else 0.0,
        "ttft_ms": distribution([r.ttft for r in ok if r.ttft is not None]),
        "e2e_ms": distribution([r.e2e for r in ok if r.e2e is not None]),
        "errors": error_tallies(records, first, last),
        "rss": rss_growth(samples, warmup_s),
        "open_fds": _span(scrapes, "open_fds"),
        "scrape_failures": sum(1 for s in scrapes if "error" in s),
        "max_in_flight": max((s["in_flight"] for s in samples), default=0),
    }


def _span(scrapes: Sequence[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [s[key] for s in scrapes if s.get(key) is not None]
    return {
        "first": values[0] if values else None,
        "last": values[-1] if values else None,
        "max": max(values) if values else None,
    }
