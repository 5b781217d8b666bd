"""A gateway process of our own in front of a running engine, with the concurrency caps a run needs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from benchmarks.core import procs
from serve.config import load_config

UNCAPPED = 1_000_000  # "no cap": far beyond any concurrency the load generator can reach


def gateway_profile(base: dict[str, Any], port: int, database: Path, max_concurrent: int) -> dict[str, Any]:
    """The base profile with this gateway's port, its own acknowledgement store and one cap for both limits
    (the load tester sends no key, so only the global cap applies; the per-key one must not be lower)."""
    profile = copy.deepcopy(base)
    gateway = profile.setdefault("gateway", {})
    gateway["port"] = port
    gateway.setdefault("terms", {})["database"] = str(database)
    gateway["limits"] = {"max_concurrent": max_concurrent, "max_concurrent_per_key": max_concurrent}
    return profile


def start(
    work: Path, name: str, base_profile: Path, engine_url: str, max_concurrent: int
) -> tuple[procs.Child, str]:
    """(child, base URL) once its /health answers 200; the caller stops the child with procs.stop."""
    base = yaml.safe_load(base_profile.read_text()) or {}
    profile = gateway_profile(base, 0, work / f"{name}-acks.sqlite3", max_concurrent)
    path = work / f"{name}-profile.yaml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    load_config(path)  # a bad profile fails here, naming the key, not as a gateway that never comes up
    return procs.start_gateway(name, path, engine_url, cpu=None, log_dir=work, timeout_s=60)
