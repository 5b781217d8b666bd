"""LiteLLM proxy set up as a gateway equivalent to ours, for the capacity comparison (its own venv, never ours).

Same upstream, the same disclaimer merged into the system turn by a pre-call hook, the same acknowledgement
header checked, one prometheus_client histogram observed per request.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from serve.terms import ACK_HEADER, TERMS_VERSION

VENV = Path(".venv-litellm")
LITELLM_VERSION = "1.108.7"  # the version BENCHMARKS.md's capacity figures were measured with
PACKAGES = (f"litellm[proxy]=={LITELLM_VERSION}", "prometheus-client")
SCRIPTS = ("litellm", "pip")  # console scripts whose shebangs must name this venv's python
HOOK_MODULE = "disclaimer_hook"

HOOK = '''"""Pre-call hook for the capacity comparison: written by benchmarks/capacity/litellm_proxy.py."""

import time

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger
from prometheus_client import Histogram

DISCLAIMER = {disclaimer!r}
ACK_HEADER = {ack_header!r}
VERSION = {version!r}
HOOK_SECONDS = Histogram("bench_hook_seconds", "time in the pre-call hook",
                         buckets=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1))


def merge_system(messages, disclaimer):
    if messages and messages[0].get("role") in ("system", "developer"):
        own = messages[0].get("content")
        if isinstance(own, list):
            own = "\\n\\n".join(p.get("text", "") for p in own if isinstance(p, dict))
        merged = disclaimer + "\\n\\n" + own if own else disclaimer
        return [{{**messages[0], "role": "system", "content": merged}}, *messages[1:]]
    return [{{"role": "system", "content": disclaimer}}, *messages]


class DisclaimerHook(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        t0 = time.perf_counter()
        headers = (data.get("proxy_server_request") or {{}}).get("headers") or {{}}
        given = {{k.lower(): v for k, v in headers.items()}}.get(ACK_HEADER.lower())
        if given != VERSION:
            raise HTTPException(status_code=403, detail="acknowledge the HAI-DEF terms")
        if isinstance(data.get("messages"), list):
            data["messages"] = merge_system(data["messages"], DISCLAIMER)
        HOOK_SECONDS.observe(time.perf_counter() - t0)
        return data


proxy_handler_instance = DisclaimerHook()
'''


def hook_source(disclaimer: str) -> str:
    return HOOK.format(disclaimer=disclaimer, ack_header=ACK_HEADER, version=TERMS_VERSION)


def config(model: str, upstream: str) -> dict:
    """config.yaml: the fake upstream as an OpenAI-compatible provider, our hook, no retries, no database."""
    return {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": upstream + "/v1",
                    "api_key": "none",
                },
            }
        ],
        "litellm_settings": {
            "callbacks": f"{HOOK_MODULE}.proxy_handler_instance",
            "num_retries": 0,
            "request_timeout": 300,
            "telemetry": False,
        },
        # No keys, like our gateway in local mode (loopback only): LiteLLM refuses that unless told.
        "general_settings": {"disable_spend_logs": True, "dangerously_permit_weak_or_unset_master_key": True},
    }


def write_setup(directory: Path, model: str, upstream: str, disclaimer: str) -> Path:
    """The config and the hook module side by side (LiteLLM finds the hook next to its config)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{HOOK_MODULE}.py").write_text(hook_source(disclaimer))
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config(model, upstream), sort_keys=False))
    return path


def command(venv: Path, config_path: Path, port: int) -> list[str]:
    # One uvicorn worker: the comparison is per core.
    exe = str(venv / "bin" / "litellm")
    return [
        exe,
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


# Offline and quiet: no cost-map download at start, no telemetry, errors only in the log.
ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
READY_PATH = "/health/liveliness"


def shebang_python(script: Path) -> str | None:
    """The interpreter a console script runs: `#!/path/python`, or, where that path is too long or has spaces,
    the one in pip's `#!/bin/sh` form, whose second line execs it."""
    try:
        lines = script.read_bytes()[:4096].decode(errors="replace").splitlines()
    except OSError:
        return None
    if not lines or not lines[0].startswith("#!"):
        return None
    words = lines[0][2:].split()
    if words == ["/bin/sh"] and len(lines) > 1 and lines[1].startswith("'''exec'"):
        words = shlex.split(lines[1])[1:]
    return words[0] if words else None


def venv_problem(venv: Path) -> str | None:
    """Why `venv` cannot run LiteLLM from where it is now, or None when it can.

    A venv copied or moved from another path (a clone elsewhere) keeps that path in pyvenv.cfg's `command` and
    in its scripts' shebangs, so `bin/litellm` would run another interpreter or none; a half-made one lacks
    LiteLLM. Either way it is recreated, never patched.
    """
    here = venv.resolve()
    cfg = venv / "pyvenv.cfg"
    if not cfg.is_file():
        return "not a virtualenv (no pyvenv.cfg)"
    for line in cfg.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        # `python -m venv` records `command = <python> -m venv [options] <absolute venv path>` (3.11+)
        value = value.strip()
        if key.strip() == "command" and not value.endswith((f" {here}", f" {venv.absolute()}")):
            return f"made for another path (pyvenv.cfg: command = {value})"
    for name in SCRIPTS:
        interpreter = shebang_python(venv / "bin" / name)
        if interpreter is None:
            return f"no bin/{name} script"
        if Path(interpreter).parent.resolve() != here / "bin":
            return f"bin/{name} runs {interpreter}, not this venv's python"
    try:
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import litellm"],
            check=True,
            capture_output=True,
            env={**os.environ, **ENV},
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError):
        return "bin/python cannot import litellm"
    return None


def recreate(venv: Path) -> None:
    """A new venv at `venv` (whatever was there removed) with the pinned LiteLLM, installed by its own python."""
    if venv.is_symlink() or (venv.is_dir() and not (venv / "pyvenv.cfg").exists() and any(venv.iterdir())):
        raise RuntimeError(
            f"{venv} is not a virtualenv; not deleting it (move it away or pass --litellm-venv)"
        )
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)


def ensure_installed(venv: Path = VENV, *, install: bool = True) -> str:
    """LiteLLM's version in its own venv, (re)creating the venv first if it is not usable here and that is allowed."""
    problem = venv_problem(venv)
    if problem is not None:
        if not install:
            raise RuntimeError(
                f"{venv} cannot run LiteLLM ({problem}); run without --no-install or pass --skip-litellm"
            )
        print(f"[bench-capacity] {venv}: {problem}; recreating it with {PACKAGES[0]}", file=sys.stderr)
        recreate(venv)
        problem = venv_problem(venv)
        if problem is not None:
            raise RuntimeError(f"LiteLLM was installed into {venv} but it is still not usable: {problem}")
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
