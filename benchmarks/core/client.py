"""The lean HTTP side of the load tester: one aiohttp session, one request -> one RequestRecord, target probes.

Raw aiohttp and byte-level SSE reading, not the openai SDK: at high concurrency the SDK's per-chunk pydantic
parsing costs the generator more CPU than the gateway it measures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from benchmarks.core import records as R
from benchmarks.core.records import RequestRecord
from benchmarks.core.sse import StreamParser
from serve.terms import ACK_HEADER, TERMS_VERSION

DEFAULT_URL = "http://127.0.0.1:8000"  # the gateway `make serve` starts

CHAT_PATH = "/v1/chat/completions"
Clock = Callable[[], float]


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str  # scheme://host:port, no /v1
    expect_disclaimer: bool = False

    @property
    def chat_url(self) -> str:
        return self.base_url + CHAT_PATH


def base_url(url: str) -> str:
    """Accept a base URL with or without the /v1 an OpenAI client would be given."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def parse_target(text: str, index: int = 0) -> tuple[str, str]:
    """`name=URL` (or a bare URL, named target<index>)."""
    name, sep, url = text.partition("=")
    if not sep or "://" in name:
        return f"target{index}", base_url(text)
    return name.strip(), base_url(url.strip())


def request_headers(api_key: str | None = None) -> dict[str, str]:
    # The terms acknowledgement goes on every request: the gateway needs it and vLLM ignores it.
    headers = {"Content-Type": "application/json", ACK_HEADER: TERMS_VERSION}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def make_session(timeout_s: float = 600.0) -> aiohttp.ClientSession:
    # limit=0: the generator's concurrency is the run's to set, not the connection pool's default of 100.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


async def send(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    *,
    kind: str = "text",
    stream: bool = True,
    headers: dict[str, str] | None = None,
    clock: Clock = time.perf_counter,
) -> RequestRecord:
    """One chat completion, timed; never raises for a failed request (the record says how it failed)."""
    rec = RequestRecord(kind=kind)
    t0 = clock()
    try:
        async with session.post(target.chat_url, data=body, headers=headers) as resp:
            rec.status = resp.status
            if resp.status != 200:
                await resp.read()
                rec.e2e = clock() - t0
                return rec.fail(R.http_error(resp.status))
            if stream:
                await _read_stream(resp, rec, t0, clock)
            else:
                await _read_json(resp, rec, t0, clock)
    except aiohttp.ClientConnectorError:
        return rec.fail(R.CONNECT)
    except TimeoutError:
        return rec.fail(R.TIMEOUT)
    except (aiohttp.ClientError, ConnectionError):
        return rec.fail(R.DISCONNECT)
    return verdict(rec, target.expect_disclaimer)


async def _read_stream(resp: aiohttp.ClientResponse, rec: RequestRecord, t0: float, clock: Clock) -> None:
    parser = StreamParser()
    async for data in resp.content.iter_any():
        parser.feed(data, clock())
    stream_outcome(rec, parser, t0, clock())


async def _read_json(resp: aiohttp.ClientResponse, rec: RequestRecord, t0: float, clock: Clock) -> None:
    raw = await resp.read()
    rec.e2e = rec.ttft = clock() - t0
    json_outcome(rec, raw)


def stream_outcome(rec: RequestRecord, parser: StreamParser, t0: float, end: float) -> None:
    """What a finished stream says about the request (any HTTP client can feed the parser)."""
    rec.e2e = end - t0
    rec.ttft = None if parser.first_at is None else parser.first_at - t0
    rec.itl, rec.chunks, rec.disclaimer = parser.gaps, parser.chunks, parser.disclaimer
    rec.output_tokens = parser.completion_tokens
    rec.prompt_tokens = parser.prompt_tokens
    if parser.error is not None:
        rec.error = R.STREAM_ERROR
    elif not parser.done:
        rec.error = R.INCOMPLETE
    elif parser.chunks == 0:
        rec.error = R.NO_CONTENT


def json_outcome(rec: RequestRecord, raw: bytes) -> None:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not answer.get("choices"):
        rec.error = R.BAD_BODY
        return
    usage = answer.get("usage") or {}
    rec.output_tokens, rec.prompt_tokens = usage.get("completion_tokens"), usage.get("prompt_tokens")
    rec.disclaimer = "disclaimer" in answer


def verdict(rec: RequestRecord, expect_disclaimer: bool) -> RequestRecord:
    """ok unless an error was seen; with the gateway, an answer without the disclaimer is an error too."""
    if rec.error is not None:
        return rec.fail(rec.error)
    if expect_disclaimer and not rec.disclaimer:
        return rec.fail(R.MISSING_DISCLAIMER)
    rec.ok = True
    return rec


async def probe(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """What a target is: our gateway (it serves /v1/terms) or a bare engine, and the models it serves."""
    info: dict[str, Any] = {"gateway": False, "models": []}
    try:
        async with session.get(url + "/v1/terms", headers=headers) as resp:
            info["gateway"] = resp.status == 200 and "disclaimer" in await resp.text()
        async with session.get(url + "/v1/models", headers=headers) as resp:
            if resp.status == 200:
                info["models"] = [m.get("id") for m in (await resp.json()).get("data", [])]
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info
