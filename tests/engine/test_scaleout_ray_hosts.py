"""Scale-out tier: Ray across hosts. Three network namespaces stand in for three machines: a Ray head and a Ray
worker (one replica of the tiny checkpoint each), and a gateway host. The app is deployed from the head with the
same `serve engine` command a user runs there; the gateway runs `serve gateway` pointed at the head's Serve
port, exactly as on real hosts. Then the worker's link is cut mid-load.

~16 GB (two engines): runs last, after the session stack stopped, and removes every namespace and process.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from benchmarks.scaleout.cli import split_by_replica
from tests.engine import netns
from tests.engine.conftest import ACK_HEADERS, ROOT, Proc, _wait_ready
from tests.engine.test_scaleout_dp import stop_session_stack

pytestmark = [pytest.mark.engine, pytest.mark.scaleout]
GCS_PORT, SERVE_PORT, METRICS_PORT, GATEWAY_PORT = 6379, 8100, 8080, 8000  # each host has its own ports
RAY = str(Path(sys.executable).with_name("ray"))


def _wait_port(host: str, port: int, proc: Proc, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError("exited during start:\n" + "\n".join(proc.log))
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{host}:{port} never opened:\n" + "\n".join(proc.log))


def _wait_line(proc: Proc, text: str, within_s: float = 900) -> None:
    """The app's own process says when Serve reports its replicas running (`serve.run` returned)."""
    deadline = time.monotonic() + within_s
    while not any(text in line for line in list(proc.log)):
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} from the app:\n" + "\n".join(proc.log))
        time.sleep(1)


def _forget_cluster(address: str) -> None:
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    if current.exists() and current.read_text().strip() == address:
        current.unlink()


def _profile(tmp: Path, head: str, gateway: str) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo-ray2.yaml").read_text())
    raw["engine"]["port"] = SERVE_PORT
    # Join the cluster `ray start` made; Serve's proxy listens on every host's own address (0.0.0.0 inside a
    # host that only the private bridge reaches), the gateway calls the head's.
    raw["topology"]["ray"] = {"address": f"{head}:{GCS_PORT}", "host": "0.0.0.0"}
    raw["gateway"] = {"host": gateway, "port": GATEWAY_PORT, "terms": {"database": str(tmp / "acks.sqlite3")}}
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    pytest.importorskip("ray.serve.llm", reason="`make install-ray` installs Ray Serve (make test does)")
    if why := netns.available():
        pytest.skip(why)
    stop_session_stack(request)
    tmp = tmp_path_factory.mktemp("rayhosts")
    head = None
    try:
        with netns.hosts("head", "worker", "gateway") as hosts:
            head, worker, gw = (hosts.addresses[r] for r in ("head", "worker", "gateway"))
            profile = _profile(tmp, head, gw)
            # One replica per host: each offers the CPUs of one replica (its actor + its vLLM worker), the head
            # one more for Serve's OpenAI ingress.
            common = ["--block", "--disable-usage-stats", f"--metrics-export-port={METRICS_PORT}"]
            # Ray 2.60 authenticates its RPCs with a shared token: every Ray process of the cluster gets the same one.
            auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
            procs = {
                "head": Proc(
                    hosts.run(
                        "head",
                        [
                            RAY,
                            "start",
                            "--head",
                            f"--node-ip-address={head}",
                            f"--port={GCS_PORT}",
                            "--num-cpus=3",
                            "--include-dashboard=false",
                            *common,
                        ],
                    ),
                    auth,
                )
            }
            _wait_port(head, GCS_PORT, procs["head"])
            procs["worker"] = Proc(
                hosts.run(
                    "worker",
                    [
                        RAY,
                        "start",
                        f"--address={head}:{GCS_PORT}",
                        f"--node-ip-address={worker}",
                        "--num-cpus=2",
                        *common,
                    ],
                ),
                auth,
            )
            procs["app"] = Proc(
                hosts.run(
                    "head",
                    [
                        sys.executable,
                        "-m",
                        "serve",
                        "engine",
                        "--profile",
                        str(profile),
                        "--cache-dir",
                        str(ROOT / ".cache" / "checkpoints"),
                    ],
                ),
                auth,
            )
            procs["gateway"] = Proc(
                hosts.run(
                    "gateway",
                    [
                        sys.executable,
                        "-m",
                        "serve",
                        "gateway",
                        "--profile",
                        str(profile),
                        "--upstream",
                        f"http://{head}:{SERVE_PORT}",
                    ],
                )
            )
            url = f"http://{gw}:{GATEWAY_PORT}"
            _wait_line(procs["app"], "Engine ready")
            _wait_ready(procs["gateway"], url)
            yield hosts, url, yaml.safe_load(profile.read_text())["model"]["served_name"], procs
            for name in ("gateway", "app"):  # the app deletes its Serve application on SIGINT
                procs[name].popen.send_signal(2)
                procs[name].popen.wait(timeout=120)
    finally:
        # hosts() removed the namespaces after killing what was left in them (Ray's daemons); `ray start` also
        # recorded the head's address for later `ray.init()` calls, which must not find a cluster that is gone.
        if head is not None:
            _forget_cluster(f"{head}:{GCS_PORT}")
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert hosts.prefix not in leftover


