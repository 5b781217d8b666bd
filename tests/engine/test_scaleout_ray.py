"""Scale-out tier: the ray topology (`serve up` on cpu-demo-ray2): a local Ray head, a Ray Serve LLM app with
two replicas of the tiny checkpoint, the gateway in front. ~16 GB: runs last, after the session stack stopped.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from benchmarks.scaleout.cli import split_by_replica
from tests.engine.conftest import ROOT, _stop_and_check_no_orphans, _wait_ready, free_port, serve_up
from tests.engine.test_scaleout_dp import chat, health, stop_session_stack

pytestmark = [pytest.mark.engine, pytest.mark.scaleout]


@pytest.fixture(scope="module")
def ray_stack(request, tmp_path_factory):
    pytest.importorskip("ray.serve.llm", reason="`make install-ray` installs Ray Serve (make test does)")
    stop_session_stack(request)
    tmp = tmp_path_factory.mktemp("ray2")
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo-ray2.yaml").read_text())
    raw["engine"]["port"] = free_port()
    raw["topology"]["ray"] = {"metrics_port": free_port()}
    raw["gateway"] = {"port": 0, "terms": {"database": str(tmp / "acks.sqlite3")}}  # announced, read back
    (tmp / "profile.yaml").write_text(yaml.safe_dump(raw))
    proc = serve_up(tmp / "profile.yaml")
    try:
        url = _wait_ready(proc)
        yield url, raw["model"]["served_name"], f"http://127.0.0.1:{raw['topology']['ray']['metrics_port']}"
    finally:
        _stop_and_check_no_orphans(proc.popen)


def test_requests_through_the_gateway_reach_both_ray_replicas(ray_stack):
    url, model, ray_metrics = ray_stack
    status, body = health(url)
    llm = [d for d in body["replicas"] if "LLMServer" in d["deployment"]]
    assert status == 200 and llm[0]["replicas"] == {"RUNNING": 2}
    with ThreadPoolExecutor(8) as pool:
        reasons = list(pool.map(lambda i: chat(url, model, i), range(16)))
    assert set(reasons) <= {"length", "stop"} and len(reasons) == 16
    served = _settled_split(ray_metrics + "/metrics", at_least=16)
    assert len(served) == 2 and min(served.values()) >= 1, served


def _settled_split(url: str, at_least: int, within_s: float = 60.0) -> dict[str, int]:
    """Ray exports its replicas' metrics every few seconds: read until the counts cover the requests."""
    deadline = time.monotonic() + within_s
    while True:
        served = split_by_replica(httpx.get(url, timeout=30).text)
        if sum(served.values()) >= at_least or time.monotonic() > deadline:
            return served
        time.sleep(2)
