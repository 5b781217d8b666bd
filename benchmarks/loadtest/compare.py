"""Compare mode's arithmetic (pure): each target against the baseline target, level by level."""

from __future__ import annotations

from typing import Any


def _get(summary: dict[str, Any], metric: str, stat: str) -> float | None:
    return (summary.get(metric) or {}).get(stat)


def added(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def compare(pooled: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Added latency (ms) and throughput ratios of every other target over `baseline`, per level."""
    by = {(s["target"], s["level"]): s for s in pooled}
    levels = list(dict.fromkeys(s["level"] for s in pooled))
    targets = [t for t in dict.fromkeys(s["target"] for s in pooled) if t != baseline]
    rows = []
    for level in levels:
        base = by.get((baseline, level))
        for target in targets:
            this = by.get((target, level))
            if base is None or this is None:
                continue
            rows.append(_row(level, target, baseline, this, base))
    return rows


def _row(
    level: str, target: str, baseline: str, this: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    return {
        "level": level,
        "target": target,
        "baseline": baseline,
        "added_ttft_p50_ms": added(_get(this, "ttft_ms", "p50"), _get(base, "ttft_ms", "p50")),
        "added_ttft_p99_ms": added(_get(this, "ttft_ms", "p99"), _get(base, "ttft_ms", "p99")),
        "added_tpot_p50_ms": added(_get(this, "tpot_ms", "p50"), _get(base, "tpot_ms", "p50")),
        "added_e2e_p50_ms": added(_get(this, "e2e_ms", "p50"), _get(base, "e2e_ms", "p50")),
        "throughput_ratio": ratio(this["requests_per_s"], base["requests_per_s"]),
        "output_tokens_ratio": ratio(this["output_tokens_per_s"], base["output_tokens_per_s"]),
        "goodput_ratio": ratio(this["goodput_per_s"], base["goodput_per_s"]),
    }
