"""`python -m benchmarks.rolling`: zero-error rolling restarts of two gateways behind HAProxy, under streaming load.

    flock /tmp/engine.lock python -m benchmarks.rolling [--engine URL] [--rolls 3] [--concurrency 16]

Two gateways (port 0, read back from their logs) in front of one engine, Debian's haproxy in front of them
(health check on /health), `--concurrency` streaming chat requests kept in flight through haproxy, and
`--rolls` rolling restarts (SIGTERM a gateway, start its replacement, point haproxy's slot at it, wait until it
is UP and the old one has drained and exited; then the other). Counts every failed request and cut stream;
TTFT of requests started during restarts against steady load. Without --engine it starts a CPU engine.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.core import client, procs, report, textload
from benchmarks.core.aio import run
from benchmarks.rolling import gateways, scenario, stats
from testkit import haproxy

ROOT = Path(__file__).resolve().parents[2]
ENGINE_START_S = 1500  # a cold start took over 600 s on a machine shared with another engine


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rolling", description=__doc__)
    p.add_argument("--engine", help="a running engine's URL (default: start a CPU engine from --profile)")
    p.add_argument(
        "--profile",
        type=Path,
        default=ROOT / "configs" / "cpu-demo.yaml",
        help="the engine's profile and the gateways' base profile (port, store, drain replaced)",
    )
    p.add_argument(
        "--concurrency", type=int, default=16, help="streams kept in flight (default: %(default)s)"
    )
    p.add_argument("--rolls", type=int, default=3, help="rolling restarts of both gateways")
    p.add_argument(
        "--settle", type=float, default=20.0, help="seconds of steady load before and between rolls"
    )
    p.add_argument("--drain-delay", type=float, default=5.0, help="the gateways' gateway.drain.delay_s")
    p.add_argument(
        "--signal",
        choices=("TERM", "KILL"),
        default="TERM",
        help="what stops an old gateway: TERM drains it; KILL is the control run without a drain",
    )
    p.add_argument("--input-tokens", type=int, default=128)
    p.add_argument(
        "--output-tokens",
        type=int,
        default=128,
        help="exact, via ignore_eos + max_tokens; ~6 s streams at c=16 on the CPU demo: some outlast the drain delay",
    )
    p.add_argument("--timeout", type=float, default=120.0, help="bound on each wait of a restart, in seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--name", default="rolling", help="file name prefix")
    return p.parse_args(argv)


def start_engine(profile: Path, work: Path) -> tuple[procs.Child, str]:
    """`serve engine` on the profile as it is (its port: the engine cannot report one it chose)."""
    from serve.config import load_config

    url = f"http://127.0.0.1:{load_config(profile).engine.port}"
    cmd = [sys.executable, "-m", "serve", "engine", "--profile", str(profile)]
    child = procs.start(
        "engine", [*cmd, "--cache-dir", str(ROOT / ".cache" / "checkpoints")], cpu=None, log_dir=work
    )
    try:
        procs.wait_ready(child, url + "/health", timeout_s=ENGINE_START_S)
    except BaseException:  # Ctrl-C during the long start too: never leave the engine behind
        procs.stop(child, grace_s=30)
        raise
    return child, url


async def model_of(url: str) -> str:
    async with client.make_session(30) as session:
        return (await textload.identify(session, url, "engine", client.request_headers()))[1]


async def measure(args: argparse.Namespace, engine_url: str, work: Path) -> dict[str, Any]:
    model = await model_of(engine_url)
    launch = gateways.launcher(work, args.profile, engine_url, {"delay_s": args.drain_delay})
    shape = textload.Shape(args.input_tokens, args.output_tokens, args.seed)
    with scenario.stack(launch, work, args.timeout) as s:
        print(f"haproxy on {s.lb.url}: {', '.join(f'{k} -> {g.url}' for k, g in s.slots.items())}")
        sig = signal.Signals[f"SIG{args.signal}"]
        outcome = await scenario.run(
            s, model, shape, args.concurrency, args.rolls, args.settle, args.timeout, sig=sig
        )
    fig = stats.figures(outcome.records, outcome.restarts, outcome.wall_s)
    servers = {name: asdict(state) for name, state in outcome.servers.items()}
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return {
        "schema": "medgemma-bench/rolling/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "settings": {**settings, "model": model, "engine": engine_url},
        "machine": report.machine_info(),
        "haproxy": {"checks": asdict(haproxy.Checks()), "servers": servers},
        "figures": fig,
        "records": [r.to_json() for r in outcome.records],
        "markdown": stats.markdown(fig, servers),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.out / report.stem(args.name)
    engine = None
    try:
        if args.engine is None:
            print(f"starting a CPU engine from {args.profile} (2-4 minutes)")
            engine, engine_url = start_engine(args.profile, work)
        else:
            engine_url = client.base_url(args.engine)
        doc = run(measure(args, engine_url, work))
    except (RuntimeError, aiohttp.ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            procs.stop(engine, grace_s=60)
    report.write_json(doc, work / "rolling.json")
    (work / "rolling.md").write_text(doc["markdown"])
    print(doc["markdown"])
    print(f"wrote {work / 'rolling.json'}, {work / 'rolling.md'} (gateway and haproxy logs alongside)")
    return 0 if doc["figures"]["failed"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
