"""Nothing blocks the gateway's event loop, measured: the inter-token latency of text streams through one
gateway pinned to one core, in interleaved phases: baseline; acknowledgements at 100/s while a second process
holds the SQLite store's write lock; acknowledgements at 100/s without the lock. With --before-src, a second
gateway from another tree (the store before this change) runs the same phases, back to back with this one.

    python -m benchmarks.loopblock --before-src /tmp/loop-before --rounds 3 --window-s 8

The gateway has API keys (acknowledgements are per key: only then do they reach the store); streams send the
terms header, so they never touch the store themselves: any ITL step is the loop being blocked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from benchmarks.core import client, procs
from benchmarks.core.aio import run
from benchmarks.core.procs import wait_port
from benchmarks.loopblock.load import Arm, Locker, block
from benchmarks.loopblock.report import BASELINE, LOCKED, PHASES, plan, summarize, table

REPO = Path(__file__).resolve().parents[2]
ENGINE_LISTENING = "fast fake upstream on "


def gateway_profile(src: Path, work: Path, keys_file: Path) -> dict[str, Any]:
    """The demo profile of `src` with a free port, its own store file and the API keys of the run."""
    profile = yaml.safe_load((src / "configs/cpu-demo.yaml").read_text())
    gateway = profile.setdefault("gateway", {})
    gateway["port"] = 0
    gateway.setdefault("terms", {})["database"] = str(work / "acks.sqlite3")
    gateway.setdefault("auth", {})["api_keys_file"] = str(keys_file)
    return profile


def start_gateway(
    name: str, src: Path, work: Path, upstream: str, keys_file: Path, cpu: int
) -> tuple[procs.Child, str]:
    """A gateway process from `src` (cwd: `python -m serve` imports that tree), pinned to `cpu`."""
    arm_dir = work / name
    arm_dir.mkdir(parents=True, exist_ok=True)
    profile = arm_dir / "profile.yaml"
    profile.write_text(yaml.safe_dump(gateway_profile(src, arm_dir, keys_file), sort_keys=False))
    return procs.start_gateway(f"gateway-{name}", profile, upstream, cpu=cpu, log_dir=arm_dir, cwd=src)


def write_keys(path: Path, count: int) -> list[str]:
    keys = [f"sk-loopblock-{i:06d}" for i in range(count)]
    path.write_text("\n".join(keys) + "\n")
    path.chmod(0o600)
    return keys


async def measure(args: argparse.Namespace, arms: dict[str, Arm], model: str) -> list[dict[str, Any]]:
    locker = await Locker.start(args.harness_cpu, REPO)
    blocks = []
    try:
        async with client.make_session(timeout_s=300) as session:
            for r, name, phase in plan(args.rounds, list(arms), PHASES):
                got = await block(
                    session,
                    arms[name],
                    model=model,
                    streams=args.streams,
                    window_s=args.window_s,
                    ack_rate=0 if phase == BASELINE else args.ack_rate,
                    locker=locker if phase == LOCKED else None,
                )
                blocks.append({"round": r, "arm": name, "phase": phase, **got})
                print(f"round {r} {name:>6} {phase:<11} gaps {len(got['gaps'])}", flush=True)
    finally:
        await locker.stop()
    return blocks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-src", type=Path, help="a tree with the store before this change (optional)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=8.0)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--ack-rate", type=float, default=100.0, help="acknowledgements per second")
    parser.add_argument("--chunks", type=int, default=100, help="tokens per stream (the fake engine's)")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="the fake engine's inter-token gap")
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--harness-cpu", type=int, default=1)
    parser.add_argument("--draws", type=int, default=400, help="bootstrap resamples")
    parser.add_argument("--work", type=Path, default=Path("/tmp/loopblock-bench"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model = yaml.safe_load((REPO / "configs/cpu-demo.yaml").read_text())["model"]["served_name"]
    # Key 0 streams; every acknowledgement takes a key never acknowledged before (each arm has its own store).
    per_arm = int(args.rounds * 2 * args.window_s * args.ack_rate) + 100
    keys = write_keys(args.work / "keys.txt", per_arm + 1)
    engine_cmd = [sys.executable, "-m", "testkit.fast_engine", "--port", "0", "--chunks", str(args.chunks)]
    engine_cmd += ["--gap-ms", str(args.gap_ms), "--model", model]
    engine = procs.start("fast-engine", engine_cmd, cpu=args.harness_cpu, log_dir=args.work)
    children = [engine]
    try:
        upstream = f"http://127.0.0.1:{wait_port(engine, ENGINE_LISTENING)}"
        procs.wait_ready(engine, upstream + "/health")
        trees = {"after": REPO} if args.before_src is None else {"before": args.before_src, "after": REPO}
        arms = {}
        for name, src in trees.items():
            child, url = start_gateway(
                name, src, args.work, upstream, args.work / "keys.txt", args.gateway_cpu
            )
            children.append(child)
            arms[name] = Arm(
                name, url, args.work / name / "acks.sqlite3", keys[0], itertools.islice(keys, 1, None)
            )
        blocks = run(measure(args, arms, model))
    finally:
        for child in children:
            procs.stop(child)
    summary = summarize(blocks, draws=args.draws)
    out = args.work / "loopblock.json"
    out.write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "blocks": blocks})
    )
    print(table(summary))
    print(f"\nblocks and summary: {out}")
    return 0
