"""/health across replicas: ready while one replica is, each replica's state where the backend exposes it."""

from aiohttp import web
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, TermsSettings, load_config
from serve.gateway import dependencies
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.engine_client.readiness import engines_from_metrics, verdict
from serve.gateway.stores.sqlite import SqliteAckStore
from serve.scaleout.ray_backend import replica_summary, running_llm_replicas
from tests.conftest import MODEL
from tests.unit.test_command import CONFIGS

DP_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
vllm:num_requests_waiting{engine="1",model_name="m"} 2.0
vllm:num_requests_running{engine="10",model_name="m"} 0.0
vllm:request_success_total{engine="1",finished_reason="stop",model_name="m"} 7.0
"""


def test_engine_ranks_are_read_from_vllm_metrics():
    assert engines_from_metrics(DP_METRICS) == [
        {"engine": "0", "running": 3, "waiting": 0},
        {"engine": "1", "running": 1, "waiting": 2},
        {"engine": "10", "running": 0, "waiting": 0},
    ]
    assert engines_from_metrics("vllm:num_requests_running 0.0\n") == []


def test_a_probe_that_knows_overrides_the_upstream_check():
    assert verdict(True, None) and not verdict(False, None)
    assert verdict(False, (True, [])) and not verdict(True, (False, []))
    assert verdict(True, (None, []))  # the probe cannot tell: the upstream decides


async def test_health_lists_each_data_parallel_rank(aiohttp_server, make_gateway):
    async def health(request):
        return web.Response()

    async def metrics(request):
        return web.Response(text=DP_METRICS)

    dp = web.Application()
    dp.router.add_get("/health", health)
    dp.router.add_get("/metrics", metrics)
    server = await aiohttp_server(dp)
    gw = await make_gateway(upstream=str(server.make_url("")).rstrip("/"))
    body = await (await gw.get("/health")).json()
    assert body["status"] == "ok" and [r["engine"] for r in body["replicas"]] == ["0", "1", "10"]


async def test_health_follows_the_injected_backend_probe(aiohttp_client, engine, tmp_path, monkeypatch):
    monkeypatch.setattr(dependencies, "HEALTH_TTL_S", 0.0)  # each /health probes afresh (no 1 s reuse)
    state = {"ready": True}

    async def probe():
        replicas = [{"deployment": "LLMServer:m", "status": "HEALTHY", "replicas": {"RUNNING": 1}}]
        return state["ready"], replicas

    cfg = GatewayConfig(
        GatewaySettings(terms=TermsSettings(database=tmp_path / "a.db")),
        [MODEL],
        str(engine.make_url("")).rstrip("/"),
    )
    app = create_app(
        cfg,
        registry=CollectorRegistry(),
        store=SqliteAckStore(tmp_path / "a.db"),
        keys=KeyRing(),
        backend=probe,
    )
    gw = await aiohttp_client(app)
    ok = await gw.get("/health")
    assert ok.status == 200 and (await ok.json())["replicas"][0]["replicas"] == {"RUNNING": 1}
    state["ready"] = False  # the last replica went away although the proxy still answers
    down = await gw.get("/health")
    body = await down.json()
    assert down.status == 503 and body["engine"] == "down" and body["error"]["code"] == "engine_unavailable"


def test_ray_profiles_check_health_on_a_route_the_serve_app_has():
    ray = load_config(CONFIGS / "cpu-demo-ray2.yaml")
    assert GatewayConfig.from_profile(ray, "http://x").health_path == "/v1/models"
    dp = load_config(CONFIGS / "cpu-demo-dp2.yaml")
    assert GatewayConfig.from_profile(dp, "http://x").health_path == "/health"


class _Enum:
    def __init__(self, value):
        self.value = value


class _Dep:
    def __init__(self, status, states):
        self.status = _Enum(status)  # Ray 2.60: the status an enum, replica states plain strings
        self.replica_states = dict(states)


class _App:
    def __init__(self, deployments):
        self.deployments = deployments


class _Status:
    def __init__(self, apps):
        self.applications = apps


def test_ray_replica_summary_counts_only_model_replicas_as_ready():
    status = _Status(
        {
            "medgemma": _App(
                {
                    "LLMServer:demo": _Dep("UPSCALING", {"RUNNING": 1, "STARTING": 1}),
                    "OpenAiIngress": _Dep("HEALTHY", {"RUNNING": 1}),
                }
            )
        }
    )
    summary = replica_summary(status, "medgemma")
    assert summary[0] == {
        "deployment": "LLMServer:demo",
        "status": "UPSCALING",
        "replicas": {"RUNNING": 1, "STARTING": 1},
    }
    assert running_llm_replicas(summary) == 1
    assert replica_summary(status, "other") == []
    no_model = _Status({"medgemma": _App({"OpenAiIngress": _Dep("HEALTHY", {"RUNNING": 1})})})
    assert running_llm_replicas(replica_summary(no_model, "medgemma")) == 0
