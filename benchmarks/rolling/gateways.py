"""Gateway processes of a rolling restart: each on a port it chose itself (port 0, read back from its log line),
its own acknowledgement store, a drain delay the load balancer's health checks fit into."""

from __future__ import annotations

import copy
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.core import procs
from serve.config import load_config

LISTENING = re.compile(r"gateway listening on http://[0-9.]+:(\d+)")


def profile(base: dict[str, Any], database: Path, drain: dict[str, float]) -> dict[str, Any]:
    """The base profile with port 0, this gateway's own store and the drain settings given."""
    raw = copy.deepcopy(base)
    gateway = raw.setdefault("gateway", {})
    gateway["port"] = 0
    gateway.setdefault("terms", {})["database"] = str(database)
    gateway["drain"] = {**gateway.get("drain", {}), **drain}
    return raw


def port_from_log(text: str) -> int | None:
    """The port of the gateway's `gateway listening on http://HOST:PORT` line, if it has been written yet."""
    found = LISTENING.search(text)
    return int(found.group(1)) if found else None


@dataclass
class Gateway:
    child: procs.Child
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Launcher:
    """Starts numbered gateways from one base profile in front of one engine: `launch("gw1")` -> Gateway."""

    work: Path
    base: dict[str, Any]
    engine_url: str
    drain: dict[str, float]
    started: list[Gateway]  # every gateway this launcher started, for the final clean-up

    def __call__(self, slot: str) -> Gateway:
        name = f"{slot}-{len(self.started) + 1}"
        path = self.work / f"{name}.yaml"
        self.work.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(profile(self.base, self.work / f"{name}.sqlite3", self.drain)))
        load_config(path)  # a bad profile fails here, naming the key, not as a gateway that never comes up
        cmd = [
            sys.executable,
            "-m",
            "serve",
            "gateway",
            "--profile",
            str(path),
            "--upstream",
            self.engine_url,
        ]
        child = procs.start(name, cmd, cpu=None, log_dir=self.work)
        try:
            gateway = Gateway(child, wait_port(child, timeout_s=60))
            self.started.append(gateway)
            procs.wait_ready(child, gateway.url + "/health", timeout_s=60)
        except RuntimeError:
            procs.stop(child)
            raise
        return gateway

    def stop_all(self) -> None:
        for gateway in self.started:
            procs.stop(gateway.child, grace_s=30)


def launcher(work: Path, base_profile: Path, engine_url: str, drain: dict[str, float]) -> Launcher:
    return Launcher(work, yaml.safe_load(base_profile.read_text()) or {}, engine_url, drain, [])


def wait_port(child: procs.Child, timeout_s: float, sleep: Callable[[float], None] = time.sleep) -> int:
    """The port the gateway logged; a gateway that exits first fails fast with its last log lines."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        port = port_from_log(child.log.read_text(errors="replace"))
        if port is not None:
            return port
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        sleep(0.1)
    raise RuntimeError(f"{child.name} logged no port after {timeout_s:g} s:\n{child.tail()}")
