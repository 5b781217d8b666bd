"""Reading the gateway's exposition: process metrics and our counters, parsed from a real registry."""

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from benchmarks.core.gateway_scrape import delta, loop_lag_over, non_2xx, parse
from serve.gateway.telemetry.metrics import GatewayMetrics

ROUTE = "/v1/chat/completions"


def exposition(process: bool = True) -> tuple[GatewayMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    if process:
        ProcessCollector(registry=registry)
    return GatewayMetrics(registry), registry


def test_parse_reads_rss_and_sums_counters_over_other_labels():
    metrics, registry = exposition()
    metrics.requests.labels(ROUTE, "m", "200").inc(5)
    metrics.requests.labels("/v1/completions", "other", "200").inc(2)
    metrics.requests.labels(ROUTE, "m", "429").inc(3)
    metrics.errors.labels("too_many_concurrent_requests").inc(3)
    metrics.upstream_errors.labels("connect").inc()
    got = parse(generate_latest(registry).decode())
    assert got["rss_bytes"] > 0 and got["open_fds"] > 0 and got["cpu_s"] >= 0
    assert got["requests_by_status"] == {"200": 7, "429": 3}
    assert got["errors_by_code"] == {"too_many_concurrent_requests": 3}
    assert got["upstream_errors_by_kind"] == {"connect": 1}


def test_a_registry_without_process_metrics_gives_none_not_zero():
    _, registry = exposition(process=False)
    got = parse(generate_latest(registry).decode())
    assert got["rss_bytes"] is None and got["requests_by_status"] == {}


def test_delta_counts_labels_that_appear_later_from_zero_and_drops_unchanged_ones():
    before = {"requests_by_status": {"200": 10}, "errors_by_code": {}, "upstream_errors_by_kind": {}}
    after = {
        "requests_by_status": {"200": 10, "502": 2},
        "errors_by_code": {"x": 1},
        "upstream_errors_by_kind": {},
    }
    assert delta(before, after) == {
        "requests_by_status": {"502": 2},
        "errors_by_code": {"x": 1},
        "upstream_errors_by_kind": {},
    }
    assert non_2xx({"200": 4, "204": 1, "429": 2, "503": 1}) == {"429": 2, "503": 1}


def test_loop_lag_over_counts_the_samples_past_each_bound_between_two_scrapes():
    metrics, registry = exposition(process=False)
    metrics.loop_lag.observe(0.0004)
    before = parse(generate_latest(registry).decode())
    for lag in (0.0002, 0.003, 0.012, 0.3):
        metrics.loop_lag.observe(lag)
    over = loop_lag_over(before, parse(generate_latest(registry).decode()))
    assert over[0.0] == 4 and over[0.001] == 3 and over[0.005] == 2 and over[0.01] == 2 and over[0.25] == 1
    assert over[2.5] == 0
