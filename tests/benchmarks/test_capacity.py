"""The capacity comparison: its arithmetic on synthetic results, and a tiny in-process measurement."""

import os

import pytest

from benchmarks.capacity import report as cr
from benchmarks.capacity.cli import build_report, parse_args
from benchmarks.capacity.measure import Measure, Sample, order, run_all, summarize_samples
from benchmarks.capacity.stack import Proxy
from benchmarks.core.client import Target
from benchmarks.core.records import RequestRecord
from tests.conftest import MODEL


def result(rps, e2e_p50=None, e2e_p99=None, ttft_p50=None, ttft_p99=None, cpu_ms=None):
    return {
        "requests_per_s": rps,
        "errors": {},
        "proxy_cpu_per_request_ms": cpu_ms,
        "e2e_ms": {"p50": e2e_p50, "p99": e2e_p99},
        "ttft_ms": {"p50": ttft_p50, "p99": ttft_p99},
    }


def results(ns_rps, st_rps, added, first_added, cpu_ms):
    base = {
        "nonstream_high": result(9000),
        "stream_high": result(720),
        "nonstream_c1": result(900, 1.0, 1.5),
        "stream_c1": result(150, 5.5, 6.0, 5.2, 5.6),
    }
    if ns_rps is None:
        return base
    return {
        "nonstream_high": result(ns_rps, cpu_ms=cpu_ms),
        "stream_high": result(st_rps),
        "nonstream_c1": result(500, 1.0 + added, 1.5 + 2 * added),
        "stream_c1": result(100, 6.0, 7.0, 5.2 + first_added, 5.6 + 2 * first_added),
    }


SYNTHETIC = {
    cr.DIRECT: results(None, None, None, None, None),
    cr.OURS: results(5000, 700, 0.4, 0.8, 0.2),
    cr.LITELLM: results(100, 30, 12.0, 11.0, 10.0),
}


def test_figures_are_added_latency_over_direct():
    ours = cr.proxy_figures(SYNTHETIC, cr.OURS)
    assert ours["nonstream_rps"] == 5000 and ours["streams_per_s"] == 700
    assert ours["direct_streams_per_s"] == 720
    assert ours["added_p50_ms"] == pytest.approx(0.4) and ours["added_p99_ms"] == pytest.approx(0.8)
    assert ours["added_first_chunk_p50_ms"] == pytest.approx(0.8)
    assert ours["added_first_chunk_p99_ms"] == pytest.approx(1.6)
    assert ours["cpu_per_request_ms"] == 0.2


def test_ratios_against_litellm_and_the_goal():
    ours, theirs = (cr.proxy_figures(SYNTHETIC, n) for n in (cr.OURS, cr.LITELLM))
    ratios = cr.comparison(ours, theirs)
    assert ratios["nonstream_throughput_ratio"] == pytest.approx(50.0)
    assert ratios["stream_throughput_ratio"] == pytest.approx(700 / 30)
    assert ratios["added_p50_ratio"] == pytest.approx(0.4 / 12.0)
    assert ratios["goal_met"] is True
    slow = dict(ours, nonstream_rps=300.0)
    assert cr.comparison(slow, theirs)["goal_met"] is False
    assert cr.comparison(ours, None) == {}


def test_team_bars():
    ours = cr.proxy_figures(SYNTHETIC, cr.OURS)
    assert cr.bars(ours) == {
        "nonstream_rps": True,
        "added_p50": True,
        "added_p99": True,
        "added_first_chunk_p50": True,
        "added_first_chunk_p99": True,
        "streams_vs_direct": True,
        "cpu_per_request": True,
    }
    assert cr.bars(dict(ours, nonstream_rps=3999.0, added_p50_ms=0.6))["nonstream_rps"] is False


def test_markdown_has_a_row_per_proxy_and_the_verdict():
    figures = {n: cr.proxy_figures(SYNTHETIC, n) for n in (cr.OURS, cr.LITELLM)}
    md = cr.markdown(
        figures, cr.comparison(figures[cr.OURS], figures[cr.LITELLM]), {"concurrency": 64, "gap_ms": 5.0}
    )
    assert "| gateway | 5,000 |" in md and "| litellm | 100 |" in md and "Goal" in md and "met" in md


def test_samples_pool_over_rounds_with_cpu_per_request():
    recs = [RequestRecord(ok=True, e2e=0.001, ttft=0.001)] * 100
    s = summarize_samples([Sample(recs, 1.0, 0.3, 0.4, 0.02), Sample(recs, 1.0, 0.3, 0.4, 0.02)])
    assert s["requests_per_s"] == pytest.approx(100.0)
    assert s["proxy_cpu_per_request_ms"] == pytest.approx(0.2)
    assert s["harness_cpu_fraction"] == pytest.approx(0.7) and not s["harness_saturated"]
    assert summarize_samples([Sample(recs, 1.0, 0.5, 0.45, None)])["harness_saturated"]


def test_order_alternates_the_first_proxy():
    a, b = (Proxy(Target(n, "http://x"), None) for n in "ab")
    ms = [Measure("m1", False, 1, 1.0), Measure("m2", True, 1, 1.0)]
    assert [(m.name, p.target.name) for _, m, p in order([a, b], ms, 1)] == [
        ("m1", "a"),
        ("m1", "b"),
        ("m2", "b"),
        ("m2", "a"),
    ]


@pytest.mark.parametrize("use_aiohttp", [False, True])
async def test_a_tiny_capacity_run_in_process(engine, gateway, use_aiohttp):
    proxies = [
        Proxy(Target(cr.DIRECT, str(engine.make_url("")).rstrip("/")), None),
        Proxy(Target(cr.OURS, str(gateway.make_url("")).rstrip("/"), expect_disclaimer=True), None),
    ]
    ms = [
        Measure("nonstream_high", False, 4, 0.05),
        Measure("stream_high", True, 4, 0.05),
        Measure("nonstream_c1", False, 1, 0.05),
        Measure("stream_c1", True, 1, 0.05),
    ]
    got = await run_all(
        proxies, os.getpid(), ms, warmup_s=0.0, model=MODEL, use_aiohttp=use_aiohttp, say=lambda line: None
    )
    for name in (cr.DIRECT, cr.OURS):
        for m in ms:
            assert got[name][m.name]["ok"] > 0 and got[name][m.name]["errors"] == {}, (name, m.name)
    args = parse_args(["--skip-litellm", "--duration", "0.05"])
    doc = build_report(args, got, {})
    assert doc["figures"][cr.OURS]["nonstream_rps"] > 0 and doc["comparison"] == {}
    assert set(doc["bars"]) == set(cr.bars(doc["figures"][cr.OURS])) and "| gateway |" in doc["markdown"]
