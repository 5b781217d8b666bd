"""The pure side of the loop-blocking run: the interleaved block order; per arm and phase the stream ITL (p50,
p99, the p99 step over the arm's baseline with a bootstrap interval) and what the acknowledgements got."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from benchmarks.core.stats import percentile
from benchmarks.paired.cli import difference

BASELINE, LOCKED, ACKS = "baseline", "locked+acks", "acks"
PHASES = (BASELINE, LOCKED, ACKS)


def plan(rounds: int, arms: list[str], phases: tuple[str, ...] = PHASES) -> list[tuple[int, str, str]]:
    """(round, arm, phase) in run order. The machine drifts between blocks minutes apart, so every round runs
    every phase, each round starting one phase later; within a phase the arms run back to back, alternating
    which goes first."""
    order = []
    for r in range(rounds):
        k = r % len(phases)
        for i, phase in enumerate(phases[k:] + phases[:k]):
            arms_now = arms if (r + i) % 2 == 0 else arms[::-1]
            order += [(r, arm, phase) for arm in arms_now]
    return order


def ms(values: list[float], q: float) -> float | None:
    return round(1000 * percentile(values, q), 2) if values else None


def phase_summary(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Blocks of one arm and phase: `gaps` and `waits` (s), `streams_ok`, `streams_failed`, `acks`
    ([status, s]), `acks_skipped` each."""
    gaps = [g for b in blocks for g in b["gaps"]]
    waits = [w for b in blocks for w in b["waits"]]
    by_round = [ms(b["gaps"], 99) for b in blocks]
    acks = [a for b in blocks for a in b["acks"]]
    return {
        "gaps": len(gaps),
        "itl_ms": {
            "p50": ms(gaps, 50),
            "p99": ms(gaps, 99),
            "max": round(1000 * max(gaps), 1) if gaps else None,
        },
        "itl_p99_ms_by_round": by_round,
        # A machine shared with other jobs has noisy minutes: the median round is the robust figure.
        "itl_p99_ms_median_round": round(statistics.median(v for v in by_round if v is not None), 2)
        if gaps
        else None,
        "longest_wait_ms": {"p50": ms(waits, 50), "p99": ms(waits, 99)},  # per stream, first token included
        "streams_ok": sum(b["streams_ok"] for b in blocks),
        "streams_failed": sum(b["streams_failed"] for b in blocks),
        "stream_errors": dict(sum((Counter(b.get("stream_errors", {})) for b in blocks), Counter())),
        "acks": dict(Counter(str(status) for status, _ in acks)),
        "acks_skipped": sum(b["acks_skipped"] for b in blocks),
        "ack_ms": {"p50": ms([s for _, s in acks], 50), "p99": ms([s for _, s in acks], 99)},
    }


def summarize(blocks: list[dict[str, Any]], *, draws: int = 400, seed: int = 0) -> dict[str, Any]:
    """Per arm, per phase; each phase but the baseline also gets its ITL step over the arm's baseline."""
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(b["arm"] for b in blocks):
        mine = {p: [b for b in blocks if b["arm"] == arm and b["phase"] == p] for p in PHASES}
        out[arm] = {p: phase_summary(bs) for p, bs in mine.items() if bs}
        base = [g for b in mine[BASELINE] for g in b["gaps"]]
        for phase in (LOCKED, ACKS):
            gaps = [g for b in mine[phase] for g in b["gaps"]]
            if base and gaps and phase in out[arm]:
                out[arm][phase]["step_over_baseline"] = {
                    "p50": difference(base, gaps, 50, draws=draws, seed=seed),
                    "p99": difference(base, gaps, 99, draws=draws, seed=seed),
                }
    return out


HEADER = (
    "| arm | phase | gaps | ITL p50 ms | ITL p99 ms | p99 by round ms (median) | p99 step ms (95% CI) | ITL max ms "
    "| longest wait p50/p99 ms | streams ok/failed | acks by status | ack p50/p99 ms |\n"
    "|---|---|---:|---:|---:|---|---|---:|---|---|---|---|"
)


def table(summary: dict[str, Any]) -> str:
    return "\n".join(
        [HEADER] + [row(arm, p, s) for arm, phases in summary.items() for p, s in phases.items()]
    )


def row(arm: str, phase: str, s: dict[str, Any]) -> str:
    step = s.get("step_over_baseline", {}).get("p99")
    step_text = f"{step['ms']:+.1f} [{step['ci95_ms'][0]:+.1f}, {step['ci95_ms'][1]:+.1f}]" if step else "-"
    acks = ", ".join(f"{k}: {v}" for k, v in sorted(s["acks"].items())) or "-"
    if s["acks_skipped"]:
        acks += f", not sent: {s['acks_skipped']}"
    cells = [
        arm,
        phase,
        s["gaps"],
        s["itl_ms"]["p50"],
        s["itl_ms"]["p99"],
        " / ".join(str(v) for v in s["itl_p99_ms_by_round"]) + f" ({s['itl_p99_ms_median_round']})",
        step_text,
        s["itl_ms"]["max"],
        f"{s['longest_wait_ms']['p50']} / {s['longest_wait_ms']['p99']}",
        f"{s['streams_ok']}/{s['streams_failed']}",
        acks,
        f"{s['ack_ms']['p50']} / {s['ack_ms']['p99']}",
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"
