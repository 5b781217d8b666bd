"""`python -m benchmarks.soak`: N minutes of Poisson load at ~80% of capacity through the gateway, sampling
the gateway's RSS and error counters every interval. Writes JSON (time series + summary), PNG and markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.core import client, gateway_scrape, plateau, report, textload
from benchmarks.core.aio import run
from benchmarks.core.client import DEFAULT_URL
from benchmarks.core.runner import Budget, SendOne, open_loop
from benchmarks.soak import report as soak_report
from benchmarks.soak import stats as soak_stats
from benchmarks.soak.sampler import Sampler

SOAK_FIRST_INDEX = 100 * plateau.INDEX_STRIDE  # prompts the capacity ramp never sent


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    p.add_argument("--base-url", default=DEFAULT_URL, help="the gateway (default: %(default)s)")
    p.add_argument("--model", help="served model (default: the first on /v1/models)")
    p.add_argument("--minutes", type=float, default=20.0)
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=float, help="arrivals per second, as given (no capacity ramp)")
    rate.add_argument(
        "--capacity", type=float, help="known capacity in requests/s (no ramp); soak at --fraction"
    )
    p.add_argument("--fraction", type=float, default=0.8, help="of the capacity (default: %(default)s)")
    p.add_argument(
        "--ramp",
        type=_ints,
        default=[1, 2, 4, 8, 16, 32, 64],
        metavar="C,C",
        help="closed-loop concurrencies of the capacity ramp (stops once throughput flattens)",
    )
    p.add_argument("--ramp-duration", type=float, default=20.0, help="seconds per ramp level")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline sample")
    p.add_argument("--input-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=32, help="exact, via ignore_eos + max_tokens")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--name", default="soak", help="file name prefix")
    p.add_argument("--no-plot", dest="plot", action="store_false")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


async def soak_rate(args: argparse.Namespace, send: SendOne, say: Any) -> tuple[float, str, dict | None]:
    """(rate, where it came from, the ramp's report if one ran)."""
    if args.rate is not None:
        return args.rate, "--rate", None
    if args.capacity is not None:
        return args.fraction * args.capacity, f"{args.fraction:g} x --capacity {args.capacity:g}/s", None
    ramp = await plateau.ramp(send, args.ramp, duration_s=args.ramp_duration, say=say)
    measured = f"{ramp['requests_per_s']:.2f}/s at c={ramp['concurrency']}"
    source = f"{args.fraction:g} x measured capacity {measured}"
    if not ramp["flattened"]:
        source += "; the ramp never flattened, so the capacity is a floor"
    return args.fraction * ramp["requests_per_s"], source, ramp


async def soak(args: argparse.Namespace, say: Any = print) -> dict[str, Any]:
    """Probe, find the rate, run the open loop with the sampler beside it, build the report document."""
    headers = client.request_headers()
    async with client.make_session(args.timeout) as session:
        target, model = await textload.identify(session, args.base_url, "gateway", headers)
        shape = textload.Shape(args.input_tokens, args.output_tokens, args.seed)
        workload = shape.workload(args.model or model)
        send = textload.sender(session, target, workload, headers)
        rate, source, ramp = await soak_rate(args, send, say)
        say(f"soak: {args.minutes:g} min at {rate:.2f} req/s ({source})")
        sampler = Sampler(lambda: gateway_scrape.scrape(session, target.base_url), args.interval)
        wall, cpu = await sampled_loop(sampler, send, rate, args, say)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["model"], settings["warmup_s"] = workload.model, args.warmup
    summary = soak_stats.summary(sampler.done, sampler.samples, wall, args.warmup)
    summary["generator_cpu_fraction"] = cpu / wall if wall > 0 else 0.0
    doc = {
        "schema": "medgemma-bench/soak/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "settings": settings,
        "machine": report.machine_info(),
        "target": target.base_url,
        "rate": rate,
        "rate_source": source,
        "capacity": ramp,
        "summary": summary,
        "samples": sampler.samples,
    }
    doc["markdown"] = soak_report.markdown(doc)
    return doc


async def sampled_loop(
    sampler: Sampler, send: SendOne, rate: float, args: argparse.Namespace, say: Any
) -> tuple[float, float]:
    """The open loop with the sampler ticking beside it; (wall seconds, the generator's CPU seconds)."""
    stop = asyncio.Event()
    ticking = asyncio.create_task(sampler.run(stop, _progress(say)))
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        await open_loop(
            plateau.offset(sampler.counting(send), SOAK_FIRST_INDEX),
            rate,
            Budget(duration_s=args.minutes * 60),
            on_done=sampler.on_done,
            rng=random.Random(args.seed),
        )
    finally:
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stop.set()
        await ticking
    return wall, cpu


def _progress(say: Any) -> Any:
    def show(sample: dict[str, Any]) -> None:
        rss, w = sample["gateway"].get("rss_bytes"), sample["window"]
        rss_text = "-" if rss is None else f"{rss / 2**20:.1f} MiB"
        say(
            f"t={sample['t']:7.1f}s  rss {rss_text}  {w['requests_per_s']:.2f} ok/s  "
            f"errors {sum(w['errors'].values())}  in flight {sample['in_flight']}"
        )

    return show


def write_outputs(doc: dict[str, Any], args: argparse.Namespace) -> list[Path]:
    stem = args.out / report.stem(args.name)
    paths = [report.write_json(doc, stem.with_suffix(".json"))]
    md = stem.with_suffix(".md")
    md.write_text(doc["markdown"])
    paths.append(md)
    if args.plot:
        paths.append(soak_report.plot(doc, stem.with_suffix(".png")))
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = (lambda *_: None) if args.quiet else print
    doc = run(soak(args, say))
    paths = write_outputs(doc, args)
    print(doc["markdown"])
    print("wrote " + ", ".join(str(p) for p in paths))
    errors, rss = doc["summary"]["errors"], doc["summary"]["rss"]
    return 0 if errors["zero"] and rss["within_target"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
