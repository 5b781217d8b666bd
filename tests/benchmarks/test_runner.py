"""Load shapes and the sweep's bookkeeping, with a fake `send` (no network, no timing asserts)."""

import asyncio
import random

import pytest

from benchmarks.core.client import Target
from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import Budget, Level, closed_loop, open_loop, run_level
from benchmarks.core.sweep import Plan, pooled, schedule
from benchmarks.loadtest.compare import compare


class FakeSend:
    def __init__(self):
        self.indices = []
        self.in_flight = self.peak = 0

    async def __call__(self, i):
        self.indices.append(i)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        return RequestRecord(ok=True, ttft=0.01, e2e=0.1, output_tokens=4)


async def test_closed_loop_sends_each_index_once_and_never_exceeds_the_concurrency():
    send = FakeSend()
    records = await closed_loop(send, 4, Budget(requests=10), first=3)
    assert sorted(send.indices) == list(range(3, 13))
    assert len(records) == 10 and send.peak <= 4


async def test_closed_loop_with_a_duration_stops_starting_requests():
    send = FakeSend()
    records = await closed_loop(send, 2, Budget(duration_s=0.0))
    assert records == []


async def test_open_loop_sends_the_asked_count():
    send = FakeSend()
    records = await open_loop(send, 1000.0, Budget(requests=5), rng=random.Random(1))
    assert len(records) == 5 and sorted(send.indices) == [0, 1, 2, 3, 4]


async def test_warmup_is_sent_but_not_recorded_and_indices_continue():
    send = FakeSend()
    result = await run_level(send, Level("concurrency", 2), Budget(requests=4, warmup=3))
    assert sorted(send.indices) == list(range(7))
    assert len(result.records) == 4
    assert result.wall_s >= 0 and result.cpu_s >= 0


def test_default_budget_fills_the_concurrency():
    assert Budget().measured(Level("concurrency", 64)) == 256
    assert Budget().measured(Level("concurrency", 1)) == 32
    assert Budget(requests=10).measured(Level("rate", 2.0)) == 10


def test_schedule_runs_targets_back_to_back_and_alternates_who_goes_first():
    a, b = Target("a", "http://a"), Target("b", "http://b")
    plan = Plan((a, b), (Level("concurrency", 1), Level("concurrency", 4)), Budget(), rounds=2)
    order = [(r, lvl.label, t.name) for r, lvl, t in schedule(plan)]
    assert order == [
        (0, "c=1", "a"),
        (0, "c=1", "b"),
        (0, "c=4", "b"),
        (0, "c=4", "a"),
        (1, "c=1", "b"),
        (1, "c=1", "a"),
        (1, "c=4", "a"),
        (1, "c=4", "b"),
    ]


def summary(target, level, rps, ttft_p50, ttft_p99):
    return {
        "target": target,
        "level": level,
        "requests_per_s": rps,
        "output_tokens_per_s": rps * 10,
        "goodput_per_s": rps,
        "ttft_ms": {"p50": ttft_p50, "p99": ttft_p99},
        "tpot_ms": {"p50": 5.0},
        "e2e_ms": {"p50": 100.0},
    }


def test_compare_gives_added_latency_and_throughput_ratio_per_level():
    rows = compare(
        [
            summary("engine", "c=1", 10.0, 20.0, 30.0),
            summary("gateway", "c=1", 9.0, 20.5, 32.0),
            summary("engine", "c=4", 20.0, 40.0, 60.0),
            summary("gateway", "c=4", 20.0, 41.0, 61.0),
        ],
        "engine",
    )
    assert [(r["level"], r["target"]) for r in rows] == [("c=1", "gateway"), ("c=4", "gateway")]
    assert rows[0]["added_ttft_p50_ms"] == pytest.approx(0.5)
    assert rows[0]["added_ttft_p99_ms"] == pytest.approx(2.0)
    assert rows[0]["throughput_ratio"] == pytest.approx(0.9)
    assert rows[1]["throughput_ratio"] == pytest.approx(1.0)


def test_pooled_rounds_sum_walls():
    from benchmarks.core.runner import RunResult
    from benchmarks.core.sweep import Run

    lvl = Level("concurrency", 1)
    runs = [
        Run("a", lvl, r, RunResult([RequestRecord(ok=True, e2e=0.1)] * 5, 1.0, 0.1), {}) for r in range(2)
    ]
    [s] = pooled(runs, {})
    assert s["requests"] == 10 and s["requests_per_s"] == pytest.approx(5.0) and s["rounds"] == 2


def test_rich_progress_counts_requests_and_errors():
    import io

    from rich.console import Console

    from benchmarks.loadtest.display import RichProgress

    console = Console(file=io.StringIO(), width=120)
    with RichProgress(console) as progress:
        done = progress.begin("gateway c=1", None)  # a duration-bound run: no known total
        done(RequestRecord(ok=True))
        done(RequestRecord(ok=False, error="timeout"))
        progress.end("gateway c=1", {})
        [task] = progress._progress.tasks
        assert task.completed == 2 and task.total == 2 and task.fields["errors"] == 1
