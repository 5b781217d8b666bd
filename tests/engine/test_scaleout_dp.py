"""Scale-out tier: the CPU engine with two data-parallel ranks behind the gateway (`serve up`, cpu-demo-dp2).

Two ranks need ~12 GB: this runs after every other engine test and first stops the session stack, so no
more than one engine server is up at a time.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
import yaml
from openai import OpenAI

from benchmarks.scaleout.cli import split_by_replica
from tests.engine.conftest import (
    ACK_HEADERS,
    ROOT,
    _stop_and_check_no_orphans,
    _wait_ready,
    free_port,
    serve_up,
)

pytestmark = [pytest.mark.engine, pytest.mark.scaleout]
RECOVERY_S = 900


@pytest.fixture(scope="module")
def dp_stack(request, tmp_path_factory):
    stop_session_stack(request)
    tmp = tmp_path_factory.mktemp("dp2")
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo-dp2.yaml").read_text())
    raw["engine"]["port"] = free_port()
    raw["gateway"] = {"port": 0, "terms": {"database": str(tmp / "acks.sqlite3")}}  # announced, read back
    (tmp / "profile.yaml").write_text(yaml.safe_dump(raw))
    proc = serve_up(tmp / "profile.yaml")
    try:
        url = _wait_ready(proc)
        yield url, raw["model"]["served_name"], proc.popen
    finally:
        _stop_and_check_no_orphans(proc.popen)


def stop_session_stack(request) -> None:
    """Tear the session's single-engine stack down early (if it ran): never two engine servers at once."""
    for fixturedef in request._fixturemanager.getfixturedefs("stack", request.node) or ():
        fixturedef.finish(request)


def chat(url: str, model: str, i: int) -> str:
    client = OpenAI(
        base_url=url + "/v1", api_key="local", max_retries=0, timeout=300, default_headers=ACK_HEADERS
    )
    out = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"Question {i}"}], max_tokens=8
    )
    return out.choices[0].finish_reason


def health(url: str) -> tuple[int, dict]:
    resp = httpx.get(url + "/health", timeout=10)
    return resp.status_code, resp.json()


def test_requests_through_the_gateway_reach_both_ranks(dp_stack):
    url, model, _ = dp_stack
    before = split_by_replica(httpx.get(url + "/metrics/engine", timeout=10).text)
    with ThreadPoolExecutor(8) as pool:
        reasons = list(pool.map(lambda i: chat(url, model, i), range(16)))
    assert len(reasons) == 16
    after = split_by_replica(httpx.get(url + "/metrics/engine", timeout=10).text)
    served = {rank: after[rank] - before.get(rank, 0) for rank in after}
    assert set(served) == {"0", "1"} and min(served.values()) >= 1, served
    status, body = health(url)
    assert status == 200 and [r["engine"] for r in body["replicas"]] == ["0", "1"]


def test_a_killed_rank_is_reported_and_the_gateway_serves_again(dp_stack):
    url, model, proc = dp_stack
    rank = next(p for p in psutil.Process(proc.pid).children(recursive=True) if "EngineCore_DP1" in _title(p))
    rank.send_signal(signal.SIGKILL)
    seen = _watch_health(url, until=lambda s, b: s == 503, within_s=120)
    assert seen[-1][0] == 503 and seen[-1][1]["engine"] == "down"  # /health says so; not a silent hang
    seen += _watch_health(
        url, until=lambda s, b: s == 200 and len(b.get("replicas", [])) == 2, within_s=RECOVERY_S
    )
    status, body = seen[-1]
    assert status == 200 and [r["engine"] for r in body["replicas"]] == ["0", "1"], seen[-3:]
    assert chat(url, model, 99) in {"length", "stop"}  # the supervisor restarted both ranks: serving again


def _title(p: psutil.Process) -> str:
    try:
        return " ".join([p.name(), *p.cmdline()])
    except psutil.Error:
        return ""


def _watch_health(url: str, until, within_s: float) -> list[tuple[int, dict]]:
    seen: list[tuple[int, dict]] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            seen.append(health(url))
        except (httpx.HTTPError, ValueError):
            time.sleep(1)
            continue
        if until(*seen[-1]):
            return seen
        time.sleep(2)
    return seen
