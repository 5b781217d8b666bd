"""The load tester's arithmetic on synthetic records: percentiles, TPOT, goodput under SLOs, errors."""

import math

import numpy as np
import pytest

from benchmarks.core import records as R
from benchmarks.core.records import RequestRecord
from benchmarks.core.stats import distribution, errors_by_type, meets_slos, parse_slo, percentile, summarize


def rec(ttft=0.1, e2e=1.0, tokens=10, ok=True, error=None, itl=(), kind="text"):
    return RequestRecord(
        kind=kind, ok=ok, error=error, ttft=ttft, e2e=e2e, output_tokens=tokens, itl=list(itl)
    )


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear_interpolation(q):
    values = [5.0, 1.0, 9.5, 3.25, 7.0, 2.0, 8.0]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_nan_and_distribution_is_none():
    assert math.isnan(percentile([], 50))
    assert distribution([]) == {"mean": None, "p50": None, "p90": None, "p99": None}


def test_distribution_is_in_milliseconds():
    assert distribution([0.001, 0.003]) == pytest.approx({"mean": 2.0, "p50": 2.0, "p90": 2.8, "p99": 2.98})


def test_tpot_excludes_the_first_token():
    assert rec(ttft=0.2, e2e=2.0, tokens=10).tpot == pytest.approx(0.2)


@pytest.mark.parametrize("tokens", [None, 0, 1])
def test_tpot_is_undefined_below_two_tokens(tokens):
    assert rec(tokens=tokens).tpot is None


def test_parse_slo_reads_units_into_seconds():
    assert parse_slo("ttft_ms=500") == ("ttft", 0.5)
    assert parse_slo("e2e_s=2") == ("e2e", 2.0)
    for bad in ("ttft=500", "latency_ms=5", "ttft_ms"):
        with pytest.raises(ValueError):
            parse_slo(bad)


def test_goodput_counts_ok_requests_within_every_slo():
    slos = {"ttft": 0.5, "tpot": 0.05}
    good = rec(ttft=0.4, e2e=0.4 + 9 * 0.04, tokens=10)
    slow_first = rec(ttft=0.6, e2e=0.6 + 9 * 0.04, tokens=10)
    slow_tokens = rec(ttft=0.4, e2e=0.4 + 9 * 0.06, tokens=10)
    failed = rec(ok=False, error=R.TIMEOUT)
    one_token = rec(ttft=0.3, e2e=0.3, tokens=1)  # no TPOT: the TPOT bound does not apply
    assert [meets_slos(r, slos) for r in (good, slow_first, slow_tokens, failed, one_token)] == [
        True,
        False,
        False,
        False,
        True,
    ]
    summary = summarize([good, slow_first, slow_tokens, failed, one_token], wall_s=2.0, slos=slos)
    assert summary["goodput_per_s"] == pytest.approx(1.0)
    assert summary["goodput_fraction"] == pytest.approx(0.4)
    assert summary["slos_ms"] == {"ttft": 500.0, "tpot": 50.0}


def test_itl_slo_bounds_the_worst_gap():
    assert meets_slos(rec(itl=[0.01, 0.02]), {"itl": 0.03})
    assert not meets_slos(rec(itl=[0.01, 0.04]), {"itl": 0.03})


def test_errors_are_counted_by_type_missing_disclaimer_included():
    records = [
        rec(),
        rec(ok=False, error=R.MISSING_DISCLAIMER),
        rec(ok=False, error=R.MISSING_DISCLAIMER),
        rec(ok=False, error=R.http_error(503)),
    ]
    assert errors_by_type(records) == {"missing_disclaimer": 2, "http_503": 1}
    summary = summarize(records, wall_s=1.0, slos={})
    assert summary["errors"] == {"missing_disclaimer": 2, "http_503": 1}
    assert summary["ok"] == 1 and summary["error_rate"] == pytest.approx(0.75)


def test_throughput_and_latency_come_from_ok_requests_only():
    records = [
        rec(ttft=0.1, e2e=1.0, tokens=10, itl=[0.1] * 9),
        rec(ttft=0.3, e2e=2.0, tokens=20),
        rec(ok=False, error=R.CONNECT, ttft=None, e2e=None, tokens=None),
    ]
    s = summarize(records, wall_s=4.0, slos={})
    assert s["requests_per_s"] == pytest.approx(0.5)
    assert s["output_tokens"] == 30 and s["output_tokens_per_s"] == pytest.approx(7.5)
    assert s["ttft_ms"]["p50"] == pytest.approx(200.0)
    assert s["e2e_ms"]["mean"] == pytest.approx(1500.0)
    assert s["itl_ms"]["p99"] == pytest.approx(100.0)
    assert s["tpot_ms"]["p50"] == pytest.approx((100.0 + 1700 / 19) / 2)


def test_record_round_trips_through_json():
    r = rec(itl=[0.1, 0.2])
    data = r.to_json()
    assert data["tpot"] == pytest.approx(r.tpot)
    assert RequestRecord.from_json(data) == r
