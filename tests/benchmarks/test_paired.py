"""The paired latency benchmark: its route plan, its bootstrap interval, and a short run on the fake engine."""

import random

from prometheus_client import CollectorRegistry, generate_latest

from benchmarks.paired.cli import difference, measure, own_time, parse_args, plan
from serve.gateway.telemetry.metrics import GatewayMetrics


def url(server) -> str:
    return str(server.make_url("")).rstrip("/")


def test_the_plan_is_half_each_and_fixed_by_its_seed():
    routes = plan(101, seed=3)
    assert routes.count("engine") == 51 and routes.count("gateway") == 50
    assert routes == plan(101, seed=3) and routes != plan(101, seed=4)
    assert routes[:20] != sorted(routes[:20])  # shuffled, not blocks


def test_the_interval_holds_a_known_shift_and_excludes_none_when_there_is_one():
    rng = random.Random(0)
    base = [0.030 + rng.gauss(0, 0.002) for _ in range(400)]
    shifted = [v + 0.004 for v in (0.030 + rng.gauss(0, 0.002) for _ in range(400))]
    for q in (50, 99):
        added = difference(base, shifted, q)
        low, high = added["ci95_ms"]
        assert low < 4.0 < high and low > 0  # the 4 ms shift is inside; "no difference" is outside
        same = difference(base, [0.030 + rng.gauss(0, 0.002) for _ in range(400)], q)
        assert same["ci95_ms"][0] < 0 < same["ci95_ms"][1]
    # a tail that only one side has moves p99, not p50
    tail = sorted(shifted)[:-20] + [0.2] * 20
    assert difference(shifted, tail, 99)["ci95_ms"][0] > 0 and difference(shifted, tail)["ms"] == 0


def test_own_time_reads_the_gateways_histogram_over_all_routes():
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    for route, seconds in (
        ("/v1/chat/completions", 0.001),
        ("/v1/chat/completions", 0.003),
        ("/v1/completions", 0.002),
    ):
        metrics.overhead.labels(route).observe(seconds)
    total, count, _ = own_time(generate_latest(registry).decode())
    assert count == 3 and abs(total - 0.006) < 1e-9
    assert own_time("process_cpu_seconds_total 12.5\n")[2] == 12.5


async def test_a_short_run_sends_both_routes_at_each_level(engine, gateway, script):
    script.chunks = 3
    args = parse_args(
        [
            "--engine",
            url(engine),
            "--gateway",
            url(gateway),
            "--concurrency",
            "1,4",
            "--requests",
            "10",
            "--warmup",
            "2",
            "--output-tokens",
            "3",
        ]
    )
    results = await measure(args)
    assert list(results) == ["c=1", "c=4"]
    for r in results.values():
        assert r["routes"]["engine"] == {**r["routes"]["engine"], "sent": 5, "ok": 5}
        assert r["routes"]["gateway"] == {
            **r["routes"]["gateway"],
            "sent": 5,
            "ok": 5,
        }  # disclaimer seen on each
        assert r["gateway_own_ms_per_request"] > 0 and set(r["added"]) == {"ttft", "ttft_p99", "e2e"}
        samples = r["samples_ms"]
        assert [len(samples[route]["ttft"]) for route in ("engine", "gateway")] == [5, 5]
        assert all(v > 0 for route in samples.values() for vs in route.values() for v in vs)
    assert len(script.seen) == 2 + 2 * 10  # warm-up and both levels; gateway requests reach the same engine
