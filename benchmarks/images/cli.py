"""Image ingestion benchmark (not a test): large radiographs and DICOM through the gateway, normalisation on/off.

    flock /tmp/engine.lock python -m benchmarks.images [--rounds 3] [--out bench-results]

One CPU engine (configs/cpu-demo.yaml, its multimodal caches off: in practice every request is a new image and
the caches would hide the engine's per-image cost) and one gateway per arm in front of it (normalisation off,
on with JPEG, on with PNG). Offline, on the gateway's own code: request bytes, bytes forwarded, gateway CPU per
image. Online, interleaved (rounds x concurrency x image x arm, the arm order rotating each round): TTFT p50,
requests/s and the gateway process's CPU per request. Writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.core import client, procs
from benchmarks.core.records import RequestRecord
from benchmarks.images.payloads import ARMS, offline, payloads, request_body
from benchmarks.images.report import markdown, summarize

ROOT = Path(__file__).resolve().parents[1]
BENCH_VLLM = {"mm-processor-cache-gb": 0, "enable-prefix-caching": False}
STARTUP_TIMEOUT_S = 1500  # a cold start took over 600 s on a machine shared with another engine


class ImageStack:
    """The engine and one gateway per arm; close() stops whatever was started."""

    def __init__(self, work: Path) -> None:
        self.work, self.children, self.gateways = work, [], {}
        self.raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
        self.raw["engine"]["port"] = procs.free_port()
        self.raw["vllm"].update(BENCH_VLLM)
        self.raw["engine"]["startup_timeout_s"] = STARTUP_TIMEOUT_S
        self.engine_url = f"http://127.0.0.1:{self.raw['engine']['port']}"

    def start(self) -> None:
        engine = self._child(
            "engine",
            [
                "engine",
                "--profile",
                str(self._profile("engine", {})),
                "--cache-dir",
                str(ROOT / ".cache" / "checkpoints"),
            ],
        )
        procs.wait_ready(engine, self.engine_url + "/health", timeout_s=STARTUP_TIMEOUT_S + 60)
        for arm, options in ARMS.items():
            port = procs.free_port()
            gateway = {
                "port": port,
                "terms": {"database": str(self.work / "acks.sqlite3")},
                "images": options,
            }
            cmd = ["gateway", "--profile", str(self._profile(arm, gateway)), "--upstream", self.engine_url]
            child = self._child(f"gateway-{arm}", cmd)
            target = client.Target(arm, f"http://127.0.0.1:{port}", expect_disclaimer=True)
            procs.wait_ready(child, target.base_url + "/health")
            self.gateways[arm] = (target, child)

    def _profile(self, name: str, gateway: dict[str, Any]) -> Path:
        raw = {**self.raw, "gateway": {**self.raw.get("gateway", {}), **gateway}}
        raw["gateway"]["images"] = {
            **self.raw.get("gateway", {}).get("images", {}),
            **gateway.get("images", {}),
        }
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    def _child(self, name: str, args: list[str]) -> procs.Child:
        child = procs.start(name, [sys.executable, "-m", "serve", *args], cpu=None, log_dir=self.work)
        self.children.append(child)
        return child

    def close(self) -> None:
        for child in reversed(self.children):
            procs.stop(child, grace_s=30)


async def batch(
    session, target, body: bytes, concurrency: int, count: int
) -> tuple[list[RequestRecord], float]:
    """`count` requests, `concurrency` at a time; (records, wall seconds)."""
    queue = list(range(count))
    done: list[RequestRecord] = []
    headers = client.request_headers()

    async def worker() -> None:
        while queue:
            queue.pop()
            done.append(await client.send(session, target, body, kind=target.name, headers=headers))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - start


def schedule(rounds: int, concurrencies: list[int], images: list[str], arms: list[str]) -> list[tuple]:
    """(round, concurrency, image, arm) in run order: every round visits every cell, and the arm order rotates
    so that no arm always runs first, on a cooler or a warmer engine."""
    order = []
    for rnd in range(rounds):
        rotated = arms[rnd % len(arms) :] + arms[: rnd % len(arms)]
        order += [(rnd, c, image, arm) for c in concurrencies for image in images for arm in rotated]
    return order


async def cell(session, stack: ImageStack, body: bytes, key: tuple, per_worker: int) -> dict[str, Any]:
    rnd, concurrency, image, arm = key
    target, child = stack.gateways[arm]
    cpu0 = procs.cpu_seconds(child.pid)
    recs, wall = await batch(session, target, body, concurrency, concurrency * per_worker)
    print(f"round {rnd} c={concurrency} {image} {arm}: {wall:.1f}s", flush=True)
    return {
        "round": rnd,
        "concurrency": concurrency,
        "image": image,
        "arm": arm,
        "wall_s": wall,
        "gateway_cpu_s": procs.cpu_seconds(child.pid) - cpu0,
        "records": [r.to_json() for r in recs],
    }


async def online(
    stack: ImageStack, bodies: dict[str, bytes], args: argparse.Namespace
) -> list[dict[str, Any]]:
    async with client.make_session() as session:
        for body in bodies.values():  # warm-up: each gateway's first image request pays one-off costs
            for arm in ARMS:
                await batch(session, stack.gateways[arm][0], body, 1, 1)
        keys = schedule(args.rounds, args.concurrency, list(bodies), list(ARMS))
        return [await cell(session, stack, bodies[key[2]], key, args.per_worker) for key in keys]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--per-worker", type=int, default=3, help="requests per concurrent worker per cell")
    parser.add_argument("--max-tokens", type=int, default=16, help="exact, via ignore_eos")
    parser.add_argument("--size", type=int, default=2048, help="side of the 16-bit radiograph")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="images-bench-"))
    stack = ImageStack(work)
    model, size = stack.raw["model"]["served_name"], stack.raw["gateway"]["images"]["model_input_size"]
    images = payloads(args.size)
    report: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "model_input_size": size,
        "offline": {p.name: offline(p, model, size) for p in images},
        "offline_896": {p.name: offline(p, model, 896) for p in images},
    }
    bodies = {p.name: json.dumps(request_body(model, p.url, args.max_tokens)).encode() for p in images}
    try:
        stack.start()
        report["cells"] = asyncio.run(online(stack, bodies, args))
    finally:
        stack.close()
    report["summary"] = summarize(report["cells"])
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"images-{stamp}.json").write_text(json.dumps(report, indent=1))
    table = markdown(report)
    (args.out / f"images-{stamp}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
