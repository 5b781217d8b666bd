"""Scale-out benchmark: one topology's stack (`serve up`), streamed load through the gateway, requests/s, TTFT
percentiles and the split of requests across replicas read from the engines' own metrics.

    python -m benchmarks.scaleout --profile configs/cpu-demo-dp2.yaml --requests 64 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from collections import Counter

import aiohttp

ACK = {"HAI-DEF-Acknowledged": "2024-11-15"}
# vLLM: per engine rank; Ray Serve LLM: per replica (its metrics port re-exports vLLM's as ray_vllm_*).
SUCCESS = re.compile(r"^(?:ray_)?vllm[:_]request_success_total\{([^}]*)\}\s+([0-9.eE+-]+)", re.MULTILINE)
# Ray's series carry both ReplicaId and vLLM's own engine="0": the replica is what splits them.
REPLICA_LABELS = (re.compile(r'ReplicaId="([^"]*)"'), re.compile(r'engine="([^"]*)"'))
SETTLE_S = 30.0  # Ray exports its replicas' metrics every few seconds: wait until the counts add up


def split_by_replica(text: str) -> Counter[str]:
    """Finished requests per engine rank or Ray replica, summed over finish reasons (pure)."""
    counts: Counter[str] = Counter()
    for labels, value in SUCCESS.findall(text):
        found = next((m for m in (p.search(labels) for p in REPLICA_LABELS) if m), None)
        if found:
            counts[found.group(1)] += int(float(value))
    return counts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def one(session: aiohttp.ClientSession, url: str, model: str, i: int, max_tokens: int) -> float:
    body = {
        "model": model,
        "stream": True,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": f"Question {i}: what is a pneumothorax?"}],
    }
    started = time.perf_counter()
    first = None
    async with session.post(url + "/v1/chat/completions", json=body, headers=ACK) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            if first is None and line.startswith(b"data: {") and b'"content":"' in line:
                first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


async def load(url: str, model: str, requests: int, concurrency: int, max_tokens: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=600)

    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def bounded(i: int) -> float:
            async with gate:
                return await one(session, url, model, i, max_tokens)

        await one(session, url, model, -1, max_tokens)  # warm-up, not counted
        began = time.perf_counter()
        ttfts = await asyncio.gather(*(bounded(i) for i in range(requests)))
        took = time.perf_counter() - began
    return {
        "requests": requests,
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "seconds": round(took, 2),
        "requests_per_s": round(requests / took, 3),
        "ttft_p50_s": round(statistics.median(ttfts), 3),
        "ttft_p99_s": round(percentile(list(ttfts), 99), 3),
    }


async def scrape(url: str) -> str:
    try:
        async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
            return await r.text() if r.status == 200 else ""
    except (TimeoutError, aiohttp.ClientError):
        return ""


async def measure(gateway: str, metrics_url: str, model: str, args: argparse.Namespace) -> dict:
    before = split_by_replica(await scrape(metrics_url))
    result = await load(gateway, model, args.requests, args.concurrency, args.max_tokens)
    expected = sum(before.values()) + args.requests + 1  # and the warm-up
    deadline = time.monotonic() + SETTLE_S
    after = split_by_replica(await scrape(metrics_url))
    while sum(after.values()) < expected and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        after = split_by_replica(await scrape(metrics_url))
    result["split"] = {k: after[k] - before.get(k, 0) for k in sorted(after)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--metrics", help="engine metrics URL (default: the gateway's /metrics/engine)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    metrics = args.metrics or args.gateway + "/metrics/engine"
    print(json.dumps(asyncio.run(measure(args.gateway, metrics, args.model, args))))


if __name__ == "__main__":
    main()
