"""The `ray` topology's engine side: start or join Ray, deploy the profile's Ray Serve LLM app, report each
replica's state, and stop what it started. Same surface as the Supervisor (start, wait, stop, state)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from serve.config import Profile
from serve.scaleout.ray_config import llm_config

if TYPE_CHECKING:
    import psutil

log = logging.getLogger("serve.ray")

OBJECT_STORE_BYTES = 512 * 1024**2  # a local head: LLM traffic goes over HTTP, not the object store
POLL_S = 2.0


def local_cpus(profile: Profile) -> int:
    """Logical CPUs for a local head: each replica holds a few actors (server, ingress) needing one each.
    Ray's CPUs are a scheduling count, not a pin: vLLM places its own threads."""
    topology = profile.topology
    most = topology.autoscaling.max_replicas if topology.autoscaling else topology.replicas
    return max(os.cpu_count() or 1, 2 + 2 * most)


def replica_summary(status: Any, app_name: str) -> list[dict[str, Any]]:
    """Per deployment, how many replicas are in each state (RUNNING, STARTING, UNHEALTHY, ...)."""
    app = status.applications.get(app_name)
    if app is None:
        return []
    return [
        {
            "deployment": name,
            "status": _name(dep.status),
            "replicas": {_name(k): v for k, v in dep.replica_states.items()},
        }
        for name, dep in app.deployments.items()
    ]


def _name(state: Any) -> str:
    """Ray 2.60 gives statuses as enums but replica states as plain strings; either reads as its name."""
    return str(getattr(state, "value", state))


def running_llm_replicas(summary: list[dict[str, Any]]) -> int:
    """RUNNING replicas of the model deployment (the ingress router is not a model replica)."""
    return sum(d["replicas"].get("RUNNING", 0) for d in summary if "LLMServer" in d["deployment"])


class RayBackend:
    def __init__(self, profile: Profile, model: str, *, cpu: bool) -> None:
        self.profile, self.model, self.cpu = profile, model, cpu
        self.settings = profile.topology.ray
        self.state = "stopped"
        self._started_ray = False
        self._stopped = asyncio.Event()

    async def start(self) -> float:
        self.state = "starting"
        began = time.monotonic()
        deploy = asyncio.create_task(asyncio.to_thread(self._deploy))
        while not deploy.done():
            await asyncio.wait({deploy}, timeout=10.0)
            if not deploy.done():
                log.info("still waiting for the Ray Serve app (%.0f s)", time.monotonic() - began)
        try:
            deploy.result()
        except BaseException:
            self.state = "failed"
            await self.stop()
            raise
        self.state = "ready"
        took = time.monotonic() - began
        log.info("Ray Serve app %r ready after %.1f s: %s", self.settings.app_name, took, self.replicas())
        return took

    def _deploy(self) -> None:
        import ray
        from ray import serve
        from ray.serve.llm import LLMConfig, build_openai_app

        if self.settings.address is None:
            # "local": always a new head of our own. Without it Ray joins the cluster a past `ray start` left in
            # /tmp/ray/ray_current_cluster, even a stopped one.
            ray.init(
                address="local",
                num_cpus=local_cpus(self.profile),
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                _metrics_export_port=self.settings.metrics_port,
                configure_logging=False,
            )
            self._started_ray = True
        else:
            ray.init(address=self.settings.address, configure_logging=False)
        serve.start(http_options={"host": self.settings.host, "port": self.profile.engine.port})
        config = LLMConfig(**llm_config(self.profile, model=self.model, cpu=self.cpu))
        app = build_openai_app({"llm_configs": [config]})
        serve.run(app, name=self.settings.app_name, route_prefix="/")

    def replicas(self) -> list[dict[str, Any]]:
        from ray import serve

        try:
            return replica_summary(serve.status(), self.settings.app_name)
        except Exception as exc:  # Ray's client raises many kinds while the controller is away
            log.warning("cannot read Ray Serve status: %s", exc)
            return []

    async def backend_status(self) -> tuple[bool, list[dict[str, Any]]]:
        """(ready, per-deployment replica states) for the gateway's /health: ready while one replica runs."""
        summary = await asyncio.to_thread(self.replicas)
        return running_llm_replicas(summary) > 0, summary

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        if self.state == "stopped":
            return
        await asyncio.to_thread(self._teardown)
        self.state = "stopped"
        self._stopped.set()

    def _teardown(self) -> None:
        import ray
        from ray import serve

        if not ray.is_initialized():
            return
        with contextlib.suppress(Exception):
            serve.delete(self.settings.app_name)
        if self._started_ray:
            with contextlib.suppress(Exception):
                serve.shutdown()
        ours = _descendants()
        ray.shutdown()  # a head this process started goes with it; a joined cluster stays
        _reap(ours, grace_s=self.profile.engine.stop_grace_s)
        log.info("Ray Serve app %r stopped", self.settings.app_name)


def _descendants() -> list[psutil.Process]:
    import psutil  # vLLM's dependency, so present wherever this topology runs

    return psutil.Process().children(recursive=True)


def _reap(procs: list[psutil.Process], grace_s: float) -> None:
    """A local head's workers can outlive ray.shutdown() by seconds: wait, then kill what is left."""
    import psutil

    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
