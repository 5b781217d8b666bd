"""The overload run's arithmetic (pure): what was admitted and how fast, what was refused and how fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.core import gateway_scrape
from benchmarks.core.records import RequestRecord
from benchmarks.core.stats import distribution, errors_by_type

REFUSED = 429


def figures(
    records: Sequence[RequestRecord],
    wall_s: float,
    offered_per_s: float,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Admitted = every request the gateway did not refuse with 429; their latency is the served one."""
    refused = [r for r in records if r.status == REFUSED]
    admitted = [r for r in records if r.status != REFUSED]
    ok = [r for r in admitted if r.ok]
    n = len(records)
    out = {
        "offered_per_s": offered_per_s,
        "requests": n,
        "admitted": len(admitted),
        "ok": len(ok),
        "ok_per_s": len(ok) / wall_s if wall_s > 0 else 0.0,
        "wall_s": wall_s,
        "refused_429": len(refused),
        "refused_fraction": len(refused) / n if n else 0.0,
        "refused_ms": distribution([r.e2e for r in refused if r.e2e is not None]),
        "server_errors_5xx": sum(1 for r in records if r.status is not None and r.status >= 500),
        "admitted_errors": errors_by_type(admitted),
        "ttft_ms": distribution([r.ttft for r in ok if r.ttft is not None]),
        "e2e_ms": distribution([r.e2e for r in ok if r.e2e is not None]),
    }
    if before is not None and after is not None and "error" not in before and "error" not in after:
        gained = gateway_scrape.delta(before, after)
        out["gateway_requests_by_status"] = gained["requests_by_status"]
        out["gateway_5xx"] = sum(n for s, n in gained["requests_by_status"].items() if s.startswith("5"))
    return out


def markdown(runs: Sequence[dict[str, Any]], capacity: dict[str, Any]) -> str:
    how = (
        "given on the command line"
        if capacity.get("given")
        else f"throughput within {capacity['tolerance']:.0%} of the best ramp level"
    )
    head = (
        f"Engine capacity: {capacity['requests_per_s']:.2f} req/s, reached at concurrency "
        f"{capacity['concurrency']} ({how}).\n\n"
        "| offered load | gateway cap | offered req/s | ok req/s | admitted TTFT p50 / p99 ms "
        "| admitted E2E p50 / p99 ms | 429 share | 429 answered in p50 / p99 ms | 5xx | other errors |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(_row(run) for run in runs)


def _row(run: dict[str, Any]) -> str:
    f = run["figures"]
    cap = "off" if run["cap"] is None else str(run["cap"])
    others = {k: v for k, v in f["admitted_errors"].items() if not k.startswith("http_5")}
    return (
        f"| {run['multiple']:g}x | {cap} | {f['offered_per_s']:.2f} | {f['ok_per_s']:.2f} "
        f"| {_pair(f['ttft_ms'])} | {_pair(f['e2e_ms'])} | {f['refused_fraction']:.1%} "
        f"| {_pair(f['refused_ms'], '.1f')} | {f['server_errors_5xx']} | {sum(others.values())} |\n"
    )


def _pair(dist: dict[str, float | None], spec: str = ",.0f") -> str:
    return " / ".join("-" if dist[q] is None else format(dist[q], spec) for q in ("p50", "p99"))
