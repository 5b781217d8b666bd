"""The model routes: admission (key, terms, concurrency), request checks and rewrite, then forwarding."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

from serve import terms
from serve.gateway.admission import gate
from serve.gateway.admission.body import release_body
from serve.gateway.connections import write_timed_out
from serve.gateway.dependencies import GATEWAY, REQUEST_ID, Gateway, check_request_id, request_id
from serve.gateway.engine_client import proxy
from serve.gateway.engine_client.client import UpstreamError
from serve.gateway.errors import GatewayError, shutting_down, store_unavailable, unexpected
from serve.gateway.rewrite.answers import Answers, Choices
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.request_body import Prepared, finalize, parse, tenant_salt
from serve.gateway.stores.base import StoreUnavailable
from serve.gateway.telemetry.records import CLIENT_CLOSED, Record, finish

# What one API does between admission and the engine: read its body (raw, with the tenant's cache salt), check
# and rewrite it, and forward it (usually through send()). model_call runs it inside admission, a concurrency
# slot, metrics and error rendering, the same for every model route.
Forward = Callable[[web.Request, Gateway, Record, bytes, str | None], Awaitable[web.StreamResponse]]


async def model_call(request: web.Request, *, route: str, forward: Forward) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    rid = request_id(request)
    rec = Record(route, rid, time.perf_counter())
    life = gw.lifecycle
    gw.metrics.in_flight.labels(route).inc()
    life.enter()
    try:
        if life.closing:  # a keep-alive connection brought it after the port closed: the balancer retries it
            raise shutting_down()
        resp = await _model_call(request, gw, rec, forward)
        if life.draining and not resp.prepared:
            resp.force_close()  # the client's next request opens a connection through the balancer
        return resp
    except GatewayError as err:
        rec.status, rec.error_code = err.status, err.code
        return err.to_response(gw.response_headers(rid))
    except asyncio.CancelledError:
        rec.status = CLIENT_CLOSED
        raise
    except web.HTTPException as exc:  # aiohttp's own answers: the app's middleware renders them
        rec.status = exc.status
        raise
    except Exception as exc:  # a bug, not the client's fault: a 500 envelope, one log line, counted as such
        bug = unexpected(rid, exc)
        rec.status, rec.error_code = bug.status, bug.code
        return bug.to_response(gw.response_headers(rid))
    finally:
        if rec.status == CLIENT_CLOSED and write_timed_out(request):  # the client's side, not ours
            rec.status, rec.error_code = 408, "client_write_timeout"
        elif (
            rec.status == CLIENT_CLOSED and life.closing
        ):  # cancelled by the server's shutdown, not the client
            rec.status, rec.error_code = 503, "server_shutting_down"
        life.leave()
        gw.metrics.in_flight.labels(route).dec()
        finish(rec, gw.metrics, gw.access_log, time.perf_counter())


async def _model_call(request: web.Request, gw: Gateway, rec: Record, forward: Forward) -> web.StreamResponse:
    check_request_id(request)
    client = await admit(request, gw)
    # The body is read before a slot is taken: a slow or stalled body holds buffer bytes, never a slot.
    raw = await gw.bodies.read(request)
    try:
        with gw.limiter.slot(client.key_hash):
            return await forward(request, gw, rec, raw, tenant_salt(client.key_hash))
    finally:
        gw.bodies.release(len(raw))
        release_body(raw)


async def forward_choices(
    request: web.Request, gw: Gateway, rec: Record, raw: bytes, salt: str | None, *, chat: bool
) -> web.StreamResponse:
    parsed = parse(raw, gw.cfg.models, chat=chat, budget=gw.cfg.image_budget)
    rec.model, rec.stream = parsed.model, parsed.stream
    if parsed.images:  # decoding and resizing: in the image worker processes, off the event loop
        await ingest_images(parsed.images, gw.settings.images, gw.image_pool)
    disclaimer = gw.settings.disclaimer
    prep = finalize(parsed, disclaimer.text, chat=chat, cache_salt=salt, thinking=disclaimer.thinking)
    return await send(request, gw, rec, prep, Choices(chat, disclaimer.text, disclaimer.append_to_output))


async def send(
    request: web.Request, gw: Gateway, rec: Record, prep: Prepared, answers: Answers
) -> web.StreamResponse:
    """Forward a prepared request to the engine at the request's own path; `answers` puts the disclaimer on what
    comes back. Engine failures are raised as GatewayErrors."""
    ctx = proxy.Context(
        answers=answers,
        headers=gw.response_headers(rec.request_id),
        metrics=gw.metrics,
        upstream_headers={"Content-Type": proxy.JSON, REQUEST_ID: rec.request_id},
    )
    rec.overhead = time.perf_counter() - rec.started
    try:
        if prep.stream:
            return await proxy.stream(request, gw.upstream, request.path, prep, rec, ctx)
        return await proxy.unary(gw.upstream, request.path, prep, rec, ctx)
    except UpstreamError as exc:
        raise proxy.upstream_error(exc, gw.metrics) from None


async def admit(request: web.Request, gw: Gateway) -> gate.Client:
    """401 for a missing/unknown key (when keys are configured), 403 until the terms are acknowledged."""
    client = gate.identify(gw.keys, request.headers.get("Authorization"))
    version = gw.settings.terms.version
    try:
        reason = await gate.acknowledgement(request.headers.get(terms.ACK_HEADER), client, gw.store, version)
    except StoreUnavailable:
        raise store_unavailable() from None
    if reason is not None:
        gw.metrics.terms_refusals.labels(reason).inc()
        raise gate.refusal(gw.settings.terms, reason, gw.keys.enabled)
    return client


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[GATEWAY].settings.max_body_bytes
        raise GatewayError(
            413,
            f"The request body is larger than this gateway's limit of {limit} bytes.",
            "invalid_request_error",
            "request_too_large",
        ) from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await model_call(
        request, route="/v1/chat/completions", forward=partial(forward_choices, chat=True)
    )


async def completions(request: web.Request) -> web.StreamResponse:
    return await model_call(request, route="/v1/completions", forward=partial(forward_choices, chat=False))


async def models(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    headers = gw.response_headers(request_id(request))
    try:
        await admit(request, gw)
        async with await gw.upstream.get("/v1/models") as resp:
            body = await resp.read()
        return web.Response(status=resp.status, body=body, content_type=resp.content_type, headers=headers)
    except GatewayError as err:
        return err.to_response(headers)
    except UpstreamError as exc:
        return proxy.upstream_error(exc, gw.metrics).to_response(headers)
