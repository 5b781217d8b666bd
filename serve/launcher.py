"""The launcher's decisions (which profile, which model path, may it start) and the engine's run loop."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from serve import terms
from serve.config import Profile
from serve.config.redact import redact_argv
from serve.engine.command import ENGINE_HOST, engine_env, vllm_command
from serve.engine.supervisor import Supervisor

log = logging.getLogger("serve.launcher")

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEMO_PREFIX = "demo:"
ACCEPT_ENV = "HAI_DEF_TERMS_ACCEPTED"


class TermsNotAccepted(RuntimeError):
    """The operator has not accepted the HAI-DEF terms this profile's model is governed by."""


class Backend(Protocol):
    """What make_backend() gives: a Supervisor or a RayBackend."""

    state: str

    async def start(self) -> float: ...

    async def wait(self) -> None: ...

    async def stop(self) -> None: ...


def has_nvidia_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True, check=False).returncode == 0


def default_profile(gpu: bool | None = None) -> Path:
    """MedGemma 1.5 4B where a GPU answers, else the tiny CPU demo."""
    gpu = has_nvidia_gpu() if gpu is None else gpu
    return CONFIGS / ("medgemma-1.5-4b-it.yaml" if gpu else "cpu-demo.yaml")


def check_operator_terms(profile: Profile, accepted: str | None) -> None:
    """Refuse a HAI-DEF model until the operator names the current terms version (flag or environment)."""
    if profile.model.license != "hai-def":
        return
    version = profile.gateway.terms.version
    if accepted != version:
        said = f" (got {accepted!r})" if accepted else ""
        raise TermsNotAccepted(f"HAI-DEF terms not accepted{said}.\n{terms.operator_notice(version)}")


def accepted_terms(flag: str | None) -> str | None:
    return flag or os.environ.get(ACCEPT_ENV) or None


def resolve_model(profile: Profile, cache_dir: Path) -> str:
    """The path or id vLLM loads: a demo source is built (once, cached) by the checkpoint builder."""
    source = profile.model.source
    if not source.startswith(DEMO_PREFIX):
        return source
    from serve.engine.demo_checkpoint import ensure_checkpoint  # heavy (torch): only for demo profiles

    return str(ensure_checkpoint(cache_dir, variant=source.removeprefix(DEMO_PREFIX)))


def engine_url(profile: Profile) -> str:
    return f"http://{ENGINE_HOST}:{profile.engine.port}"


def make_supervisor(profile: Profile, model: str, *, vllm: str = "vllm", echo: bool = True) -> Supervisor:
    argv = vllm_command(profile, model=model, executable=vllm)
    log.info("engine command: %s", " ".join(redact_argv(argv)))  # vLLM flags may carry secrets
    return Supervisor(
        argv, engine_url(profile) + "/health", profile.engine, env=engine_env(profile), echo=echo
    )


def make_backend(profile: Profile, model: str, *, vllm: str = "vllm", echo: bool = True) -> Backend:
    """The engines a profile's topology asks for: one supervised `vllm serve` (single or data-parallel ranks
    behind it) or a Ray Serve LLM app; both start(), wait(), stop() and carry a state."""
    if profile.topology.kind != "ray":
        return make_supervisor(profile, model, vllm=vllm, echo=echo)
    from serve.scaleout.ray_backend import RayBackend  # Ray only where a profile asks for it

    return RayBackend(profile, model, cpu=not has_nvidia_gpu())


def vllm_executable() -> str:
    """The vllm CLI next to this interpreter (the project venv), else whatever PATH has."""
    beside = Path(sys.executable).parent / "vllm"
    return str(beside) if beside.exists() else "vllm"


async def wait_for_stop(stop: asyncio.Event, supervisor: Backend) -> None:
    """Block until Ctrl-C/SIGTERM sets `stop` or the supervisor gives up on the engine."""
    watcher = asyncio.create_task(supervisor.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if supervisor.state == "failed":
        raise RuntimeError("the engine kept crashing; see its last lines above")
    if watcher.done() and not watcher.cancelled() and watcher.exception() is not None:
        raise RuntimeError(f"engine supervision failed: {watcher.exception()!r}")
