"""Studies from a PACS, measured (not a test). Orthanc on loopback (testkit/orthanc.py) holds generated CT series.

    python -m benchmarks.pacs [--rounds 5] [--skip-engine] [--out bench-results]
    flock /tmp/engine.lock python -m benchmarks.pacs      # the engine part starts a CPU engine

1. Retrieval concurrency: 300 instances of 512x512 16-bit CT fetched with the gateway's WADO-RS client at 1, 4
   and 16 requests in flight (no engine).
2. An 85-slice 512x512 series by reference vs the same series inline as data URLs through `python -m serve up`
   (CPU demo engine): client bytes, the gateway's own time (retrieval + preprocessing), TTFT; interleaved.
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
from benchmarks.pacs import fetch, reference
from testkit import orthanc
from testkit.ct_series import ct_series
from testkit.pacs_studies import with_canary


def markdown(result: dict[str, Any]) -> str:
    lines: list[str] = []
    if "fetch" in result:
        f = result["fetch"]
        lines += [
            f"Fetch {f['instances']} instances ({f['mb']:.0f} MB), median of {f['rounds']} rounds:",
            "",
            "| requests in flight | wall s | instances/s | MB/s |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['parallel']} | {r['wall_s_median']:.2f} | {r['instances_per_s']:.0f} | {r['mb_per_s']:.0f} |"
            for r in f["runs"]
        ]
        lines.append("")
    if "reference" in result:
        r = result["reference"]
        lines += [
            f"{r['slices']} slices, {r['rounds']} interleaved rounds (medians):",
            "",
            "| sent as | client bytes | gateway ms | TTFT s |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {a['client_bytes']:,} | {a['gateway_ms_median']:.0f} | {a['ttft_s_median']:.2f} |"
            for name, a in r["arms"].items()
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--slices", type=int, default=85)
    parser.add_argument("--parallel", default="1,4,16")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--skip-fetch", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine_info()}
    with tempfile.TemporaryDirectory() as work:
        pacs = orthanc.start(Path(work) / "orthanc")
        try:
            if not args.skip_fetch:
                objects, series, instances = with_canary(ct_series(args.instances, 512, seed=3).objects)
                pacs.store(objects)
                del objects
                parallel = tuple(int(p) for p in args.parallel.split(","))
                result["fetch"] = fetch.run(pacs, series, instances, parallel, args.rounds)
                print(markdown(result), flush=True)
            if not args.skip_engine:
                objects, series, _ = with_canary(ct_series(args.slices, 512, seed=4).objects)
                pacs.store(objects)
                result["reference"] = reference.run(
                    Path(work), pacs.dicomweb_url, series, objects, args.rounds
                )
                print(markdown(result))
        finally:
            pacs.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"pacs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0
