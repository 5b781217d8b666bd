"""The shipped Grafana dashboard and Prometheus config use metric names and paths the gateway really serves."""

import json
import re
from pathlib import Path

import yaml

from tests.conftest import ACK, chat_body

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


async def test_dashboard_queries_only_metrics_the_gateway_exports(gateway):
    await gateway.post("/v1/chat/completions", json=chat_body(stream=True), headers=ACK)
    await gateway.post("/v1/chat/completions", json=chat_body(model="x"), headers=ACK)
    await gateway.post("/v1/chat/completions", json=chat_body())
    exported = await (await gateway.get("/metrics")).text()
    dashboard = json.loads((CONFIGS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"medgemma_gateway_\w+", e)}
    assert len(used) >= 10
    for name in used:
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f"# TYPE {family} " in exported, f"dashboard uses {name}, not exported"


async def test_scrape_config_paths_are_served(gateway):
    config = yaml.safe_load((CONFIGS / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        resp = await gateway.get(job["metrics_path"])
        assert resp.status == 200, job["job_name"]
        assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
