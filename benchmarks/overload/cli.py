"""`python -m benchmarks.overload`: the gateway's concurrency cap under 4x the engine's capacity, and without it.

Measures the running engine's capacity (closed-loop ramp), starts two gateways in front of it (capped near the
plateau concurrency, and uncapped), offers Poisson load at 1x and 4x that throughput to each; JSON + markdown.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.core import client, gateway_scrape, plateau, procs, report, textload
from benchmarks.core.aio import run
from benchmarks.core.runner import Budget, open_loop
from benchmarks.core.workload import Workload
from benchmarks.overload import gateway_proc
from benchmarks.overload import stats as overload_stats

RUN_FIRST_INDEX = 200 * plateau.INDEX_STRIDE  # prompts the ramp never sent; each run then has its own


def _numbers(kind: type) -> Any:
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__)
    p.add_argument(
        "--engine", default="http://127.0.0.1:8100", help="the running engine (default: %(default)s)"
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=Path("configs/cpu-demo.yaml"),
        help="base profile of the gateways this starts (port, store and limits are replaced)",
    )
    p.add_argument("--cap", type=int, help="the capped gateway's max_concurrent (default: the plateau's)")
    p.add_argument("--capacity", type=float, metavar="RPS", help="known engine capacity: skip the ramp")
    p.add_argument("--capacity-concurrency", type=int, help="with --capacity: where it plateaus")
    p.add_argument(
        "--multiples",
        type=_numbers(float),
        default=[1.0, 4.0],
        metavar="M,M",
        help="offered load as multiples of the capacity (default: 1,4)",
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals per run")
    p.add_argument("--ramp", type=_numbers(int), default=[1, 2, 4, 8, 16, 32, 64], metavar="C,C")
    p.add_argument("--ramp-duration", type=float, default=20.0, help="seconds per ramp level")
    p.add_argument("--input-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=32, help="exact, via ignore_eos + max_tokens")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--name", default="overload", help="file name prefix")
    return p.parse_args(argv)


async def engine_capacity(args: argparse.Namespace, send: Any, say: Any) -> dict[str, Any]:
    if args.capacity is None:
        return await plateau.ramp(send, args.ramp, duration_s=args.ramp_duration, say=say)
    if args.capacity_concurrency is None and args.cap is None:
        raise SystemExit("error: --capacity needs --capacity-concurrency or --cap")
    concurrency = args.capacity_concurrency or args.cap
    return {
        "concurrency": concurrency,
        "requests_per_s": args.capacity,
        "tolerance": plateau.TOLERANCE,
        "flattened": None,
        "levels": [],
        "given": True,
    }


async def one_run(
    session: aiohttp.ClientSession,
    target: client.Target,
    workload: Workload,
    rate: float,
    args: argparse.Namespace,
    first: int,
) -> dict[str, Any]:
    """Poisson arrivals at `rate` for the duration; the same seed gives every gateway the same arrivals."""
    send = plateau.offset(textload.sender(session, target, workload, client.request_headers()), first)
    before = await gateway_scrape.scrape(session, target.base_url)
    t0 = time.perf_counter()
    records = await open_loop(send, rate, Budget(duration_s=args.duration), rng=random.Random(args.seed))
    wall = time.perf_counter() - t0
    after = await gateway_scrape.scrape(session, target.base_url)
    return overload_stats.figures(records, wall, rate, before, after)


async def measure(args: argparse.Namespace, work: Path, say: Any = print) -> dict[str, Any]:
    headers = client.request_headers()
    async with client.make_session(args.timeout) as session:
        engine, model = await textload.identify(session, args.engine, "engine", headers)
        workload = textload.Shape(args.input_tokens, args.output_tokens, args.seed).workload(model)
        capacity = await engine_capacity(args, textload.sender(session, engine, workload, headers), say)
        cap = args.cap or capacity["concurrency"]
        say(
            f"engine capacity {capacity['requests_per_s']:.2f} req/s at c={capacity['concurrency']}, cap {cap}"
        )
        children: list[procs.Child] = []
        try:
            gateways = start_gateways(work, args.profile, engine.base_url, cap, children)
            runs = await run_all(session, gateways, workload, capacity, args, say)
        finally:
            for child in children:
                procs.stop(child)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["model"] = model
    return {
        "schema": "medgemma-bench/overload/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "settings": settings,
        "machine": report.machine_info(),
        "engine": engine.base_url,
        "capacity": capacity,
        "cap": cap,
        "runs": runs,
        "markdown": overload_stats.markdown(runs, capacity),
    }


def start_gateways(
    work: Path, profile: Path, engine_url: str, cap: int, children: list[procs.Child]
) -> list[tuple[client.Target, int | None]]:
    """(target, cap; None when off) of a capped and an uncapped gateway; `children` gets each as it starts."""
    gateways = []
    for name, cap_or_none in (("capped", cap), ("uncapped", None)):
        limit = gateway_proc.UNCAPPED if cap_or_none is None else cap_or_none
        child, url = gateway_proc.start(work, name, profile, engine_url, limit)
        children.append(child)
        gateways.append((client.Target(name, url, expect_disclaimer=True), cap_or_none))
    return gateways


async def run_all(
    session: aiohttp.ClientSession,
    gateways: list[tuple[client.Target, int | None]],
    workload: Workload,
    capacity: dict[str, Any],
    args: argparse.Namespace,
    say: Any,
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for m in args.multiples:
        rate = m * capacity["requests_per_s"]
        for target, cap in gateways:
            say(f"{m:g}x ({rate:.2f} req/s) through the {target.name} gateway for {args.duration:g} s")
            first = RUN_FIRST_INDEX + len(runs) * plateau.INDEX_STRIDE
            figures = await one_run(session, target, workload, rate, args, first)
            runs.append({"multiple": m, "gateway": target.name, "rate": rate, "cap": cap, "figures": figures})
            say(overload_stats.markdown(runs[-1:], capacity).splitlines()[-1])
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.out / report.stem(args.name)
    try:
        doc = run(measure(args, work))
    except RuntimeError as exc:  # a gateway that would not start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report.write_json(doc, work / "overload.json")
    (work / "overload.md").write_text(doc["markdown"])
    print(doc["markdown"])
    print(f"wrote {work / 'overload.json'}, {work / 'overload.md'} (gateway logs and profiles alongside)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
