"""What the gateway adds to latency, measured as a paired comparison on the same engine load.

    python -m benchmarks.paired --engine http://127.0.0.1:8300 --gateway http://127.0.0.1:8301 \
        --concurrency 1,16 --requests 400

Back-to-back blocks (engine, then gateway) drift with everything else on a small machine: a ms-sized difference
drowns in minutes-apart noise. Here, at each concurrency C, C workers send requests whose route (engine direct or
through the gateway) is drawn at random, half each: both routes run at the same moments against the same engine
batch, so the difference of their TTFT/E2E distributions is the gateway's, with bootstrap 95% intervals (TTFT
p50 and p99, E2E p50); every request's TTFT and E2E are kept in the JSON. The
gateway's own account of its code time per request (`medgemma_gateway_added_latency_seconds`) is read alongside.
Throughput cost needs separate blocks: that is `benchmarks.loadtest --rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from benchmarks.core import client, report
from benchmarks.core.aio import run
from benchmarks.core.records import RequestRecord
from benchmarks.core.stats import percentile
from benchmarks.core.textload import identify
from benchmarks.core.workload import Workload, request_body

ROUTES = ("engine", "gateway")
OWN_TIME = "medgemma_gateway_added_latency_seconds"
CPU = "process_cpu_seconds_total"  # prometheus_client's process collector (Linux)


def plan(requests: int, seed: int) -> list[str]:
    """The route of each request: half each (an odd count gives the engine one more), shuffled by seed."""
    routes = [ROUTES[i % 2] for i in range(requests)]
    random.Random(seed).shuffle(routes)
    return routes


def difference(
    base: list[float], other: list[float], q: float = 50, *, draws: int = 2000, seed: int = 0
) -> dict:
    """pq(other) - pq(base) in ms with a percentile-bootstrap 95% interval (both samples resampled)."""
    rng = random.Random(seed)
    diffs = sorted(
        percentile(rng.choices(other, k=len(other)), q) - percentile(rng.choices(base, k=len(base)), q)
        for _ in range(draws)
    )
    point = percentile(other, q) - percentile(base, q)
    return {"ms": 1000 * point, "ci95_ms": [1000 * percentile(diffs, 2.5), 1000 * percentile(diffs, 97.5)]}


def own_time(metrics_text: str) -> tuple[float, float, float]:
    """(sum of seconds, count) of the gateway's own code time over all routes, and its process's CPU seconds."""
    total = count = cpu = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == OWN_TIME + "_sum":
                total += s.value
            elif s.name == OWN_TIME + "_count":
                count += s.value
            elif s.name == CPU:
                cpu = s.value
    return total, count, cpu


async def level(
    session: aiohttp.ClientSession,
    targets: dict[str, client.Target],
    workload: Workload,
    concurrency: int,
    routes: list[str],
    first: int,
) -> list[tuple[str, RequestRecord]]:
    headers = client.request_headers()
    todo = iter(enumerate(routes, start=first))
    done: list[tuple[str, RequestRecord]] = []

    async def worker() -> None:
        for i, route in todo:  # one shared iterator: each request is taken by exactly one worker
            _, body = request_body(workload, i)
            done.append((route, await client.send(session, targets[route], body, headers=headers)))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def summarize(
    done: list[tuple[str, RequestRecord]], own: tuple[float, float, float], seed: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"routes": {}}
    values: dict[str, dict[str, list[float]]] = {}
    for route in ROUTES:
        recs = [r for name, r in done if name == route]
        ok = [r for r in recs if r.ok]
        values[route] = {m: [getattr(r, m) for r in ok if getattr(r, m) is not None] for m in ("ttft", "e2e")}
        out["routes"][route] = {
            "sent": len(recs),
            "ok": len(ok),
            **{f"{m}_ms": {q: 1000 * percentile(v, q) for q in (50, 99)} for m, v in values[route].items()},
        }
    engine, gateway = values["engine"], values["gateway"]
    out["added"] = {
        "ttft": difference(engine["ttft"], gateway["ttft"], seed=seed),
        "ttft_p99": difference(engine["ttft"], gateway["ttft"], 99, seed=seed),
        "e2e": difference(engine["e2e"], gateway["e2e"], seed=seed),
    }
    # Every request's figures, so any other statistic can be computed later from the JSON.
    out["samples_ms"] = {
        route: {m: [round(1000 * v, 3) for v in vs] for m, vs in values[route].items()} for route in ROUTES
    }
    total, count, cpu = own
    out["gateway_own_ms_per_request"] = 1000 * total / count if count else None
    out["gateway_cpu_ms_per_request"] = (
        1000 * cpu / count if count else None
    )  # its whole process, idle work too
    return out


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with client.make_session() as session:
        gateway, model = await identify(session, args.gateway, "gateway", client.request_headers())
        engine, _ = await identify(session, args.engine, "engine", client.request_headers())
        targets = {"engine": engine, "gateway": gateway}
        workload = Workload("text", model, args.input_tokens, args.output_tokens, seed=args.seed)
        await level(session, targets, workload, 2, plan(args.warmup, args.seed), first=10**6)
        results, first = {}, 0
        for c in args.concurrency:
            before = own_time(await _text(session, gateway.base_url + "/metrics"))
            done = await level(session, targets, workload, c, plan(args.requests, args.seed + c), first)
            after = own_time(await _text(session, gateway.base_url + "/metrics"))
            first += args.requests
            own = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
            results[f"c={c}"] = summarize(done, own, args.seed)
    return results


async def _text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        return await resp.text()


def table(results: dict[str, Any]) -> Table:
    t = Table(title="what the gateway adds (paired, same engine load)")
    for col in (
        "level",
        "ok engine/gateway",
        "TTFT p50 engine / gateway ms",
        "added TTFT p50 ms [95% CI]",
        "added TTFT p99 ms [95% CI]",
        "added E2E p50 ms [95% CI]",
        "gateway code ms/req",
        "gateway CPU ms/req",
    ):
        t.add_column(col)
    for name, r in results.items():
        e, g, a = r["routes"]["engine"], r["routes"]["gateway"], r["added"]
        ci = lambda d: f"{d['ms']:+.2f} [{d['ci95_ms'][0]:+.2f}, {d['ci95_ms'][1]:+.2f}]"  # noqa: E731
        own, cpu = r["gateway_own_ms_per_request"], r["gateway_cpu_ms_per_request"]
        t.add_row(
            name,
            f"{e['ok']}/{e['sent']} / {g['ok']}/{g['sent']}",
            f"{e['ttft_ms'][50]:.1f} / {g['ttft_ms'][50]:.1f}",
            ci(a["ttft"]),
            ci(a["ttft_p99"]),
            ci(a["e2e"]),
            "-" if own is None else f"{own:.3f}",
            "-" if cpu is None else f"{cpu:.3f}",
        )
    return t


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.paired",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--engine", required=True, help="the engine's base URL (direct, no gateway)")
    p.add_argument("--gateway", required=True, help="the gateway's base URL in front of that engine")
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    p.add_argument("--requests", type=int, default=400, help="per level, both routes together")
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--input-tokens", type=int, default=256)
    p.add_argument("--output-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    results = run(measure(args))
    doc = {
        "schema": "medgemma-bench/paired/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "machine": report.machine_info(),
        "wall_s": time.time() - started,
        "levels": results,
    }
    path = report.write_json(doc, args.out / f"{report.stem('paired')}.json")
    Console().print(table(results))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
