"""The processes a capacity run measures: the fake upstream on the harness core, each proxy on the proxy core."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.capacity import litellm_proxy
from benchmarks.core import client, procs
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

    def start_upstream(self, chunks: int, gap_ms: float, module: str = "testkit.fast_engine") -> procs.Child:
        port = procs.free_port()
        self.upstream = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            module,
            "--port",
            str(port),
            "--chunks",
            str(chunks),
            "--gap-ms",
            str(gap_ms),
            "--model",
            MODEL,
        ]
        fake = self._start("fake_upstream", cmd, self.harness_cpu)
        procs.wait_ready(fake, self.upstream + "/health")
        self.proxies.append(Proxy(client.Target(DIRECT, self.upstream), None))
        return fake

    def _start_proxy(
        self,
        name: str,
        cmd: list[str],
        port: int | None,
        *,
        ready_path: str = "/health",
        expect_disclaimer: bool = False,
        env: dict[str, str] | None = None,
        timeout_s: float = 120,
    ) -> None:
        """Start a proxy on the proxy core, wait until `ready_path` answers, and measure it from then on. `port`
        None: the proxy binds a free one and logs it (our gateway), read back from its log."""
        child = self._start(name, cmd, self.proxy_cpu, env=env)
        if port is None:
            port = procs.wait_port(child, procs.GATEWAY_LISTENING, timeout_s)
        target = client.Target(name, f"http://127.0.0.1:{port}", expect_disclaimer=expect_disclaimer)
        procs.wait_ready(child, target.base_url + ready_path, timeout_s=timeout_s)
        self.proxies.append(Proxy(target, child))

    def start_gateway(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "serve",
            "gateway",
            "--profile",
            str(self._profile(0)),
            "--upstream",
            self.upstream,
        ]
        self._start_proxy(OURS, cmd, None, expect_disclaimer=True)

    def start_bare(self) -> None:
        """A bare aiohttp.web + aiohttp-client pass-through proxy, for reference (benchmarks/capacity/bare_proxy.py)."""
        port = procs.free_port()
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.capacity.bare_proxy",
            "--port",
            str(port),
            "--upstream",
            self.upstream,
        ]
        self._start_proxy(BARE, cmd, port)

    def _profile(self, port: int) -> Path:
        path = self.work / "gateway-profile.yaml"
        profile = {
            "name": "capacity",
            "model": {"source": "none", "served_name": MODEL, "license": "none"},
            "gateway": {"port": port, "terms": {"database": str(self.work / "acks.sqlite3")}},
        }
        path.write_text(yaml.safe_dump(profile))
        return path

    def start_litellm(self, venv: Path, install: bool) -> None:
        self.versions["litellm"] = litellm_proxy.ensure_installed(venv, install=install)
        port = procs.free_port()
        config = litellm_proxy.write_setup(self.work / "litellm", MODEL, self.upstream, DISCLAIMER)
        cmd = litellm_proxy.command(venv, config, port)
        self._start_proxy(
            LITELLM, cmd, port, ready_path=litellm_proxy.READY_PATH, env=litellm_proxy.ENV, timeout_s=240
        )

    def close(self) -> None:
        for child in reversed(self.children):
            procs.stop(child)
