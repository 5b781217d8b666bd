"""The arithmetic of a run (pure): percentiles, SLO goodput, errors by type, the per-run summary."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.core.records import RequestRecord

PERCENTILES = (50, 90, 99)
# SLO keys the command line accepts, and how each reads a record (seconds).
SLO_METRICS = {
    "ttft": lambda r: r.ttft,
    "tpot": lambda r: r.tpot,
    "e2e": lambda r: r.e2e,
    "itl": lambda r: max(r.itl) if r.itl else None,  # the worst gap of the request
}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), so both tools agree on one list."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def distribution(values: Sequence[float], scale: float = 1000.0) -> dict[str, float | None]:
    """mean and p50/p90/p99 in ms (scale converts from seconds); None when there is nothing to measure."""
    if not values:
        return {"mean": None, **{f"p{q}": None for q in PERCENTILES}}
    out: dict[str, float | None] = {"mean": scale * sum(values) / len(values)}
    out.update({f"p{q}": scale * percentile(values, q) for q in PERCENTILES})
    return out


def parse_slo(text: str) -> tuple[str, float]:
    """`ttft_ms=500` -> ("ttft", 0.5): a metric name, its unit suffix, a bound; returns seconds."""
    key, sep, value = text.partition("=")
    name, _, unit = key.strip().rpartition("_")
    scale = {"ms": 1e-3, "s": 1.0}.get(unit)
    if not sep or scale is None or name not in SLO_METRICS:
        raise ValueError(f"--slo {text!r}: write NAME_ms=VALUE with NAME one of {', '.join(SLO_METRICS)}")
    return name, float(value) * scale


def meets_slos(record: RequestRecord, slos: dict[str, float]) -> bool:
    """An ok request within every bound; a metric a request has no value for (TPOT of one token) passes."""
    if not record.ok:
        return False
    for name, bound in slos.items():
        value = SLO_METRICS[name](record)
        if value is not None and value > bound:
            return False
    return True


def errors_by_type(records: Iterable[RequestRecord]) -> dict[str, int]:
    return dict(Counter(r.error or "unknown" for r in records if not r.ok))


def summarize(records: Sequence[RequestRecord], wall_s: float, slos: dict[str, float]) -> dict[str, Any]:
    """The figures of one run (or of several runs pooled: pass the records together and the summed wall)."""
    ok = [r for r in records if r.ok]
    tokens = sum(r.output_tokens or 0 for r in ok)
    good = sum(1 for r in ok if meets_slos(r, slos))
    per_s = (lambda n: n / wall_s) if wall_s > 0 else (lambda n: 0.0)
    return {
        "requests": len(records),
        "ok": len(ok),
        "errors": errors_by_type(records),
        "error_rate": (len(records) - len(ok)) / len(records) if records else 0.0,
        "disclaimer_seen": sum(1 for r in records if r.disclaimer),
        "wall_s": wall_s,
        "requests_per_s": per_s(len(ok)),
        "output_tokens": tokens,
        "output_tokens_per_s": per_s(tokens),
        "goodput_per_s": per_s(good),
        "goodput_fraction": good / len(records) if records else 0.0,
        "slos_ms": {name: bound * 1000 for name, bound in slos.items()},
        "ttft_ms": distribution([r.ttft for r in ok if r.ttft is not None]),
        "tpot_ms": distribution([t for r in ok if (t := r.tpot) is not None]),
        "itl_ms": distribution([gap for r in ok for gap in r.itl]),
        "e2e_ms": distribution([r.e2e for r in ok if r.e2e is not None]),
    }


def by_kind(records: Sequence[RequestRecord], wall_s: float, slos: dict[str, float]) -> dict[str, Any]:
    """Per workload item (text, image-896, ...) when a run mixes them; the wall is shared."""
    kinds = sorted({r.kind for r in records})
    if len(kinds) < 2:
        return {}
    return {k: summarize([r for r in records if r.kind == k], wall_s, slos) for k in kinds}
