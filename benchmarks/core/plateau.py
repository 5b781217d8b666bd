"""Capacity as the throughput plateau of a closed-loop concurrency ramp: the rule (pure) and the ramp."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.core.runner import Budget, Level, SendOne, run_level
from benchmarks.core.stats import summarize

TOLERANCE = 0.10  # throughput within 10% of the best counts as on the plateau (run-to-run noise is ~5%)
PATIENCE = 2  # levels without a gain before the ramp stops climbing
# Each level (and each later run) takes its prompts from its own index range: none finds another's in the
# engine's prefix cache.
INDEX_STRIDE = 1_000_000


@dataclass(frozen=True)
class Point:
    concurrency: int
    requests_per_s: float


def plateau(points: Sequence[Point], tolerance: float = TOLERANCE) -> Point:
    """The lowest concurrency whose throughput is within `tolerance` of the best: more only queues."""
    if not points:
        raise ValueError("no ramp levels to find a plateau in")
    best = max(p.requests_per_s for p in points)
    on_top = [p for p in points if p.requests_per_s >= (1 - tolerance) * best]
    return min(on_top, key=lambda p: p.concurrency)


def flattened(points: Sequence[Point], tolerance: float = TOLERANCE, patience: int = PATIENCE) -> bool:
    """True once each of the last `patience` levels gained less than `tolerance` over all before it."""
    if len(points) <= patience:
        return False
    for k in range(len(points) - patience, len(points)):
        best_before = max(p.requests_per_s for p in points[:k])
        if points[k].requests_per_s > (1 + tolerance) * best_before:
            return False
    return True


def offset(send: SendOne, first: int) -> SendOne:
    return lambda i: send(first + i)


async def ramp(
    send: SendOne,
    concurrencies: Sequence[int],
    *,
    duration_s: float,
    warmup: int = 2,
    tolerance: float = TOLERANCE,
    patience: int = PATIENCE,
    say: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Climb the concurrencies until throughput flattens; the report names the plateau level."""
    points: list[Point] = []
    levels = []
    for n, c in enumerate(concurrencies):
        budget = Budget(duration_s=duration_s, warmup=min(warmup, c))
        result = await run_level(offset(send, n * INDEX_STRIDE), Level("concurrency", c), budget)
        summary = summarize(result.records, result.wall_s, {})
        points.append(Point(c, summary["requests_per_s"]))
        levels.append({"concurrency": c, **summary})
        say(f"ramp c={c}: {summary['requests_per_s']:.2f} req/s, errors {summary['errors'] or 0}")
        if flattened(points, tolerance, patience):
            break
    top = plateau(points, tolerance)
    return {
        "concurrency": top.concurrency,
        "requests_per_s": top.requests_per_s,
        "tolerance": tolerance,
        "flattened": flattened(points, tolerance, patience),
        "levels": levels,
    }
