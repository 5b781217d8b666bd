"""The pure builder of the `vllm serve` command line from a profile, and the checks that refuse bad profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serve.config import Profile

ENGINE_HOST = "127.0.0.1"  # vLLM's --api-key guards only /v1 routes: it must never leave loopback.
HALF_PRECISION = frozenset({"float16", "half", "fp16"})
# Set from our own keys (model/engine sections); a copy in `vllm:` would silently fight them.
RESERVED_FLAGS = frozenset({"model", "host", "port", "served-model-name", "api-key"})
# Set from `topology:`; one place says how many engines run.
TOPOLOGY_FLAGS = frozenset({"data-parallel-size", "api-server-count"})
# Request logging would write prompt text (medical data) into the engine's log.
FORBIDDEN_FLAGS = frozenset({"enable-log-requests", "enable-log-outputs"})
# vLLM fetches remote image URLs itself (the gateway only checks them). It gets the gateway's allow-list, read
# by its own URL parser (a second check against parser confusion), and follows no redirects: an allow-listed
# host could otherwise send it anywhere, the LAN included. With no host listed, a name that cannot exist
# (RFC 2606 .invalid): vLLM treats an empty list as "any host".
MEDIA_FLAG = "allowed-media-domains"
NO_REMOTE_MEDIA = "remote-images-refused.invalid"
ENGINE_ENV = {"VLLM_MEDIA_URL_ALLOW_REDIRECTS": "0"}
# Flags naming a Python file this repository ships (e.g. the reasoning parser plugin): a profile gives it relative
# to the repository root and vLLM gets it absolute, so a clone works from any path and vLLM from any directory. A
# value not ending in .py is a module name and passes unchanged.
REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_FILE_FLAGS = frozenset({"reasoning-parser-plugin"})


class ProfileError(ValueError):
    """A profile the launcher refuses to run, with the reason a person can act on."""


def check_profile(profile: Profile) -> None:
    flags = profile.vllm
    for name in sorted(RESERVED_FLAGS & flags.keys()):
        raise ProfileError(f"vllm.{name} is set by the launcher; use the model/engine sections instead")
    for name in sorted(TOPOLOGY_FLAGS & flags.keys()):
        raise ProfileError(f"vllm.{name} is set from the topology section (kind: data-parallel, size: N)")
    if MEDIA_FLAG in flags:
        raise ProfileError(f"vllm.{MEDIA_FLAG} is set from gateway.images.remote_hosts")
    for name in sorted(FORBIDDEN_FLAGS & flags.keys()):
        raise ProfileError(f"vllm.{name} would log prompt text (medical data); it is not allowed")
    for name in sorted(REPO_FILE_FLAGS & flags.keys()):
        path = repo_file(flags[name])
        if path.endswith(".py") and not Path(path).is_file():
            # vLLM only logs a plugin it cannot load, then refuses the parser's name as unknown
            raise ProfileError(f"vllm.{name}: {path} does not exist")
    dtype = str(flags.get("dtype", "auto")).lower()
    if profile.model.family == "gemma3" and dtype in HALF_PRECISION:
        raise ProfileError(
            f"vllm.dtype={dtype!r}: Gemma 3 (and so MedGemma) overflows in float16 and produces NaN or "
            "empty output; use 'bfloat16' (or 'float32' on GPUs without bf16)"
        )


def vllm_command(profile: Profile, *, model: str | None = None, executable: str = "vllm") -> list[str]:
    """`vllm serve` argv for a profile; `model` overrides the profile's source (e.g. a built demo path)."""
    check_profile(profile)
    argv = [
        executable,
        "serve",
        model or profile.model.source,
        "--host",
        ENGINE_HOST,
        "--port",
        str(profile.engine.port),
        "--served-model-name",
        profile.model.served_name,
    ]
    argv += topology_flags(profile)
    argv += render_flag(MEDIA_FLAG, media_domains(profile))
    for name, value in vllm_flags(profile).items():
        argv += render_flag(name, value)
    return argv


def vllm_flags(profile: Profile) -> dict[str, Any]:
    """The profile's `vllm:` section as vLLM gets it: the repository's files as absolute paths."""
    return {
        name: repo_file(value) if name in REPO_FILE_FLAGS else value for name, value in profile.vllm.items()
    }


def repo_file(value: Any) -> str:
    value = str(value)
    if not value.endswith(".py") or Path(value).is_absolute():
        return value
    return str(REPO_ROOT / value)


def media_domains(profile: Profile) -> list[str]:
    """The hosts vLLM may fetch images from: the gateway's allow-list, or none at all."""
    return list(profile.gateway.images.remote_hosts) or [NO_REMOTE_MEDIA]


def engine_env(profile: Profile) -> dict[str, str]:
    """The engine's environment on top of the launcher's: the profile's, then ours (no media redirects)."""
    return {**profile.engine.env, **ENGINE_ENV}


def topology_flags(profile: Profile) -> list[str]:
    """Data parallel: N engine cores behind one server; one API server, not vLLM's default of one per rank
    (measured: -3.3 GB on the CPU demo, the same split of requests)."""
    topology = profile.topology
    if topology.kind != "data-parallel":
        return []
    return ["--data-parallel-size", str(topology.size), "--api-server-count", "1"]


def render_flag(name: str, value: Any) -> list[str]:
    """One long-form flag: booleans as --x / --no-x, mappings as JSON, lists as several values."""
    flag = f"--{name}"
    if value is True:
        return [flag]
    if value is False:
        return [f"--no-{name}"]
    if value is None:
        return []
    if isinstance(value, dict):
        return [flag, json.dumps(value, separators=(",", ":"), sort_keys=True)]
    if isinstance(value, list | tuple):
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]
