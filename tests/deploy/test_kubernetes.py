"""deploy/kubernetes: core manifests validate offline (strict schemas), the RayService matches the profile."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from serve.config import Profile
from serve.scaleout.ray_config import BUILDER, serve_application

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.31.0"  # the oldest release still in upstream support when these were written
CUSTOM = {"RayService"}  # no schema offline: checked field by field below


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> dict[str, dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    out = {}
    for name in kustomization["resources"]:
        for doc in documents(K8S / name):
            out[doc["kind"]] = doc
    return out


def core_files() -> list[Path]:
    files = [*K8S.glob("*.yaml"), *(K8S / "examples").glob("*.yaml")]
    return sorted(p for p in files if p.name != "kustomization.yaml")


def profile() -> Profile:
    return Profile.model_validate(yaml.safe_load(manifests()["ConfigMap"]["data"]["profile.yaml"]))


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_manifests_validate_strictly_offline(path):
    for doc in documents(path):
        if doc["kind"] in CUSTOM:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_an_unknown_field():
    doc = documents(K8S / "gateway-service.yaml")[0]
    doc["spec"]["selectr"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_example_secret():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_configmap_profile_is_a_valid_ray_profile_with_secrets_from_the_environment():
    p = profile()
    assert p.topology.kind == "ray" and p.topology.autoscaling is not None
    assert p.gateway.terms.store.kind == "postgres" and p.gateway.auth.api_keys_env
    assert p.gateway.auth.hash_secret_env  # postgres: the gateways share one key-hash secret
    secret = documents(K8S / "examples" / "secret.yaml")[0]["stringData"]
    auth = p.gateway.auth
    assert {p.gateway.terms.store.dsn_env, auth.api_keys_env, auth.hash_secret_env} == set(secret)


def test_gateway_objects_select_the_deployment_pods():
    m = manifests()
    pod_labels = m["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        m["Service"]["spec"]["selector"],
        m["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        m["Deployment"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()
    target = m["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", m["Deployment"]["metadata"]["name"])
    assert (
        m["HorizontalPodAutoscaler"]["spec"]["minReplicas"] > m["PodDisruptionBudget"]["spec"]["minAvailable"]
    )


def test_gateway_reads_the_configmap_and_the_secret_and_migrates_first():
    m = manifests()
    spec = m["Deployment"]["spec"]["template"]["spec"]
    assert spec["volumes"][0]["configMap"]["name"] == m["ConfigMap"]["metadata"]["name"]
    (init,) = spec["initContainers"]
    assert init["command"][:4] == ["python", "-m", "serve", "migrate"]
    assert set(secret_refs(init)) == {profile().gateway.terms.store.dsn_env}
    auth = profile().gateway.auth
    wanted = {auth.api_keys_env, auth.hash_secret_env, profile().gateway.terms.store.dsn_env}
    assert set(secret_refs(spec["containers"][0])) == wanted
    assert spec["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"


def secret_refs(container: dict) -> dict[str, dict]:
    """The container's variables from Secrets, by name; `envFrom` is refused (it starts without a missing key)."""
    assert "envFrom" not in container, container["name"]
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}


def test_every_secret_key_the_pods_read_is_required():
    m = manifests()
    pods = [m["Deployment"]["spec"]["template"]["spec"]]
    cluster = m["RayService"]["spec"]["rayClusterConfig"]
    pods += [cluster["headGroupSpec"]["template"]["spec"]]
    pods += [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    refs = {}
    for pod in pods:
        for container in (*pod.get("initContainers", []), *pod["containers"]):
            refs.update(secret_refs(container) if "env" in container else {})
    assert profile().gateway.auth.api_keys_env in refs and "HF_TOKEN" in refs
    for name, ref in refs.items():
        assert ref["optional"] is False and ref["key"] == name, name


def test_gateway_upstream_is_the_rayservice_serve_service():
    m = manifests()
    command = m["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    upstream = command[command.index("--upstream") + 1]
    # KubeRay names the RayService's stable Serve Service "<name>-serve-svc", port 8000.
    assert upstream == f"http://{m['RayService']['metadata']['name']}-serve-svc:8000"


def test_rayservice_has_the_fields_the_project_relies_on():
    rs = manifests()["RayService"]
    assert (rs["apiVersion"], rs["kind"]) == ("ray.io/v1", "RayService")
    cluster = rs["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # replicas only on GPU workers
    assert head["rayStartParams"]["metrics-export-port"] == "8080"
    ports = {p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert ports["serve"] == 8000 and ports["metrics"] == 8080
    (workers,) = cluster["workerGroupSpecs"]
    container = workers["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == 8080
    assert cluster["enableInTreeAutoscaling"] is True
    auto = profile().topology.autoscaling
    assert workers["minReplicas"] <= auto.min_replicas and workers["maxReplicas"] >= auto.max_replicas


def test_rayservice_app_is_the_profile_translated():
    serve_config = yaml.safe_load(manifests()["RayService"]["spec"]["serveConfigV2"])
    (app,) = serve_config["applications"]
    assert app["import_path"] == BUILDER
    assert app == serve_application(profile(), cpu=False)  # GPU placement: no accelerator_config


def test_networkpolicy_guards_the_ray_pods():
    m = manifests()
    policy = m["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"ray.io/cluster": m["RayService"]["metadata"]["name"]}
    gateway_rule = policy["ingress"][1]
    assert gateway_rule["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "medgemma-gateway"
    }
    assert gateway_rule["ports"] == [{"protocol": "TCP", "port": 8000}]


def test_prometheus_scrapes_gateways_and_ray_pods_by_the_manifests_labels():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "kubernetes.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    keep = {
        name: {r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
        for name, job in jobs.items()
    }
    m = manifests()
    assert keep["medgemma-gateway"] == {"medgemma-gateway", "http"}
    assert keep["medgemma-ray"] == {m["RayService"]["metadata"]["name"], "metrics"}
    gw_ports = m["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert gw_ports[0]["name"] == "http"


def test_the_pod_grace_period_and_probe_fit_the_gateway_drain():
    """Kubernetes must not SIGKILL a draining gateway, and must see the drain before the port closes."""
    drain = profile().gateway.drain
    spec = manifests()["Deployment"]["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= drain.delay_s + drain.deadline_s + 10
    probe = spec["containers"][0]["readinessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] < drain.delay_s
