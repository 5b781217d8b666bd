"""`python -m benchmarks.capacity`: our gateway's capacity on one core against LiteLLM proxy's, same harness.

The fake upstream and this load generator share the harness core; each proxy runs alone on the other core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown

from benchmarks.capacity import litellm_proxy
from benchmarks.capacity import report as cr
from benchmarks.capacity.measure import Measure, run_all
from benchmarks.capacity.stack import Stack
from benchmarks.core import report
from benchmarks.core.aio import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__)
    p.add_argument("--skip-litellm", action="store_true", help="leave LiteLLM proxy out")
    p.add_argument("--skip-bare", action="store_true", help="leave out the bare aiohttp proxy")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing LiteLLM")
    p.add_argument("--litellm-venv", type=Path, default=litellm_proxy.VENV)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=15.0, help="seconds per high-concurrency measurement")
    p.add_argument("--latency-duration", type=float, default=10.0, help="seconds per c=1 measurement")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before each measurement, not counted")
    p.add_argument("--rounds", type=int, default=1, help="repeat the interleaved measurements")
    p.add_argument("--chunks", type=int, default=16, help="content chunks per stream")
    p.add_argument("--gap-ms", type=float, default=5.0, help="between stream chunks")
    p.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="load generator HTTP client (raw: ~0.05 ms CPU per request; aiohttp: ~0.2 ms)",
    )
    p.add_argument(
        "--upstream",
        choices=("fast", "aiohttp"),
        default="fast",
        help="fake upstream: testkit/fast_engine.py (bare asyncio) or testkit/fake_engine.py (aiohttp.web)",
    )
    p.add_argument("--proxy-cpu", type=int, default=0, help="the proxy's core (-1: not pinned)")
    p.add_argument(
        "--harness-cpu", type=int, default=1, help="the upstream's and generator's core (-1: not pinned)"
    )
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    return p.parse_args(argv)


def measures(args: argparse.Namespace) -> list[Measure]:
    c, d, lat = args.concurrency, args.duration, args.latency_duration
    return [
        Measure("nonstream_high", False, c, d),
        Measure("stream_high", True, c, d),
        Measure("nonstream_c1", False, 1, lat),
        Measure("stream_c1", True, 1, lat),
    ]


def build_report(
    args: argparse.Namespace, results: dict[str, Any], versions: dict[str, Any]
) -> dict[str, Any]:
    figures = {name: cr.proxy_figures(results, name) for name in results if name != cr.DIRECT}
    ratios = cr.comparison(figures[cr.OURS], figures.get(cr.LITELLM))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    # Direct-to-upstream saturates the harness by design (nothing else slows it down); only proxies count.
    saturated = sorted(
        f"{n}/{m}"
        for n, ms in results.items()
        if n != cr.DIRECT
        for m, s in ms.items()
        if s["harness_saturated"]
    )
    return {
        "schema": "medgemma-bench/capacity/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "settings": settings,
        "machine": report.machine_info(),
        "versions": versions,
        "results": results,
        "figures": figures,
        "comparison": ratios,
        "bars": cr.bars(figures[cr.OURS]),
        "harness_saturated": saturated,
        "markdown": cr.markdown(figures, ratios, settings),
    }


def measure_stack(args: argparse.Namespace, stack: Stack, console: Console) -> dict[str, Any]:
    module = "testkit.fast_engine" if args.upstream == "fast" else "testkit.fake_engine"
    upstream = stack.start_upstream(args.chunks, args.gap_ms, module)
    stack.start_gateway()
    if not args.skip_bare:
        stack.start_bare()
    if not args.skip_litellm:
        console.print("starting LiteLLM proxy (installing it into its own venv first if needed) ...")
        stack.start_litellm(args.litellm_venv, install=not args.no_install)
    coro = run_all(
        stack.proxies,
        upstream.pid,
        measures(args),
        rounds=args.rounds,
        warmup_s=args.warmup,
        use_aiohttp=args.client == "aiohttp",
        say=console.print,
    )
    return run(coro)


def show(doc: dict[str, Any], work: Path, console: Console) -> None:
    console.print(Markdown(doc["markdown"]))
    console.print(
        "team bars (ours): "
        + ", ".join(f"{k} {'ok' if v else 'MISSED' if v is False else '-'}" for k, v in doc["bars"].items())
    )
    if doc["harness_saturated"]:
        console.print(
            f"[yellow]harness core saturated in {doc['harness_saturated']}: those figures are a floor[/]"
        )
    console.print(f"report: {work / 'capacity.json'}, {work / 'capacity.md'} (logs and configs alongside)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if args.harness_cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.harness_cpu})  # this load generator shares the harness core
    work = args.out / report.stem("capacity")
    stack = Stack(work, args.proxy_cpu, args.harness_cpu)
    try:
        results = measure_stack(args, stack, console)
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    finally:
        stack.close()
    doc = build_report(args, results, stack.versions)
    report.write_json(doc, work / "capacity.json")
    (work / "capacity.md").write_text(doc["markdown"])
    show(doc, work, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
