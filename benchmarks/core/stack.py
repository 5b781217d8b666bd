"""The whole stack for a benchmark, as `make serve` runs it (`python -m serve up`: engine and gateway): a profile of
the run's own (engine port, acknowledgement store), the gateway on port 0 with its port read back from its log."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.core import procs

ROOT = Path(__file__).resolve().parents[2]
DEMO_PROFILE = ROOT / "configs" / "cpu-demo.yaml"
START_TIMEOUT_S = 900.0  # a CPU engine's cold start, on a machine another engine may share


@dataclass
class Stack:
    child: procs.Child  # its log (child.log) holds the gateway's access log lines too
    gateway_url: str
    engine_url: str
    profile: Path
    model: str


def demo_profile() -> dict[str, Any]:
    """configs/cpu-demo.yaml as a dict, for a benchmark to adjust before start()."""
    return yaml.safe_load(DEMO_PROFILE.read_text())


def stack_profile(raw: dict[str, Any], work: Path, engine_port: int) -> dict[str, Any]:
    """`raw` with the engine on `engine_port`, the gateway on port 0 and its acknowledgement store in `work`."""
    raw = copy.deepcopy(raw)
    raw["engine"]["port"] = engine_port
    gateway = raw.setdefault("gateway", {})
    gateway["port"] = 0  # the gateway binds a free port itself and logs it
    gateway.setdefault("terms", {})["database"] = str(work / "acks.sqlite3")
    return raw


def start(work: Path, raw: dict[str, Any] | None = None, *, timeout_s: float = START_TIMEOUT_S) -> Stack:
    """`python -m serve up` on `raw` (default: the CPU demo profile), ready once the gateway's /health answers;
    a stack that does not come up is stopped before the error is raised."""
    work.mkdir(parents=True, exist_ok=True)
    # The engine's port is still picked here: engine.port must be 1-65535 (vLLM is started with --port and the
    # gateway is told where to proxy before vLLM binds), so `serve up` cannot take 0 for it.
    raw = stack_profile(raw if raw is not None else demo_profile(), work, procs.free_port())
    path = work / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "serve", "up", "--profile", str(path)]
    cmd += ["--cache-dir", str(ROOT / ".cache" / "checkpoints")]
    child = procs.start("stack", cmd, cpu=None, log_dir=work)
    try:
        # The gateway starts once the engine is healthy: its port line comes after the engine's cold start.
        url = f"http://127.0.0.1:{procs.wait_port(child, procs.GATEWAY_LISTENING, timeout_s)}"
        procs.wait_ready(child, url + "/health", timeout_s=120)
    except BaseException:
        procs.stop(child, grace_s=60)  # an engine that never answered must not stay behind
        raise
    engine_url = f"http://127.0.0.1:{raw['engine']['port']}"
    return Stack(child, url, engine_url, path, raw["model"]["served_name"])


def stop(stack: Stack) -> None:
    """SIGTERM: the gateway drains, then the engine stops (grace for both before SIGKILL)."""
    procs.stop(stack.child, grace_s=60)
