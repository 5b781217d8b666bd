"""Forwards a prepared request to the engine: whole JSON answers, or SSE streams relayed as they come."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from serve.gateway.dependencies import GATEWAY
from serve.gateway.engine_client.client import Response, Upstream, UpstreamError
from serve.gateway.errors import (
    GatewayError,
    engine_failed,
    engine_timeout,
    engine_unavailable,
    shutting_down,
)
from serve.gateway.rewrite.answers import Answers, Relay
from serve.gateway.rewrite.request_body import Prepared
from serve.gateway.telemetry.metrics import GatewayMetrics
from serve.gateway.telemetry.records import CLIENT_CLOSED, Record, observe_stream

log = logging.getLogger("serve.gateway")
JSON = "application/json"
# Response headers of the engine that the client may see; hop-by-hop and framing headers are ours to set.
RELAYED_RESPONSE_HEADERS = (("Content-Type", "content-type"),)  # (as sent, as the client stores it)


def upstream_error(exc: UpstreamError, metrics: GatewayMetrics) -> GatewayError:
    """An engine failure as the error the client sees; counted by kind."""
    if exc.kind == "connect":
        err = engine_unavailable(str(exc))
    elif exc.kind == "shutdown":  # ended by this gateway's drain, not the engine's fault: not counted
        return shutting_down()
    elif exc.kind == "timeout":
        err = engine_timeout(str(exc))
    else:
        err = engine_failed(str(exc))
    metrics.upstream_errors.labels(exc.kind).inc()
    return err


def _passthrough(
    status: int, body: bytes, upstream_headers: dict[str, str], headers: dict[str, str]
) -> web.Response:
    relayed = {h: upstream_headers[k] for h, k in RELAYED_RESPONSE_HEADERS if k in upstream_headers}
    return web.Response(status=status, body=body, headers={**relayed, **headers})


async def unary(upstream: Upstream, path: str, prep: Prepared, rec: Record, ctx: Context) -> web.Response:
    async with await upstream.post(path, prep.body, ctx.upstream_headers, stream=False) as resp:
        body = await resp.read()
        t0 = time.perf_counter()
        if resp.status >= 500:
            ctx.metrics.upstream_errors.labels("status_5xx").inc()
        if resp.status != 200 or resp.content_type != JSON:
            rec.status = resp.status
            return _passthrough(resp.status, body, resp.headers, ctx.headers)
    answer = _json_object(body)
    if answer is None:  # a 200 that is no answer: the engine's fault, as a broken connection would be
        ctx.metrics.upstream_errors.labels("malformed").inc()
        raise engine_failed("its answer was not a JSON object")
    rec.prompt_tokens, rec.completion_tokens = ctx.metrics.count_tokens(rec.model, ctx.answers.usage(answer))
    ctx.answers.attach(answer, prep)
    rec.status = 200
    out = web.Response(body=orjson.dumps(answer), content_type=JSON, headers=ctx.headers)
    rec.overhead += time.perf_counter() - t0
    return out


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


async def stream(
    request: web.Request, upstream: Upstream, path: str, prep: Prepared, rec: Record, ctx: Context
) -> web.StreamResponse:
    async with await upstream.post(path, prep.body, ctx.upstream_headers, stream=True) as resp:
        if resp.status != 200:
            rec.status = resp.status
            if resp.status >= 500:
                ctx.metrics.upstream_errors.labels("status_5xx").inc()
            return _passthrough(resp.status, await resp.read(), resp.headers, ctx.headers)
        out = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **ctx.headers}
        )
        if request.app[GATEWAY].lifecycle.draining:
            out.force_close()  # the client's next request opens a connection through the balancer
        await out.prepare(request)
        rec.status = 200
        rewriter = ctx.answers.relay(prep)
        await _relay_to_the_end(resp, out, rewriter, rec, ctx)
        return out


async def _relay_to_the_end(
    resp: Response, out: web.StreamResponse, rewriter: Relay, rec: Record, ctx: Context
) -> None:
    """Everything after the stream's head, in one place: the head is sent, so a failure can no longer be an
    HTTP status. It ends in band (an error frame and [DONE]), and nothing but a cancellation leaves here:
    an exception escaping to the route would be answered as a second response on the same connection,
    which the client sees as a cut, corrupt stream."""
    err: GatewayError | None = None
    try:
        await _relay(resp, out, rewriter, rec)
    except ClientGone:
        rec.status = CLIENT_CLOSED  # leaving the `async with` closes the engine connection: vLLM aborts
    except UpstreamError as exc:
        err = upstream_error(exc, ctx.metrics)
    except Exception as exc:  # a bug in the relay: type only in the log, never the stream's content
        log.error("stream %s ended by an unexpected %s", rec.request_id, type(exc).__name__)
        err = engine_failed("the stream could not be relayed")
    try:
        observe_stream(rec, rewriter, ctx.metrics)
    except Exception as exc:  # metrics must never cost the answer its end
        log.error("stream %s: metrics failed with an unexpected %s", rec.request_id, type(exc).__name__)
    if rec.status == CLIENT_CLOSED:
        return
    if err is not None:
        rec.status, rec.error_code = err.status, err.code
    try:
        if err is not None:
            await out.write(err.to_sse())
        await out.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        rec.status = CLIENT_CLOSED


async def _relay(resp: Response, out: web.StreamResponse, rewriter: Relay, rec: Record) -> None:
    perf, feed, write = time.perf_counter, rewriter.feed, out.write  # the per-chunk loop: locals only
    async for data in resp:
        t0 = perf()
        frames = feed(data, t0)
        rec.overhead += perf() - t0
        if frames:
            try:
                await write(frames)
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                raise ClientGone from None
    tail = rewriter.close()
    if tail:
        rec.status, rec.error_code = 502, "engine_error"
        await _write(out, tail)


class ClientGone(Exception):
    """The client closed its connection mid-stream."""


async def _write(out: web.StreamResponse, data: bytes) -> None:
    try:
        await out.write(data)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        raise ClientGone from None


class Context:
    """What one request's forwarding needs to know; built once per request by the app."""

    __slots__ = ("answers", "headers", "metrics", "upstream_headers")

    def __init__(
        self,
        *,
        answers: Answers,  # the API's way of putting the disclaimer on answers (rewrite/answers.py)
        headers: dict[str, str],
        upstream_headers: dict[str, str],
        metrics: GatewayMetrics,
    ) -> None:
        self.answers = answers
        self.headers, self.upstream_headers, self.metrics = headers, upstream_headers, metrics
