"""Retrieval concurrency: every instance of a 300-slice 512x512 CT series from Orthanc on loopback, with the
gateway's own WADO-RS client (serve/gateway/dicomweb/client.py) at 1, 4 and 16 requests in flight; the orders
rotate each round so that drift on a shared machine spreads over all arms."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from serve.config.dicomweb import DicomwebServer
from serve.gateway.dicomweb.client import Fetcher
from serve.gateway.dicomweb.credentials import Credential
from serve.gateway.dicomweb.request import Reference
from testkit.orthanc import Orthanc
from testkit.pacs_studies import Series


async def fetch_all(server: DicomwebServer, ref: Reference, instances: list[str]) -> tuple[float, int]:
    """Wall seconds and bytes for every instance, `server.max_parallel` at a time."""
    async with Fetcher(server, Credential(None, "none")) as fetch:
        started = time.perf_counter()
        objects = await asyncio.gather(*(fetch.instance(ref, uid) for uid in instances))
        return time.perf_counter() - started, sum(len(o) for o in objects)


def run(
    pacs: Orthanc, series: Series, instances: list[str], parallel: tuple[int, ...], rounds: int
) -> dict[str, Any]:
    walls: dict[int, list[float]] = {p: [] for p in parallel}
    size = 0
    for k in range(rounds):
        order = parallel[k % len(parallel) :] + parallel[: k % len(parallel)]
        for p in order:
            server = DicomwebServer(name="orthanc", base_url=pacs.dicomweb_url, max_parallel=p)
            ref = Reference("bench", server, series.study, series.series, None)
            wall, size = asyncio.run(fetch_all(server, ref, instances))
            walls[p].append(wall)
    return {
        "instances": len(instances),
        "mb": size / 1e6,
        "rounds": rounds,
        "runs": [
            {
                "parallel": p,
                "wall_s_median": statistics.median(walls[p]),
                "wall_s": walls[p],
                "instances_per_s": len(instances) / statistics.median(walls[p]),
                "mb_per_s": size / 1e6 / statistics.median(walls[p]),
            }
            for p in parallel
        ],
    }


__all__ = ["run"]
