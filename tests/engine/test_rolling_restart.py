"""Tier 3: two gateways behind HAProxy in front of the session's engine; a rolling restart of both under 16
streams loses no request (the short version of `python -m benchmarks.rolling`)."""

import asyncio

import pytest

from benchmarks.core.textload import Shape
from benchmarks.rolling import gateways, scenario, stats
from testkit import haproxy
from tests.engine.conftest import ROOT

pytestmark = pytest.mark.engine

# haproxy marks a draining gateway DOWN within ~0.75 s (testkit/haproxy.py Checks); 3 s leaves room on a busy box.
# Streams of 96 tokens (~4-5 s at c=16) outlast it: some are still running when the old gateway's port closes.
DRAIN = {"delay_s": 3.0}


def test_rolling_restart_behind_haproxy_fails_no_request(stack, tmp_path):
    if haproxy.executable() is None:
        pytest.skip("haproxy not found (`make install` as root installs it)")
    launch = gateways.launcher(tmp_path, ROOT / "configs" / "cpu-demo.yaml", stack.engine_url, DRAIN)
    with scenario.stack(launch, tmp_path) as s:
        first = dict(s.slots)
        outcome = asyncio.run(
            scenario.run(s, stack.model, Shape(128, 96), concurrency=16, rolls=1, settle_s=8, timeout_s=120)
        )
    fig = stats.figures(outcome.records, outcome.restarts, outcome.wall_s)
    assert fig["failed"] == 0, fig["errors"]
    assert fig["streams_cut"] == 0
    assert [r.slot for r in outcome.restarts] == list(scenario.SLOTS)
    assert all(r.old_exit_code == 0 for r in outcome.restarts), outcome.restarts
    assert all(first[r.slot].port != r.new_port for r in outcome.restarts)
    assert fig["requests_during_restarts"] >= 16  # the load really overlapped the restarts
    assert all(rec.disclaimer for rec in outcome.records)
