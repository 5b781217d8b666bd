"""Peak gateway RSS while several large series arrive at once: a gateway process of our own (its image workers
included) in front of the fake engine, N concurrent requests of a 300-slice 512x512 CT, RSS sampled every 20 ms."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from benchmarks.core import procs
from benchmarks.volumes.cost import request_body
from testkit.ct_series import ct_series

ROOT = Path(__file__).resolve().parents[2]
ACK = {"HAI-DEF-Acknowledged": "2024-11-15"}
RETRIES = 60


class Peaks:
    """The largest RSS seen of the gateway's main process, and of it with all its descendants (the workers)."""

    def __init__(self, pid: int) -> None:
        self.root, self.main, self.total, self._stop = psutil.Process(pid), 0, 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                main = self.root.memory_info().rss
                kids = sum(p.memory_info().rss for p in self.root.children(recursive=True))
            except psutil.Error:
                continue
            self.main, self.total = max(self.main, main), max(self.total, main + kids)

    def __enter__(self) -> Peaks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()


def start_stack(work: Path, size: int) -> tuple[list[procs.Child], str, int]:
    engine_port = procs.free_port()
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
    raw["gateway"] = {
        "port": 0,
        "terms": {"database": str(work / "acks.sqlite3")},
        "images": {"model_input_size": size},
        "access_log": False,
    }
    profile = work / "profile.yaml"
    profile.write_text(yaml.safe_dump(raw))
    model = raw["model"]["served_name"]
    engine = procs.start(
        "fake-engine",
        [
            sys.executable,
            "-m",
            "testkit.fake_engine",
            "--port",
            str(engine_port),
            "--model",
            model,
            "--gap-ms",
            "1",
        ],
        cpu=None,
        log_dir=work,
    )
    upstream = f"http://127.0.0.1:{engine_port}"
    procs.wait_ready(engine, upstream + "/health", 60)
    gateway, url = procs.start_gateway("gateway", profile, upstream, cpu=None, log_dir=work)
    return [gateway, engine], url, gateway.pid


async def send_all(url: str, body: bytes, count: int) -> tuple[list[int | str], int]:
    """Every request until it is answered, as a client honouring Retry-After would (a refused body is sent
    again a second later); the final statuses and how many refusals (503 buffer full, 429 jobs) came first."""
    timeout = aiohttp.ClientTimeout(total=900)
    headers = {**ACK, "Content-Type": "application/json"}
    refused = 0
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def attempt() -> int | str:
            try:
                async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status
            except aiohttp.ClientError:  # a 503 buffer_full closes the connection while the body is sent
                return "closed"

        async def one() -> int | str:
            nonlocal refused
            for _ in range(RETRIES):
                status = await attempt()
                if status not in (503, 429, "closed"):
                    return status
                refused += 1
                await asyncio.sleep(1.0)
            return status

        return list(await asyncio.gather(*(one() for _ in range(count)))), refused


def run(work: Path, requests: int, slices: int, size: int) -> dict[str, Any]:
    series = ct_series(slices, 512, seed=11)
    body = request_body(series.objects).replace(b'"bench-model"', b'"demo-tiny-gemma3-random"')
    del series
    children, url, pid = start_stack(work, size)
    try:
        idle = psutil.Process(pid).memory_info().rss
        with Peaks(pid) as peaks:
            started = time.perf_counter()
            statuses, refused = asyncio.run(send_all(url, body, requests))
            wall = time.perf_counter() - started
    finally:
        for child in children:
            procs.stop(child)
    return {
        "requests": requests,
        "slices": slices,
        "body_mb": len(body) / 1e6,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses), key=str)},
        "refusals_before_admission": refused,
        "idle_rss_mb": idle / 2**20,
        "peak_main_rss_mb": peaks.main / 2**20,
        "peak_total_rss_mb": peaks.total / 2**20,
        "wall_s": wall,
    }
