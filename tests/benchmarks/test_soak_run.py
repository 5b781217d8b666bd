"""A soak of a second or so through the gateway against the scripted fake engine: the report's shape."""

import json

import pytest
from prometheus_client import CollectorRegistry, ProcessCollector

from benchmarks.soak.cli import parse_args, soak, write_outputs
from tests.conftest import MODEL


@pytest.fixture
def registry():
    """The production gateway's registry: our metrics plus the process's own (RSS)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def args(gateway, tmp_path, *extra):
    url = str(gateway.make_url("")).rstrip("/")
    return parse_args(
        [
            "--base-url",
            url,
            "--minutes",
            str(1.2 / 60),
            "--interval",
            "0.3",
            "--warmup",
            "0.3",
            "--out",
            str(tmp_path),
            "--quiet",
            *extra,
        ]
    )


async def test_a_short_soak_samples_rss_and_finds_no_errors(gateway, script, tmp_path):
    script.chunks = 4
    doc = await soak(args(gateway, tmp_path, "--rate", "40"), say=lambda *_: None)
    s = doc["summary"]
    assert doc["rate"] == 40 and doc["rate_source"] == "--rate" and doc["capacity"] is None
    assert s["ok"] == s["requests"] > 0 and s["errors"]["zero"] is True
    assert len(doc["samples"]) >= 3  # the baseline, at least one on the grid, the last after the loop
    assert all(smp["gateway"]["rss_bytes"] > 0 for smp in doc["samples"])
    assert s["rss"]["start_bytes"] > 0 and s["rss"]["growth_fraction"] is not None
    gained = doc["samples"][-1]["gateway"]["requests_by_status"]["200"]
    gained -= doc["samples"][0]["gateway"]["requests_by_status"].get("200", 0)
    assert gained == s["ok"]  # the gateway counted every request the load tester saw succeed
    assert sum(smp["window"]["done"] for smp in doc["samples"]) == s["requests"]
    assert doc["samples"][-1]["in_flight"] == 0 and doc["settings"]["model"] == MODEL

    paths = write_outputs(doc, args(gateway, tmp_path))
    assert [p.suffix for p in paths] == [".json", ".md", ".png"]
    assert json.loads(paths[0].read_text())["schema"] == "medgemma-bench/soak/1"
    assert "| errors (target 0) | client 0; gateway 0 |" in paths[1].read_text()
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_engine_errors_are_tallied_on_both_sides(gateway, script, tmp_path):
    script.status = 503
    doc = await soak(args(gateway, tmp_path, "--rate", "30"), say=lambda *_: None)
    err = doc["summary"]["errors"]
    n = doc["summary"]["requests"]
    assert n > 0 and err["client"] == {"http_503": n} and err["zero"] is False
    assert err["gateway"]["non_2xx_by_status"] == {"503": n}
    assert "client " + str(n) + " (http_503: " + str(n) + ")" in doc["markdown"]


async def test_without_a_rate_the_soak_ramps_first_and_runs_at_the_fraction(gateway, tmp_path):
    doc = await soak(
        args(gateway, tmp_path, "--ramp", "1,2", "--ramp-duration", "0.2", "--fraction", "0.5"),
        say=lambda *_: None,
    )
    ramp = doc["capacity"]
    assert [level["concurrency"] for level in ramp["levels"]] == [1, 2]
    assert (
        doc["rate"] == pytest.approx(0.5 * ramp["requests_per_s"]) and "0.5 x measured" in doc["rate_source"]
    )
