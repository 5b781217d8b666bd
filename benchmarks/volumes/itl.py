"""Text streams beside volume preprocessing: the ITL of 16 text streams through one gateway pinned to one core
(its image workers too) on the fast fake engine, in windows with and without 85-slice CT volumes being posted
beside them, interleaved per round.

    python -m benchmarks.volumes.itl [--rounds 3] [--window-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from benchmarks.core import client, procs
from benchmarks.core.stats import percentile
from benchmarks.core.workload import Workload, request_body
from benchmarks.images.stall import HEADERS, start_gateway
from benchmarks.volumes.cost import request_body as volume_body
from testkit.ct_series import ct_series

REPO = Path(__file__).resolve().parents[2]


async def window(
    session, target, model: str, volume: bytes | None, streams: int, seconds: float
) -> dict[str, Any]:
    end, gaps, posted = time.monotonic() + seconds, [], []
    text = Workload("text", model, 64, 64)

    async def streamer(k: int) -> None:
        i = k
        while time.monotonic() < end:
            _, body = request_body(text, i)
            gaps.extend((await client.send(session, target, body, kind="text", headers=HEADERS)).itl)
            i += streams

    async def poster() -> None:
        while volume is not None and time.monotonic() < end:
            started = time.perf_counter()
            async with session.post(target.chat_url, data=volume, headers=HEADERS) as resp:
                await resp.read()
            posted.append((resp.status, time.perf_counter() - started))

    await asyncio.gather(*(streamer(k) for k in range(streams)), poster())
    return {"gaps": gaps, "posted": posted}


async def measure(url: str, model: str, volume: bytes, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {arm: {"gaps": [], "posted": []} for arm in ("text only", "with volumes")}
    target = client.Target("gateway", url, expect_disclaimer=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        for r in range(args.rounds):
            arms = [("text only", None), ("with volumes", volume)]
            for arm, body in arms[r % 2 :] + arms[: r % 2]:
                got = await window(session, target, model, body, args.streams, args.window_s)
                out[arm]["gaps"] += got["gaps"]
                out[arm]["posted"] += got["posted"]
    return out


def report(out: dict[str, Any]) -> str:
    lines = [
        "| arm | token gaps | ITL p50 ms | ITL p99 ms | ITL max ms | volumes posted | ok | volume p50 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, got in out.items():
        g, ok = got["gaps"], [s for status, s in got["posted"] if status == 200]
        p50 = f"{percentile(ok, 50):.2f}" if ok else "-"
        lines.append(
            f"| {arm} | {len(g)} | {percentile(g, 50) * 1e3:.1f} | {percentile(g, 99) * 1e3:.1f} | "
            f"{max(g) * 1e3:.1f} | {len(got['posted'])} | {len(ok)} | {p50} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--harness-cpu", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/volume-itl-bench"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model = yaml.safe_load((REPO / "configs/cpu-demo.yaml").read_text())["model"]["served_name"]
    volume = volume_body(ct_series(85, 512, seed=5).objects).replace(b'"bench-model"', f'"{model}"'.encode())
    port = procs.free_port()
    engine = [sys.executable, "-m", "testkit.fast_engine", "--port", str(port), "--chunks", "100"]
    engine += ["--gap-ms", "20", "--model", model]
    children = [procs.start("fast-engine", engine, cpu=args.harness_cpu, log_dir=args.work)]
    upstream = f"http://127.0.0.1:{port}"
    try:
        procs.wait_ready(children[0], upstream + "/health")
        gateway, url = start_gateway(REPO, "gateway", args.work, upstream, args.gateway_cpu)
        children.append(gateway)
        print(report(asyncio.run(measure(url, model, volume, args))))
    finally:
        for child in children:
            procs.stop(child)


if __name__ == "__main__":
    main()
