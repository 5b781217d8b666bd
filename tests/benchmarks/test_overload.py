"""The overload figures on synthetic records, and one run through a capped gateway on the fake engine."""

import argparse

import pytest

from benchmarks.core.client import Target
from benchmarks.core.records import RequestRecord
from benchmarks.core.textload import Shape
from benchmarks.overload.cli import one_run
from benchmarks.overload.gateway_proc import UNCAPPED, gateway_profile
from benchmarks.overload.stats import figures, markdown
from serve.config import Profile
from tests.conftest import MODEL


def ok(ttft, e2e):
    return RequestRecord(ok=True, status=200, ttft=ttft, e2e=e2e, output_tokens=4)


def refused(e2e=0.002):
    return RequestRecord(ok=False, status=429, error="http_429", e2e=e2e)


def test_admitted_latency_excludes_refusals_and_their_speed_is_reported_apart():
    records = [
        ok(0.1, 1.0),
        ok(0.3, 2.0),
        refused(0.001),
        refused(0.003),
        RequestRecord(ok=False, status=502, error="http_502", e2e=0.5),
    ]
    before = {"requests_by_status": {"200": 7}, "errors_by_code": {}, "upstream_errors_by_kind": {}}
    after = {
        "requests_by_status": {"200": 9, "429": 2, "502": 1},
        "errors_by_code": {},
        "upstream_errors_by_kind": {},
    }
    got = figures(records, wall_s=2.0, offered_per_s=4.0, before=before, after=after)
    assert got["requests"] == 5 and got["admitted"] == 3 and got["ok"] == 2 and got["ok_per_s"] == 1.0
    assert got["refused_429"] == 2 and got["refused_fraction"] == 0.4
    assert got["refused_ms"]["p50"] == pytest.approx(2.0)
    assert got["ttft_ms"]["p50"] == pytest.approx(200.0) and got["e2e_ms"]["p99"] == pytest.approx(1990.0)
    assert got["server_errors_5xx"] == 1 and got["admitted_errors"] == {"http_502": 1}
    assert got["gateway_requests_by_status"] == {"200": 2, "429": 2, "502": 1} and got["gateway_5xx"] == 1


def test_markdown_has_one_row_per_run_and_says_when_the_cap_is_off():
    fig = figures([ok(0.1, 1.0), refused()], 1.0, 2.0)
    runs = [{"multiple": 4.0, "cap": 8, "figures": fig}, {"multiple": 4.0, "cap": None, "figures": fig}]
    text = markdown(runs, {"requests_per_s": 0.5, "concurrency": 8, "tolerance": 0.1})
    rows = [line for line in text.splitlines() if line.startswith("| 4x")]
    assert rows[0].startswith("| 4x | 8 | 2.00 |") and rows[1].startswith("| 4x | off |")
    assert "50.0%" in rows[0] and "concurrency 8" in text


def test_gateway_profile_sets_port_store_and_both_caps_and_stays_a_valid_profile(tmp_path):
    base = {
        "name": "x",
        "model": {"source": "none", "served_name": MODEL, "license": "none"},
        "gateway": {"limits": {"max_concurrent": 5}},
    }
    got = gateway_profile(base, 9999, tmp_path / "a.sqlite3", UNCAPPED)
    assert Profile.model_validate(got).gateway.limits.max_concurrent_per_key == UNCAPPED
    assert got["gateway"]["port"] == 9999 and base["gateway"]["limits"] == {"max_concurrent": 5}


async def test_past_the_cap_the_gateway_refuses_with_429_and_never_5xx(make_gateway, script):
    script.delay_s = 0.3  # each admitted request holds its slot while the rest arrive
    gateway = await make_gateway(limits={"max_concurrent": 1, "max_concurrent_per_key": 1})
    target = Target("capped", str(gateway.make_url("")).rstrip("/"), expect_disclaimer=True)
    args = argparse.Namespace(duration=0.1, seed=0)
    got = await one_run(gateway.session, target, Shape(output_tokens=4).workload(MODEL), 200.0, args, 0)
    assert got["requests"] > 1 and got["admitted"] >= 1 and got["refused_429"] >= 1
    assert got["admitted"] + got["refused_429"] == got["requests"]
    assert got["server_errors_5xx"] == 0 and got["gateway_5xx"] == 0
    assert got["gateway_requests_by_status"]["429"] == got["refused_429"]
