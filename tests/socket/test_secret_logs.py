"""`python -m serve gateway` as an operator runs it, with secrets in its profile: none of them reaches its output."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HF = "hf_canaryQ9w8E7r6T5y4"
API = "canary2-vllm-api-key"
PW = "canary3-url-password"
WAIT_S = 60  # start-up imports, image workers and a loaded 2-core machine


def test_the_gateway_logs_its_profile_without_the_secrets_in_it(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
    raw["engine"]["env"]["HF_TOKEN"] = HF
    raw["vllm"]["api-key"] = API  # refused by the launcher (`up`); the gateway alone still logs the profile
    raw["gateway"] = {
        **raw["gateway"],
        "port": 0,
        "terms": {"database": str(tmp_path / "acks.sqlite3"), "url": f"https://t:{PW}@terms.example/x"},
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    argv = [
        sys.executable,
        "-m",
        "serve",
        "gateway",
        "--profile",
        str(path),
        "--upstream",
        "http://127.0.0.1:1",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + WAIT_S
        while "Ready." not in proc.stdout.readline():  # printed once the gateway listens
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    output = out + err
    assert "profile cpu-demo:" in err and '"max-model-len": 8192' in err  # the profile line is there
    assert '"HF_TOKEN": "<redacted>"' in err and '"api-key": "<redacted>"' in err
    for canary in (HF, API, PW):
        assert canary not in output
