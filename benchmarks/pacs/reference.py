"""An 85-slice CT series asked about by reference vs sent inline, through the whole stack (`python -m serve up`,
CPU demo engine) with Orthanc holding the series: bytes the client sends, the gateway's own time (its access log's
gateway_ms: body, retrieval and preprocessing, until the engine is called) and TTFT, arms interleaved (ABBA)."""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.core import stack
from testkit.pacs_studies import Series

ACK = {"HAI-DEF-Acknowledged": "2024-11-15", "Content-Type": "application/json"}
INSTRUCTION = (
    "You are an instructor teaching medical students. Please review the slices provided below carefully."
)


def body(model: str, sources: list[str]) -> bytes:
    part = {"type": "image_dicom", "image_dicom": {"dicom_source": sources}}
    content = [{"type": "text", "text": INSTRUCTION}, part, {"type": "text", "text": "\n\nFindings?"}]
    request = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8}
    return orjson.dumps({**request, "temperature": 0, "stream": True})


def start_stack(work: Path, dicomweb_url: str) -> stack.Stack:
    """The CPU demo stack with the run's Orthanc allow-listed, as a hospital's PACS would be."""
    raw = stack.demo_profile()
    gateway = raw.setdefault("gateway", {})
    servers = [{"name": "orthanc", "base_url": dicomweb_url}]
    gateway["images"] = {**gateway.get("images", {}), "dicomweb": {"servers": servers}}
    return stack.start(work, raw)


async def one(session: aiohttp.ClientSession, url: str, raw: bytes) -> dict[str, Any]:
    started = time.perf_counter()
    async with session.post(url + "/v1/chat/completions", data=raw, headers=ACK) as resp:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {(await resp.text())[:300]}")
        ttft = None
        async for line in resp.content:
            if ttft is None and line.startswith(b"data: {") and b'"content"' in line:
                ttft = time.perf_counter() - started
        return {
            "request_id": resp.headers.get("X-Request-Id"),
            "ttft_s": ttft,
            "e2e_s": time.perf_counter() - started,
        }


def gateway_ms(log: Path) -> dict[str, float]:
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"gateway_ms"' in line:
            with_id = json.loads(line)
            found[with_id.get("request_id")] = with_id["gateway_ms"]
    return found


async def interleaved(url: str, arms: dict[str, bytes], rounds: int) -> list[dict[str, Any]]:
    records = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        for raw in arms.values():  # warm-up: the first volume pays for worker imports and tables
            await one(session, url, raw)
        names = list(arms)
        for k in range(rounds):
            for name in names if k % 2 == 0 else names[::-1]:
                records.append({"arm": name, **await one(session, url, arms[name])})
    return records


def run(work: Path, dicomweb_url: str, series: Series, objects: list[bytes], rounds: int) -> dict[str, Any]:
    running = start_stack(work, dicomweb_url)
    try:
        inline = ["data:application/dicom;base64," + base64.b64encode(o).decode() for o in objects]
        model = running.model
        arms = {"inline": body(model, inline), "reference": body(model, [series.url(dicomweb_url)])}
        records = asyncio.run(interleaved(running.gateway_url, arms, rounds))
        time.sleep(1.0)  # the access log lines are flushed after each answer
        own = gateway_ms(running.child.log)
    finally:
        stack.stop(running)
    summary = {}
    for name, raw in arms.items():
        mine = [r for r in records if r["arm"] == name]
        summary[name] = {
            "client_bytes": len(raw),
            "ttft_s_median": statistics.median(r["ttft_s"] for r in mine),
            "gateway_ms_median": statistics.median(
                own[r["request_id"]] for r in mine if r["request_id"] in own
            ),
            "n": len(mine),
        }
    return {"slices": len(objects), "rounds": rounds, "arms": summary, "records": records}


__all__ = ["run"]
