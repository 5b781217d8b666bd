"""Volume preprocessing benchmark (not a test): what expanding a CT series costs the gateway.

    python -m benchmarks.volumes [--rounds 5] [--out bench-results] [--skip-memory]

1. CPU per slice and wall time for an 85-slice 512x512 16-bit CT at MedGemma's 896, with 1 and 2 image workers,
   on the gateway's own code (parse, both phases in real worker processes, the forwarded body); the target is
   <= 3 ms CPU per slice and wall within 1.25x of CPU / workers. Then the breakdown of one slice's steps.
2. Peak RSS of a gateway process (workers included) with 8 concurrent 300-slice requests against the fake engine.
Writes JSON and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.core.report import machine_info
from benchmarks.volumes import cost, memory


def markdown(result: dict[str, Any]) -> str:
    lines: list[str] = []
    if "cost" in result:
        lines += cost_table(result["cost"])
    if "memory" in result:
        lines += memory_table(result["memory"])
    return "\n".join(lines)


def cost_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| slice format | workers | slices | wall ms | CPU ms/slice | main ms/slice | workers ms/slice "
        "| wall / (CPU/workers) | body receipt ms/slice |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r.get('slice_format', 'jpeg')} | {r['workers']} | {r['slices']} | {r['wall_ms']:.0f} | {r['cpu_ms_per_slice']:.2f} | "
            f"{r['main_ms_per_slice']:.2f} | {r['worker_ms_per_slice']:.2f} | {r['wall_over_cpu_per_worker']:.2f} "
            f"| {r.get('receipt_ms_per_slice', 0.0):.2f} |"
        )
    lines += ["", "| step (one slice) | CPU ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in result["breakdown"].items()]
    return [*lines, ""]


def memory_table(m: dict[str, Any]) -> list[str]:
    return [
        "| requests x slices | body MB | final statuses | retried refusals | idle RSS MiB | peak main RSS MiB "
        "| peak with workers MiB | wall s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
        f"| {m['requests']} x {m['slices']} | {m['body_mb']:.0f} | {m['statuses']} | "
        f"{m['refusals_before_admission']} | {m['idle_rss_mb']:.0f} | "
        f"{m['peak_main_rss_mb']:.0f} | {m['peak_total_rss_mb']:.0f} | {m['wall_s']:.1f} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slices", type=int, default=85)
    parser.add_argument("--size", type=int, default=896, help="the model's input size")
    parser.add_argument("--requests", type=int, default=8, help="concurrent requests in the memory run")
    parser.add_argument("--memory-slices", type=int, default=300)
    parser.add_argument(
        "--slice-formats", default="jpeg,bmp", help="images.volumes.slice_format values to run"
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine_info()}
    if not args.skip_cost:
        result["cost"] = cost.run(
            args.slices, args.size, args.rounds, (1, 2), tuple(args.slice_formats.split(","))
        )
        print(markdown(result), flush=True)
    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as work:
            result["memory"] = memory.run(Path(work), args.requests, args.memory_slices, args.size)
        print(markdown(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"volumes-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0