def stream(url: str, model: str, i: int, max_tokens: int) -> dict:
    """One streamed chat: how it ended (finish reason, error code or transport error) and when."""
    body = {
        "model": model,
        "stream": True,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "messages": [{"role": "user", "content": f"Question {i}"}],
    }
    started, outcome = time.monotonic(), {"i": i}
    try:
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            json=body,
            headers=ACK_HEADERS,
            timeout=httpx.Timeout(10, read=600),
        ) as resp:
            outcome["status"] = resp.status_code
            for line in resp.iter_lines():
                if not line.startswith("data: {"):
                    continue
                frame = json.loads(line[6:])
                if "error" in frame:
                    outcome["error"] = frame["error"]
                for choice in frame.get("choices", ()):
                    outcome["finish"] = choice.get("finish_reason") or outcome.get("finish")
            if resp.status_code != 200:
                outcome["error"] = json.loads(resp.read() or b"{}").get("error")
    except httpx.HTTPError as exc:
        outcome["transport"] = type(exc).__name__
    outcome["seconds"], outcome["ended"] = time.monotonic() - started, time.monotonic()
    return outcome


def _split(hosts: netns.Hosts) -> dict[str, int]:
    """Requests finished per replica, from each host's Ray metrics port (exports run every few seconds)."""
    counts: dict[str, int] = {}
    for role in ("head", "worker"):
        text = httpx.get(f"http://{hosts.addresses[role]}:{METRICS_PORT}/metrics", timeout=30).text
        counts.update(split_by_replica(text))
    return counts


def test_traffic_through_the_gateway_reaches_a_replica_on_each_host(cluster):
    hosts, url, model, _ = cluster
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: stream(url, model, i, 8), range(16)))
    assert all(o.get("finish") == "length" and "error" not in o for o in outcomes), outcomes
    deadline, served = time.monotonic() + 60, {}
    while sum(served.values()) < 16 and time.monotonic() < deadline:
        time.sleep(2)
        served = _split(hosts)
    assert len(served) == 2 and min(served.values()) >= 1, served


def test_cutting_the_worker_fails_only_its_requests_and_new_ones_go_to_the_head(cluster):
    hosts, url, model, procs = cluster
    with ThreadPoolExecutor(8) as pool:
        held = [pool.submit(stream, url, model, i, 1000) for i in range(8)]  # long: in flight at the cut
        time.sleep(5)
        hosts.cut("worker")
        cut_at = time.monotonic()
        outcomes = [f.result() for f in held]
    ok = [o for o in outcomes if o.get("finish") == "length" and "error" not in o]
    failed = [o for o in outcomes if o not in ok]
    assert ok and failed, outcomes  # both replicas held requests: the head's finished, the worker's did not
    gateway_log = "\n".join(list(procs["gateway"].log)[-60:])  # why, if a stream was cut
    for o in failed:  # a clear error (SSE error frame or envelope), never a hang or a cut connection
        assert "transport" not in o and o["error"]["type"] == "server_error", (o, gateway_log)
    after = [stream(url, model, 100 + i, 8) for i in range(8)]
    assert all(o.get("finish") == "length" for o in after), after
    codes = sorted({o["error"]["code"] for o in failed})
    last = max(o["ended"] for o in failed) - cut_at
    print(
        f"\nworker cut: {len(ok)} streams finished, {len(failed)} failed ({codes}) within {last:.0f} s; 8/8 new served"
    )
