"""The model routes: admission (key, terms, concurrency), request checks and rewrite, then forwarding."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from serve import terms
from serve.gateway.admission import gate
from serve.gateway.connections import write_timed_out
from serve.gateway.dependencies import GATEWAY, REQUEST_ID, Gateway, check_request_id, request_id
from serve.gateway.engine_client import proxy
from serve.gateway.engine_client.client import UpstreamError
from serve.gateway.errors import GatewayError, store_unavailable
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.request_body import finalize, parse, tenant_salt
from serve.gateway.stores.base import StoreUnavailable
from serve.gateway.telemetry.records import CLIENT_CLOSED, Record, finish


async def model_call(request: web.Request, *, route: str, chat: bool) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    rid = request_id(request)
    rec = Record(route, rid, time.perf_counter())
    gw.metrics.in_flight.labels(route).inc()
    try:
        return await _model_call(request, gw, rec, chat)
    except GatewayError as err:
        rec.status, rec.error_code = err.status, err.code
        return err.to_response(gw.response_headers(rid))
    except asyncio.CancelledError:
        rec.status = CLIENT_CLOSED
        raise
    finally:
        if rec.status == CLIENT_CLOSED and write_timed_out(request):  # the client's side, not ours
            rec.status, rec.error_code = 408, "client_write_timeout"
        gw.metrics.in_flight.labels(route).dec()
        finish(rec, gw.metrics, gw.access_log, time.perf_counter())


async def _model_call(request: web.Request, gw: Gateway, rec: Record, chat: bool) -> web.StreamResponse:
    check_request_id(request)
    client = await admit(request, gw)
    # The body is read before a slot is taken: a slow or stalled body holds buffer bytes, never a slot.
    raw = await gw.bodies.read(request)
    try:
        with gw.limiter.slot(client.key_hash):
            return await _forward(request, gw, rec, chat, raw, tenant_salt(client.key_hash))
    finally:
        gw.bodies.release(len(raw))


async def _forward(
    request: web.Request, gw: Gateway, rec: Record, chat: bool, raw: bytes, salt: str | None
) -> web.StreamResponse:
    parsed = parse(raw, gw.cfg.models, chat=chat, max_images=gw.cfg.max_images)
    rec.model, rec.stream = parsed.model, parsed.stream
    if parsed.images:  # decoding and resizing: in the image worker processes, off the event loop
        await ingest_images(parsed.images, gw.settings.images, gw.image_pool)
    prep = finalize(parsed, gw.settings.disclaimer.text, chat=chat, cache_salt=salt)
    ctx = proxy.Context(
        chat=chat,
        disclaimer=gw.settings.disclaimer.text,
        append=gw.settings.disclaimer.append_to_output,
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
    return await model_call(request, route="/v1/chat/completions", chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await model_call(request, route="/v1/completions", chat=False)


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
