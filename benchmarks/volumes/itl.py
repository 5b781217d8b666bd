"""Text streams beside volume preprocessing: the ITL of 16 text streams through one gateway pinned to one core
(its image workers too) on the fast fake engine, in windows with and without 85-slice CT volumes being posted
beside them, interleaved per round. The harness (this process, the volume poster, the fake engine) is on the
other core, and the volumes are posted from a process of their own: sending 60 MB holds the sender's loop, which
would show as gaps in the streams it reads. A third arm posts the same volumes straight to the fake engine: the
harness's own share of the step (its core sends the 60 MB and takes in the forwarded body either way).

    python -m benchmarks.volumes.itl [--rounds 3] [--window-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from benchmarks.core import client, gateway_scrape, procs
from benchmarks.core.stats import percentile
from benchmarks.core.workload import Workload, request_body
from benchmarks.images.stall import HEADERS, start_gateway
from benchmarks.volumes.cost import request_body as volume_body
from testkit.ct_series import ct_series

REPO = Path(__file__).resolve().parents[2]


async def window(
    session,
    target,
    model: str,
    poster: ProcessPoolExecutor,
    post_to: str | None,
    streams: int,
    seconds: float,
) -> dict[str, Any]:
    end, gaps = time.monotonic() + seconds, []
    text = Workload("text", model, 64, 64)

    async def streamer(k: int) -> None:
        i = k
        while time.monotonic() < end:
            _, body = request_body(text, i)
            gaps.extend((await client.send(session, target, body, kind="text", headers=HEADERS)).itl)
            i += streams

    async def volumes() -> list[tuple[int, float]]:
        if post_to is None:
            return []
        return await asyncio.get_running_loop().run_in_executor(poster, post_volumes, post_to, end)

    *_, posted = await asyncio.gather(*(streamer(k) for k in range(streams)), volumes())
    return {"gaps": gaps, "posted": posted}


VOLUME: bytes = b""  # the poster process's request, read once when it starts


def start_poster(path: Path, cpu: int) -> None:
    global VOLUME
    os.sched_setaffinity(0, {cpu})
    # Only what the harness core has spare: the client reading the streams must never wait for the poster.
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    VOLUME = path.read_bytes()


def post_volumes(url: str, end: float) -> list[tuple[int, float]]:
    """In the poster process: volumes one after another until `end` (time.monotonic is system-wide)."""

    async def run() -> list[tuple[int, float]]:
        posted = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            while time.monotonic() < end:
                started = time.perf_counter()
                async with session.post(url, data=VOLUME, headers=HEADERS) as resp:
                    await resp.read()
                posted.append((resp.status, time.perf_counter() - started))
        return posted

    return asyncio.run(run())


async def measure(
    url: str, upstream: str, model: str, poster: ProcessPoolExecutor, args: argparse.Namespace
) -> dict[str, Any]:
    target = client.Target("gateway", url, expect_disclaimer=True)
    arms = [
        ("text only", None),
        ("with volumes", target.chat_url),
        ("volumes straight to the engine", client.Target("engine", upstream).chat_url),
    ]
    out: dict[str, Any] = {arm: {"gaps": [], "posted": [], "lag": Counter()} for arm, _ in arms}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        for r in range(args.rounds):
            for arm, post_to in arms[r % len(arms) :] + arms[: r % len(arms)]:
                before = await gateway_scrape.scrape(session, url)
                got = await window(session, target, model, poster, post_to, args.streams, args.window_s)
                out[arm]["lag"].update(
                    gateway_scrape.loop_lag_over(before, await gateway_scrape.scrape(session, url))
                )
                out[arm]["gaps"] += got["gaps"]
                out[arm]["posted"] += got["posted"]
    return out


def report(out: dict[str, Any]) -> str:
    """The streams' ITL as the client saw it, and the gateway's own loop lag (its 100 ms timer: samples taken,
    and how many ran late by more than 2.5, 5 and 10 ms): the harness core's own work does not move it."""
    lines = [
        "| arm | token gaps | ITL p50 ms | ITL p99 ms | ITL max ms | volumes posted | ok | volume p50 s "
        "| loop lag samples | late > 2.5 / 5 / 10 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, got in out.items():
        g, ok, lag = got["gaps"], [s for status, s in got["posted"] if status == 200], got["lag"]
        p50 = f"{percentile(ok, 50):.2f}" if ok else "-"
        lines.append(
            f"| {arm} | {len(g)} | {percentile(g, 50) * 1e3:.1f} | {percentile(g, 99) * 1e3:.1f} | "
            f"{max(g) * 1e3:.1f} | {len(got['posted'])} | {len(ok)} | {p50} | {lag[0.0]} | "
            f"{lag[0.0025]} / {lag[0.005]} / {lag[0.01]} |"
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
    (args.work / "volume.json").write_bytes(volume)
    engine = [sys.executable, "-m", "testkit.fast_engine", "--port", "0", "--chunks", "100"]
    engine += ["--gap-ms", "20", "--model", model]
    children = [procs.start("fast-engine", engine, cpu=args.harness_cpu, log_dir=args.work)]
    try:
        upstream = f"http://127.0.0.1:{procs.wait_port(children[0], 'fast fake upstream on ')}"
        procs.wait_ready(children[0], upstream + "/health")
        gateway, url = start_gateway(REPO, "gateway", args.work, upstream, args.gateway_cpu)
        children.append(gateway)
        os.sched_setaffinity(0, {args.harness_cpu})
        poster = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_poster,
            initargs=(args.work / "volume.json", args.harness_cpu),
        )
        with poster:
            print(report(asyncio.run(measure(url, upstream, model, poster, args))))
    finally:
        for child in children:
            procs.stop(child)


if __name__ == "__main__":
    main()
