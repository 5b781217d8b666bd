"""The report file: per-request records, summaries, the command line and the machine, as one JSON document."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.core.sweep import Run

SCHEMA = "medgemma-bench/loadtest/1"
PACKAGES = ("aiohttp", "uvloop", "vllm", "medgemma-serve")


def machine_info() -> dict[str, Any]:
    """Enough to tell two machines (or a busy one) apart when comparing reports."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def run_json(run: Run) -> dict[str, Any]:
    return {
        "target": run.target,
        "level": run.level.label,
        "mode": run.level.mode,
        "value": run.level.value,
        "round": run.round,
        "summary": run.summary,
        "records": [rec.to_json() for rec in run.result.records],
    }


def document(
    *,
    argv: list[str],
    settings: dict[str, Any],
    targets: dict[str, Any],
    runs: list[Run],
    pooled: list[dict[str, Any]],
    comparison: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": argv,
        "settings": settings,
        "machine": machine_info(),
        "targets": targets,
        "summaries": pooled,
        "comparison": comparison,
        "runs": [run_json(run) for run in runs],
    }


def stem(prefix: str = "loadtest") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_json(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # NaN is not JSON; a metric with no samples is already None in the summaries.
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return path
