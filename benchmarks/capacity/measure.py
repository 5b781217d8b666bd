"""Capacity measurements: closed loops against each proxy in turn, with the CPU every process spent on them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from benchmarks.capacity.stack import MODEL, Proxy
from benchmarks.core import client, procs
from benchmarks.core.raw_client import RawClient, request_bytes
from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import Budget, SendOne, closed_loop
from benchmarks.core.stats import summarize

HARNESS_SATURATED = 0.9  # of the harness core: the proxy figures are then a floor


@dataclass(frozen=True)
class Measure:
    name: str  # nonstream_high | stream_high | nonstream_c1 | stream_c1
    stream: bool
    concurrency: int
    duration_s: float


@dataclass
class Sample:
    """One measurement's records and the CPU seconds each process spent during it."""

    records: list[RequestRecord]
    wall_s: float
    generator_cpu_s: float
    upstream_cpu_s: float
    proxy_cpu_s: float | None


def body(stream: bool, model: str = MODEL) -> bytes:
    req: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "What is a pneumothorax?"}],
    }
    if stream:
        req.update(stream=True, stream_options={"include_usage": True})
    return json.dumps(req, separators=(",", ":")).encode()


def sender(
    session: aiohttp.ClientSession | None, proxy: Proxy, m: Measure, model: str
) -> tuple[SendOne, Callable[[], None]]:
    """(send, close) with the raw client, or with aiohttp when a session is given."""
    payload, headers = body(m.stream, model), client.request_headers()
    if session is not None:

        async def send(i: int) -> RequestRecord:
            return await client.send(session, proxy.target, payload, stream=m.stream, headers=headers)

        return send, lambda: None
    raw = RawClient(proxy.target)
    request = request_bytes(proxy.target, payload, headers)
    return (lambda i: raw.send(request, stream=m.stream)), raw.close


async def measure(
    session: aiohttp.ClientSession | None,
    proxy: Proxy,
    upstream_pid: int,
    m: Measure,
    warmup_s: float,
    model: str = MODEL,
) -> Sample:
    send, close = sender(session, proxy, m, model)
    await closed_loop(send, m.concurrency, Budget(duration_s=warmup_s))
    pid = proxy.child.pid if proxy.child else None
    gen0, up0 = time.process_time(), procs.cpu_seconds(upstream_pid)
    prox0 = procs.cpu_seconds(pid) if pid else 0.0
    t0 = time.perf_counter()
    records = await closed_loop(send, m.concurrency, Budget(duration_s=m.duration_s))
    wall = time.perf_counter() - t0
    prox = procs.cpu_seconds(pid) - prox0 if pid else None
    close()
    return Sample(records, wall, time.process_time() - gen0, procs.cpu_seconds(upstream_pid) - up0, prox)


def summarize_samples(samples: list[Sample]) -> dict[str, Any]:
    """Pooled over rounds: records together, walls and CPU summed; CPU as a share of a core and per request."""
    records = [r for s in samples for r in s.records]
    wall = sum(s.wall_s for s in samples)
    gen, up = sum(s.generator_cpu_s for s in samples), sum(s.upstream_cpu_s for s in samples)
    prox = None if samples[0].proxy_cpu_s is None else sum(s.proxy_cpu_s or 0.0 for s in samples)
    out = summarize(records, wall, {})
    out.update(
        generator_cpu_fraction=gen / wall,
        upstream_cpu_fraction=up / wall,
        harness_cpu_fraction=(gen + up) / wall,
        proxy_cpu_fraction=None if prox is None else prox / wall,
        proxy_cpu_per_request_ms=None if prox is None or not records else 1000 * prox / len(records),
    )
    out["harness_saturated"] = out["harness_cpu_fraction"] > HARNESS_SATURATED
    return out


def order(proxies: list[Proxy], measures: list[Measure], rounds: int) -> list[tuple[int, Measure, Proxy]]:
    """Measure by measure, every proxy back to back, the first one alternating (as the load test's sweep)."""
    out = []
    for r in range(rounds):
        for i, m in enumerate(measures):
            ps = proxies if (i + r) % 2 == 0 else proxies[::-1]
            out += [(r, m, p) for p in ps]
    return out


async def run_all(
    proxies: list[Proxy],
    upstream_pid: int,
    measures: list[Measure],
    *,
    rounds: int = 1,
    warmup_s: float = 1.0,
    model: str = MODEL,
    use_aiohttp: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """{proxy name: {measure name: summary pooled over rounds}}."""
    samples: dict[tuple[str, str], list[Sample]] = {}
    async with client.make_session(timeout_s=60) as aiohttp_session:
        session = aiohttp_session if use_aiohttp else None
        for r, m, proxy in order(proxies, measures, rounds):
            sample = await measure(session, proxy, upstream_pid, m, warmup_s, model)
            samples.setdefault((proxy.target.name, m.name), []).append(sample)
            s = summarize_samples([sample])
            say(
                f"round {r + 1}: {proxy.target.name:<8} {m.name:<15} {s['requests_per_s']:>8,.0f}/s  "
                f"p50 {s['e2e_ms']['p50'] or 0:7.2f} ms  first chunk p50 {s['ttft_ms']['p50'] or 0:7.2f} ms  "
                f"harness CPU {100 * s['harness_cpu_fraction']:3.0f}%  errors {s['errors'] or '-'}"
            )
    results: dict[str, dict[str, Any]] = {}
    for (name, measure_name), group in samples.items():
        results.setdefault(name, {})[measure_name] = summarize_samples(group)
    return results
