"""What the hardening benchmarks (soak, overload) send: text chat requests of one shape to one target."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from benchmarks.core import client
from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import SendOne
from benchmarks.core.workload import Workload, request_body


@dataclass(frozen=True)
class Shape:
    input_tokens: int = 128
    output_tokens: int = 32
    seed: int = 0

    def workload(self, model: str) -> Workload:
        return Workload("text", model, self.input_tokens, self.output_tokens, seed=self.seed)


async def identify(
    session: aiohttp.ClientSession, url: str, name: str, headers: dict[str, str]
) -> tuple[client.Target, str]:
    """(target, first served model); a gateway target expects the disclaimer on every answer."""
    url = client.base_url(url)
    probe = await client.probe(session, url, headers)
    if "error" in probe:
        raise SystemExit(f"error: cannot reach {url}: {probe['error']}")
    if not probe["models"]:
        raise SystemExit(f"error: {url} lists no model on /v1/models")
    return client.Target(name, url, expect_disclaimer=probe["gateway"]), probe["models"][0]


def sender(
    session: aiohttp.ClientSession, target: client.Target, workload: Workload, headers: dict[str, str]
) -> SendOne:
    """Request i is the workload's i-th prompt (distinct prompts: no prefix-cache shortcut)."""

    async def send(i: int) -> RequestRecord:
        kind, body = request_body(workload, i)
        return await client.send(session, target, body, kind=kind, headers=headers)

    return send
