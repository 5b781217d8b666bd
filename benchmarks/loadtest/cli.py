"""`python -m benchmarks.loadtest` / `medgemma-bench`: load-test any OpenAI-compatible base URL, or compare several.

Writes a JSON report (every request, the summaries, the command line, the machine) and a PNG plot to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console

from benchmarks.core import client, report
from benchmarks.core.aio import run
from benchmarks.core.client import DEFAULT_URL
from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import Budget, Level, SendOne
from benchmarks.core.stats import parse_slo
from benchmarks.core.sweep import Plan, Progress, pooled, run_plan
from benchmarks.core.workload import KINDS, Workload, item_kind, request_body
from benchmarks.loadtest import compare, display, plot
from testkit.radiographs import ImageCache


def _numbers(kind: type) -> Any:
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="medgemma-bench", description=__doc__)
    where = p.add_argument_group("targets")
    where.add_argument("--base-url", default=DEFAULT_URL, help="one target (default: %(default)s)")
    where.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="repeat to compare targets; the first is the baseline",
    )
    where.add_argument("--model", help="served model name (default: the first of the target's /v1/models)")
    where.add_argument("--api-key-env", metavar="VAR", help="environment variable holding a bearer key")
    where.add_argument(
        "--expect-disclaimer",
        choices=("auto", "on", "off"),
        default="auto",
        help="count an answer without the disclaimer as an error (auto: on for our gateway)",
    )
    work = p.add_argument_group("workload")
    work.add_argument("--workload", choices=KINDS, default="text")
    work.add_argument("--input-tokens", type=int, default=256, help="approximate prompt length of text items")
    work.add_argument("--output-tokens", type=int, default=64, help="exact, via ignore_eos + max_tokens")
    work.add_argument("--same-prompt", action="store_true", help="one prompt for all (prefix cache hits)")
    work.add_argument("--image-sizes", type=_numbers(int), default=[896, 2048], metavar="N,N")
    work.add_argument("--image-fraction", type=float, default=0.5, help="share of image items in `mix`")
    work.add_argument("--no-stream", dest="stream", action="store_false", help="whole answers (TTFT = E2E)")
    load = p.add_argument_group("load shape")
    shape = load.add_mutually_exclusive_group()
    shape.add_argument(
        "--concurrency", type=_numbers(int), metavar="C,C", help="closed-loop sweep (default 1,4,16,64)"
    )
    shape.add_argument("--rate", type=_numbers(float), metavar="R,R", help="Poisson arrivals per second")
    load.add_argument(
        "--requests", type=int, help="measured requests per level (default: max(32, 4c); 64 for rates)"
    )
    load.add_argument(
        "--duration", type=float, help="seconds per level (with --requests: whichever ends first)"
    )
    load.add_argument("--warmup", type=int, default=2, help="requests before each level, not measured")
    load.add_argument("--rounds", type=int, default=1, help="repeat the interleaved sweep")
    load.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    load.add_argument("--seed", type=int, default=0)
    out = p.add_argument_group("output")
    out.add_argument(
        "--slo", action="append", default=[], metavar="NAME_ms=V", help="e.g. ttft_ms=500 tpot_ms=50"
    )
    out.add_argument("--out", type=Path, default=Path("bench-results"))
    out.add_argument("--name", default="loadtest", help="file name prefix")
    out.add_argument("--no-plot", dest="plot", action="store_false")
    out.add_argument("--quiet", action="store_true", help="no progress display")
    return p.parse_args(argv)


def levels(args: argparse.Namespace) -> tuple[Level, ...]:
    if args.rate:
        return tuple(Level("rate", r) for r in args.rate)
    return tuple(Level("concurrency", c) for c in (args.concurrency or [1, 4, 16, 64]))


def named_targets(args: argparse.Namespace) -> list[tuple[str | None, str]]:
    """(name, base URL) per target; a lone --base-url is named after what the probe finds it to be."""
    if not args.target:
        return [(None, client.base_url(args.base_url))]
    return [client.parse_target(text, i) for i, text in enumerate(args.target)]


def wants_disclaimer(setting: str, is_gateway: bool) -> bool:
    return is_gateway if setting == "auto" else setting == "on"


async def probe_targets(
    session: aiohttp.ClientSession, args: argparse.Namespace, headers: dict[str, str]
) -> tuple[tuple[client.Target, ...], dict[str, Any]]:
    targets, info = [], {}
    for name, url in named_targets(args):
        probe = await client.probe(session, url, headers)
        if "error" in probe:
            raise SystemExit(f"error: cannot reach {url}: {probe['error']}")
        name = name or ("gateway" if probe["gateway"] else "engine")
        expect = wants_disclaimer(args.expect_disclaimer, probe["gateway"])
        targets.append(client.Target(name, url, expect))
        info[name] = {"url": url, "expect_disclaimer": expect, **probe}
    return tuple(targets), info


async def bench(args: argparse.Namespace, slos: dict[str, float], progress: Progress) -> dict[str, Any]:
    """Probe the targets, run the sweep, build the report document (files are written by the caller)."""
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    headers = client.request_headers(api_key)
    async with client.make_session(args.timeout) as session:
        targets, info = await probe_targets(session, args, headers)
        workload = _workload(args, args.model or _first_model(info))
        images = _warm_images(workload, args.seed)
        budget = Budget(args.requests, args.duration, args.warmup)
        plan = Plan(targets, levels(args), budget, args.rounds, args.seed)

        def make_send(target: client.Target) -> SendOne:
            async def send_one(i: int) -> RequestRecord:
                kind, body = request_body(workload, i, images)
                return await client.send(
                    session, target, body, kind=kind, stream=args.stream, headers=headers
                )

            return send_one

        runs = await run_plan(plan, make_send, slos, progress)
    summaries = pooled(runs, slos)
    rows = compare.compare(summaries, targets[0].name) if len(targets) > 1 else []
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["model"] = workload.model
    return report.document(
        argv=sys.argv, settings=settings, targets=info, runs=runs, pooled=summaries, comparison=rows
    )


def _first_model(probes: dict[str, dict[str, Any]]) -> str:
    for probe in probes.values():
        if probe["models"]:
            return probe["models"][0]
    raise SystemExit("error: no target lists a model on /v1/models; pass --model")


def _workload(args: argparse.Namespace, model: str) -> Workload:
    return Workload(
        args.workload,
        model,
        args.input_tokens,
        args.output_tokens,
        args.same_prompt,
        tuple(args.image_sizes),
        args.image_fraction,
        args.stream,
        args.seed,
    )


def _warm_images(workload: Workload, seed: int) -> ImageCache | None:
    """Make every image before the clock starts: a 2048x2048 PNG takes the generator most of a second."""
    if workload.kind == "text":
        return None
    images = ImageCache(seed)
    for size in workload.image_sizes:
        if workload.kind == "image" or any(item_kind(workload, i) == f"image-{size}" for i in range(64)):
            images.data_url(size)
    return images


def write_outputs(doc: dict[str, Any], args: argparse.Namespace, console: Console) -> None:
    stem = report.stem(args.name)
    path = report.write_json(doc, args.out / f"{stem}.json")
    console.print(display.summary_table(doc["summaries"]))
    if doc["comparison"]:
        console.print(display.compare_table(doc["comparison"]))
    if any(s["generator_saturated"] for s in doc["summaries"]):
        console.print("[yellow]warning: the load generator saturated its core (SAT): figures are a floor[/]")
    console.print(f"report: {path}")
    if args.plot:
        png = plot.plot(doc["summaries"], args.out / f"{stem}.png", title=f"{args.workload} workload")
        console.print(f"plot:   {png}")


async def _main(args: argparse.Namespace, slos: dict[str, float], console: Console) -> dict[str, Any]:
    if args.quiet:
        return await bench(args, slos, display.NullProgress())
    with display.RichProgress(console) as progress:
        return await bench(args, slos, progress)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    try:
        slos = dict(parse_slo(s) for s in args.slo)
    except ValueError as exc:
        console.print(f"error: {exc}")
        return 2
    write_outputs(run(_main(args, slos, console)), args, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
