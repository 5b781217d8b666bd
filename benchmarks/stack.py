"""The processes a capacity run measures: the fake upstream on the harness core, each proxy on the proxy core."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import client, litellm_proxy, procs
from serve.terms import DISCLAIMER

MODEL = "fake-model"
DIRECT, OURS, LITELLM, BARE = "direct", "gateway", "litellm", "bare-aiohttp"


@dataclass
class Proxy:
    target: client.Target
    child: procs.Child | None  # None: the upstream itself (direct)


@dataclass
class Stack:
    """Every child is recorded as soon as it starts, so close() stops whatever a failed start left running."""

    work: Path
    proxy_cpu: int
    harness_cpu: int
    children: list[procs.Child] = field(default_factory=list)
    proxies: list[Proxy] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)
    upstream: str = ""

    def _start(self, name: str, cmd: list[str], cpu: int, env: dict[str, str] | None = None) -> procs.Child:
        child = procs.start(name, cmd, cpu=cpu if cpu >= 0 else None, log_dir=self.work, env=env)
        self.children.append(child)
        return child

    def start_upstream(
        self, chunks: int, gap_ms: float, module: str = "benchmarks.fast_upstream"
    ) -> procs.Child:
        port = procs.free_port()
        self.upstream = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", module, "--port", str(port), "--chunks", str(chunks),
               "--gap-ms", str(gap_ms), "--model", MODEL]  # fmt: skip
        fake = self._start("fake_upstream", cmd, self.harness_cpu)
        procs.wait_ready(fake, self.upstream + "/health")
        self.proxies.append(Proxy(client.Target(DIRECT, self.upstream), None))
        return fake

    def start_gateway(self) -> None:
        port = procs.free_port()
        cmd = [sys.executable, "-m", "serve", "gateway", "--profile", str(self._profile(port)),
               "--upstream", self.upstream]  # fmt: skip
        child = self._start(OURS, cmd, self.proxy_cpu)
        target = client.Target(OURS, f"http://127.0.0.1:{port}", expect_disclaimer=True)
        procs.wait_ready(child, target.base_url + "/health")
        self.proxies.append(Proxy(target, child))

    def start_bare(self) -> None:
        """The thinnest aiohttp proxy, the floor for ours (benchmarks/bare_proxy.py)."""
        port = procs.free_port()
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.bare_proxy",
            "--port",
            str(port),
            "--upstream",
            self.upstream,
        ]
        child = self._start(BARE, cmd, self.proxy_cpu)
        target = client.Target(BARE, f"http://127.0.0.1:{port}")
        procs.wait_ready(child, target.base_url + "/health")
        self.proxies.append(Proxy(target, child))

    def _profile(self, port: int) -> Path:
        path = self.work / "gateway-profile.yaml"
        profile = {"name": "capacity", "model": {"source": "none", "served_name": MODEL, "license": "none"},
                   "gateway": {"port": port, "terms": {"database": str(self.work / "acks.sqlite3")}}}  # fmt: skip
        path.write_text(yaml.safe_dump(profile))
        return path

    def start_litellm(self, venv: Path, install: bool) -> None:
        self.versions["litellm"] = litellm_proxy.ensure_installed(venv, install=install)
        port = procs.free_port()
        config = litellm_proxy.write_setup(self.work / "litellm", MODEL, self.upstream, DISCLAIMER)
        cmd = litellm_proxy.command(venv, config, port)
        child = self._start(LITELLM, cmd, self.proxy_cpu, env=litellm_proxy.ENV)
        url = f"http://127.0.0.1:{port}"
        procs.wait_ready(child, url + litellm_proxy.READY_PATH, timeout_s=240)
        self.proxies.append(Proxy(client.Target(LITELLM, url), child))

    def close(self) -> None:
        for child in reversed(self.children):
            procs.stop(child)
