"""A sweep: every level for every target, interleaved and repeated in rounds, then pooled per target and level."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from benchmarks.core.client import Target
from benchmarks.core.runner import Budget, Level, OnDone, RunResult, SendOne, run_level
from benchmarks.core.stats import by_kind, summarize

SATURATED = 0.9  # generator CPU fraction above which its own core limits the figures


class Progress(Protocol):
    def begin(self, label: str, total: int | None) -> OnDone: ...
    def end(self, label: str, summary: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Plan:
    targets: tuple[Target, ...]
    levels: tuple[Level, ...]
    budget: Budget
    rounds: int = 1
    seed: int = 0


@dataclass
class Run:
    target: str
    level: Level
    round: int
    result: RunResult
    summary: dict[str, Any]


def schedule(plan: Plan) -> list[tuple[int, Level, Target]]:
    """Round by round, level by level, each target back to back; the target that goes first alternates per
    level and round, so none is always the one that meets a cold (or a warm) engine."""
    order = []
    for r in range(plan.rounds):
        for i, level in enumerate(plan.levels):
            targets = plan.targets if (i + r) % 2 == 0 else tuple(reversed(plan.targets))
            order += [(r, level, t) for t in targets]
    return order


def run_summary(result: RunResult, slos: dict[str, float]) -> dict[str, Any]:
    summary = summarize(result.records, result.wall_s, slos)
    summary["generator_cpu_s"] = result.cpu_s
    summary["generator_cpu_fraction"] = result.cpu_fraction
    summary["generator_saturated"] = result.cpu_fraction > SATURATED
    kinds = by_kind(result.records, result.wall_s, slos)
    if kinds:
        summary["by_kind"] = kinds
    return summary


async def run_plan(
    plan: Plan, make_send: Callable[[Target], SendOne], slos: dict[str, float], progress: Progress
) -> list[Run]:
    runs = []
    for r, level, target in schedule(plan):
        label = f"{target.name} {level.label}" + (f" round {r + 1}" if plan.rounds > 1 else "")
        on_done = progress.begin(label, plan.budget.measured(level))
        rng = random.Random(plan.seed * 7919 + r)  # the same arrival times for every target of a round
        result = await run_level(make_send(target), level, plan.budget, on_done=on_done, rng=rng)
        summary = run_summary(result, slos)
        progress.end(label, summary)
        runs.append(Run(target.name, level, r, result, summary))
    return runs


def pooled(runs: list[Run], slos: dict[str, float]) -> list[dict[str, Any]]:
    """One summary per (target, level) over all rounds: records pooled, walls and CPU summed."""
    groups: dict[tuple[str, Level], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.target, run.level), []).append(run)
    out = []
    for (target, level), group in groups.items():
        merged = RunResult(
            [rec for run in group for rec in run.result.records],
            sum(run.result.wall_s for run in group),
            sum(run.result.cpu_s for run in group),
        )
        out.append(
            {
                "target": target,
                "level": level.label,
                "mode": level.mode,
                "value": level.value,
                "rounds": len(group),
                **run_summary(merged, slos),
            }
        )
    return out
