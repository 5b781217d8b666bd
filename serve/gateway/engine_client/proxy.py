"""Forwards a prepared request to the engine: whole JSON answers, or SSE streams relayed as they come."""

from __future__ import annotations

import logging
import time

import aiohttp
import orjson
from aiohttp import web

from serve.gateway.engine_client.client import Response, Upstream, UpstreamError
from serve.gateway.errors import GatewayError, engine_failed, engine_timeout, engine_unavailable
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite.request_body import Prepared
from serve.gateway.rewrite.sse import StreamRewriter
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
    async with await upstream.post(path, prep.body, ctx.upstream_headers) as resp:
        body = await resp.read()
        t0 = time.perf_counter()
        if resp.status >= 500:
            ctx.metrics.upstream_errors.labels("status_5xx").inc()
        if resp.status != 200 or resp.content_type != JSON:
            rec.status = resp.status
            return _passthrough(resp.status, body, resp.headers, ctx.headers)
    answer = orjson.loads(body)
    rec.prompt_tokens, rec.completion_tokens = ctx.metrics.count_tokens(rec.model, answer.get("usage"))
    disc.attach_to_json(answer, ctx.disclaimer, append=ctx.append)
    rec.status = 200
    out = web.Response(body=orjson.dumps(answer), content_type=JSON, headers=ctx.headers)
    rec.overhead += time.perf_counter() - t0
    return out


async def stream(
    request: web.Request, upstream: Upstream, path: str, prep: Prepared, rec: Record, ctx: Context
) -> web.StreamResponse:
    async with await upstream.post(path, prep.body, ctx.upstream_headers) as resp:
        if resp.status != 200:
            rec.status = resp.status
            if resp.status >= 500:
                ctx.metrics.upstream_errors.labels("status_5xx").inc()
            return _passthrough(resp.status, await resp.read(), resp.headers, ctx.headers)
        out = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **ctx.headers}
        )
        await out.prepare(request)
        rec.status = 200
        rewriter = StreamRewriter(
            chat=ctx.chat, disclaimer=ctx.disclaimer, append=ctx.append, strip_usage=prep.strip_usage
        )
        try:
            await _relay(resp, out, rewriter, rec)
        except ClientGone:
            rec.status = CLIENT_CLOSED  # leaving the `async with` closes the engine connection: vLLM aborts
            return out
        except UpstreamError as exc:
            err = upstream_error(exc, ctx.metrics)
            rec.status, rec.error_code = err.status, err.code
            await out.write(err.to_sse())
        except Exception as exc:  # the head is sent: end in band, never a cut connection (type only, no body)
            log.error("stream %s ended by an unexpected %s", rec.request_id, type(exc).__name__)
            err = engine_failed("the stream could not be relayed")
            rec.status, rec.error_code = err.status, err.code
            await _write(out, err.to_sse())
        finally:
            observe_stream(rec, rewriter, ctx.metrics)
        await out.write_eof()
        return out


async def _relay(resp: Response, out: web.StreamResponse, rewriter: StreamRewriter, rec: Record) -> None:
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

    __slots__ = ("append", "chat", "disclaimer", "headers", "metrics", "upstream_headers")

    def __init__(
        self,
        *,
        chat: bool,
        disclaimer: str,
        append: bool,
        headers: dict[str, str],
        upstream_headers: dict[str, str],
        metrics: GatewayMetrics,
    ) -> None:
        self.chat, self.disclaimer, self.append = chat, disclaimer, append
        self.headers, self.upstream_headers, self.metrics = headers, upstream_headers, metrics
