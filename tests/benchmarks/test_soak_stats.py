"""The soak's arithmetic on synthetic samples and records: RSS growth after warm-up, error tallies, windows."""

import pytest

from benchmarks.core.records import RequestRecord
from benchmarks.soak.stats import error_tallies, rss_growth, slope, summary, window

MIB = 2**20


def scrape(rss=None, ok=0, **counters):
    return {
        "rss_bytes": rss,
        "open_fds": 10,
        "requests_by_status": {"200": ok, **counters.get("status", {})},
        "errors_by_code": counters.get("codes", {}),
        "upstream_errors_by_kind": counters.get("kinds", {}),
    }


def sample(t, rss, in_flight=0, **kw):
    return {"t": t, "gateway": scrape(rss, **kw), "in_flight": in_flight}


def test_rss_growth_runs_from_the_first_sample_after_warmup_to_the_last():
    samples = [sample(0, 50 * MIB), sample(10, 80 * MIB), sample(20, 100 * MIB), sample(30, 105 * MIB)]
    got = rss_growth(samples, warmup_s=10)
    assert got["baseline_t_s"] == 10 and got["start_bytes"] == 80 * MIB and got["end_bytes"] == 105 * MIB
    assert got["growth_fraction"] == pytest.approx(25 / 80) and got["within_target"] is False
    assert got["peak_bytes"] == 105 * MIB


def test_rss_growth_within_target_and_a_shrink_is_negative():
    samples = [sample(0, 50 * MIB), sample(60, 100 * MIB), sample(120, 104 * MIB), sample(180, 99 * MIB)]
    got = rss_growth(samples, warmup_s=60)
    assert got["growth_fraction"] == pytest.approx(-0.01) and got["within_target"] is True
    assert got["peak_bytes"] == 104 * MIB


def test_rss_growth_skips_failed_scrapes_and_falls_back_to_all_samples_when_none_is_after_warmup():
    samples = [
        sample(0, 100 * MIB),
        {"t": 5, "gateway": {"error": "down"}, "in_flight": 0},
        sample(9, 120 * MIB),
    ]
    got = rss_growth(samples, warmup_s=60)
    assert got["baseline_t_s"] == 0 and got["growth_fraction"] == pytest.approx(0.2)
    assert rss_growth([sample(0, None)], 0)["growth_fraction"] is None


def test_slope_is_least_squares_per_second():
    assert slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert slope([(0, 1.0)]) is None and slope([(3, 1.0), (3, 2.0)]) is None


def fail(error, status=None):
    return RequestRecord(ok=False, error=error, status=status)


def test_error_tallies_count_both_sides_and_zero_only_when_both_are_clean():
    records = [RequestRecord(ok=True), fail("http_502", 502), fail("timeout"), fail("http_502", 502)]
    before = scrape(ok=10)
    after = scrape(ok=11, status={"502": 2}, kinds={"status_5xx": 2})
    got = error_tallies(records, before, after)
    assert got["client"] == {"http_502": 2, "timeout": 1} and got["client_total"] == 3
    assert got["gateway"]["non_2xx_by_status"] == {"502": 2}
    assert got["gateway"]["upstream_errors_by_kind"] == {"status_5xx": 2}
    assert got["gateway_total"] == 4 and got["zero"] is False
    clean = error_tallies([RequestRecord(ok=True)], scrape(ok=3), scrape(ok=4))
    assert clean["client_total"] == 0 and clean["gateway_total"] == 0 and clean["zero"] is True


def test_a_failed_scrape_cannot_prove_zero_errors():
    got = error_tallies([RequestRecord(ok=True)], {"error": "down"}, scrape(ok=1))
    assert got["gateway"] is None and got["zero"] is False


def test_window_rates_are_per_interval_and_latencies_from_ok_requests_only():
    records = [RequestRecord(ok=True, ttft=0.1, e2e=1.0, output_tokens=8) for _ in range(4)]
    records.append(RequestRecord(ok=False, error="http_503", ttft=9.0, e2e=9.0))
    got = window(records, dt=2.0)
    assert got["done"] == 5 and got["ok"] == 4 and got["errors"] == {"http_503": 1}
    assert got["requests_per_s"] == 2.0 and got["output_tokens_per_s"] == 16.0
    assert got["ttft_ms"]["p99"] == pytest.approx(100.0)
    assert window([], dt=0.0)["requests_per_s"] == 0.0


def test_summary_compares_the_first_and_last_scrape():
    samples = [
        sample(0, 100 * MIB, ok=5),
        sample(10, 101 * MIB, in_flight=3, ok=9),
        sample(20, 102 * MIB, ok=13),
    ]
    records = [RequestRecord(ok=True, ttft=0.1, e2e=0.5, output_tokens=4) for _ in range(8)]
    got = summary(records, samples, wall_s=20.0, warmup_s=10)
    assert got["ok"] == 8 and got["requests_per_s"] == 0.4 and got["max_in_flight"] == 3
    assert got["errors"]["zero"] is True and got["rss"]["start_bytes"] == 101 * MIB
    assert got["open_fds"] == {"first": 10, "last": 10, "max": 10} and got["scrape_failures"] == 0
