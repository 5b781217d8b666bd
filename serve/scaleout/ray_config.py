"""The pure translation of a profile into a Ray Serve LLM application (the `ray.serve.llm` LLMConfig)."""

from __future__ import annotations

from typing import Any

from serve.config import Profile
from serve.engine.command import check_profile, engine_env, media_domains, vllm_flags

BUILDER = "ray.serve.llm:build_openai_app"
# vLLM flags that only mean something to the `vllm serve` HTTP front end, not to the engine Ray builds. The
# reasoning-parser plugin is imported by `vllm serve`'s CLI, which Ray's replicas never run ("Reasoning parser
# 'medgemma' not found" from Ray 2.60's LLMServer), and the tool-call flags are the same front end's: under Ray the
# thought is not split and a named tool_choice answers with its JSON as content (README, "Thinking").
FRONTEND_ONLY = frozenset(
    {
        "uvicorn-log-level",
        "disable-uvicorn-access-log",
        "disable-log-stats",
        "reasoning-parser-plugin",
        "reasoning-parser",
        "enable-auto-tool-choice",
        "tool-call-parser",
    }
)


def engine_kwargs(profile: Profile) -> dict[str, Any]:
    """The profile's vllm section as vLLM engine arguments: the same names with underscores."""
    kwargs = {
        name.replace("-", "_"): value
        for name, value in vllm_flags(profile).items()  # the repository's files as absolute paths
        if name not in FRONTEND_ONLY and value is not None
    }
    return {**kwargs, "allowed_media_domains": media_domains(profile)}  # see serve/engine/command.py


def deployment_config(profile: Profile) -> dict[str, Any]:
    topology = profile.topology
    auto = topology.autoscaling
    if auto is None:
        return {"num_replicas": topology.replicas}
    return {
        "autoscaling_config": {
            "min_replicas": auto.min_replicas,
            "max_replicas": auto.max_replicas,
            "target_ongoing_requests": auto.target_ongoing_requests,
        }
    }


def llm_config(profile: Profile, *, model: str | None = None, cpu: bool) -> dict[str, Any]:
    """Keyword arguments for `ray.serve.llm.LLMConfig`; `model` overrides the source (a built demo path).

    On CPU the placement is `accelerator_config={"kind": "cpu"}` (never also accelerator_type); on GPUs
    Ray's default places one GPU per replica (tensor-parallel-size GPUs with it set).
    """
    check_profile(profile)
    config: dict[str, Any] = {
        "model_loading_config": {
            "model_id": profile.model.served_name,
            "model_source": model or profile.model.source,
        },
        "engine_kwargs": engine_kwargs(profile),
        "deployment_config": deployment_config(profile),
        "runtime_env": {"env_vars": engine_env(profile)},
    }
    if cpu:
        config["accelerator_config"] = {"kind": "cpu"}
    return config


def serve_application(profile: Profile, *, model: str | None = None, cpu: bool) -> dict[str, Any]:
    """One entry of a Serve config file's `applications` (KubeRay's serveConfigV2 holds the same shape)."""
    return {
        "name": profile.topology.ray.app_name,
        "route_prefix": "/",
        "import_path": BUILDER,
        "args": {"llm_configs": [llm_config(profile, model=model, cpu=cpu)]},
    }
