"""The gateway application: routes, the admission chain of model routes, and create_app()."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from serve import terms
from serve.config import GatewaySettings, Profile
from serve.gateway import proxy, terms_gate
from serve.gateway.accounting import CLIENT_CLOSED, Record, finish
from serve.gateway.auth import KeyRing
from serve.gateway.errors import GatewayError, bad_request, route_not_found, store_unavailable
from serve.gateway.images import check_images
from serve.gateway.limits import ConcurrencyLimiter
from serve.gateway.metrics import GatewayMetrics
from serve.gateway.requests import finalize, parse, parse_json
from serve.gateway.store import AckStore, SqliteAckStore, StoreUnavailable
from serve.gateway.upstream import Upstream

REQUEST_ID = "X-Request-Id"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True)
class GatewayConfig:
    settings: GatewaySettings
    models: list[str]
    upstream_url: str
    max_images: int | None = None  # images per request the engine takes (vLLM's limit-mm-per-prompt)

    @classmethod
    def from_profile(cls, profile: Profile, upstream_url: str) -> GatewayConfig:
        limit = (profile.vllm.get("limit-mm-per-prompt") or {}).get("image")
        return cls(profile.gateway, [profile.model.served_name], upstream_url, limit)


@dataclass
class Gateway:
    """Everything the handlers share; one per app, held in app[GATEWAY]."""

    cfg: GatewayConfig
    upstream: Upstream
    metrics: GatewayMetrics
    registry: CollectorRegistry
    store: AckStore
    keys: KeyRing
    limiter: ConcurrencyLimiter

    @property
    def settings(self) -> GatewaySettings:
        return self.cfg.settings

    def response_headers(self, request_id: str) -> dict[str, str]:
        text = self.settings.disclaimer.text.encode("ascii", "replace").decode()
        return {REQUEST_ID: request_id, self.settings.disclaimer.header: text}


GATEWAY = web.AppKey("gateway", Gateway)


def request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID, "")
    return given if SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


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
        gw.metrics.in_flight.labels(route).dec()
        finish(rec, gw.metrics, time.perf_counter())


async def _model_call(request: web.Request, gw: Gateway, rec: Record, chat: bool) -> web.StreamResponse:
    client = await admit(request, gw)
    with gw.limiter.slot(client.key_hash):
        return await _forward(request, gw, rec, chat)


async def _forward(request: web.Request, gw: Gateway, rec: Record, chat: bool) -> web.StreamResponse:
    raw = await read_body(request)
    parsed = parse(raw, gw.cfg.models, chat=chat, max_images=gw.cfg.max_images)
    rec.model, rec.stream = parsed.model, parsed.stream
    if parsed.images:  # Pillow decodes: off the event loop
        await asyncio.to_thread(check_images, parsed.images, gw.settings.images)
    prep = finalize(parsed, gw.settings.disclaimer.text, chat=chat)
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
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise proxy.upstream_error(exc, gw.metrics) from None


async def admit(request: web.Request, gw: Gateway) -> terms_gate.Client:
    """401 for a missing/unknown key (when keys are configured), 403 until the terms are acknowledged."""
    client = terms_gate.identify(gw.keys, request.headers.get("Authorization"))
    version = gw.settings.terms.version
    try:
        reason = await terms_gate.acknowledgement(
            request.headers.get(terms.ACK_HEADER), client, gw.store, version
        )
    except StoreUnavailable:
        raise store_unavailable() from None
    if reason is not None:
        gw.metrics.terms_refusals.labels(reason).inc()
        raise terms_gate.refusal(gw.settings.terms, reason, gw.keys.enabled)
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
        async with gw.upstream.get("/v1/models") as resp:
            return web.Response(
                status=resp.status, body=await resp.read(), content_type=resp.content_type, headers=headers
            )
    except GatewayError as err:
        return err.to_response(headers)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return proxy.upstream_error(exc, gw.metrics).to_response(headers)


async def get_terms(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response(
        terms_gate.terms_document(gw.settings.terms, gw.settings.disclaimer.text, gw.keys.enabled)
    )


async def acknowledge(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    try:
        if not gw.keys.enabled:
            raise bad_request(
                f"This gateway has no API keys (local mode): acknowledge per request with the "
                f"header '{terms.ACK_HEADER}: {gw.settings.terms.version}'.",
                code="acknowledgement_needs_key",
            )
        client = terms_gate.identify(gw.keys, request.headers.get("Authorization"))
        version = parse_json(await read_body(request)).get("version")
        if version != gw.settings.terms.version:
            raise bad_request(
                f"'version' must be the current terms version {gw.settings.terms.version!r} "
                f"(see GET /v1/terms).",
                "version",
                "terms_version_mismatch",
            )
        assert client.key_hash is not None
        when = await gw.store.acknowledge(client.key_hash, version)
    except StoreUnavailable:
        return store_unavailable().to_response()
    except GatewayError as err:
        return err.to_response()
    return web.json_response({"acknowledged": True, "version": version, "acknowledged_at": when})


async def health(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    if await gw.upstream.healthy():
        return web.json_response({"status": "ok", "gateway": "ok", "engine": "ok"})
    err = GatewayError(
        503,
        "The gateway is up but the model engine is not ready.",
        "server_error",
        "engine_unavailable",
        headers={"Retry-After": "5"},
    )
    return web.json_response(
        {**err.envelope(), "status": "degraded", "gateway": "ok", "engine": "down"},
        status=503,
        headers=err.headers,
    )


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[GATEWAY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def engine_metrics(request: web.Request) -> web.Response:
    """The engine's own vllm:* metrics, so one Prometheus job scrapes both through the one open port."""
    gw = request.app[GATEWAY]
    try:
        async with gw.upstream.get("/metrics") as resp:
            return web.Response(
                status=resp.status,
                body=await resp.read(),
                headers={"Content-Type": resp.headers.get("Content-Type", CONTENT_TYPE_LATEST)},
            )
    except (TimeoutError, aiohttp.ClientError) as exc:
        return proxy.upstream_error(exc, gw.metrics).to_response()


@web.middleware
async def envelope_errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """aiohttp's own refusals (unknown route, wrong method, body too large) in the OpenAI envelope."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return route_not_found(request.path).to_response()
    except web.HTTPMethodNotAllowed as exc:
        return GatewayError(
            405,
            f"{request.method} is not allowed on {request.path}; use "
            f"{', '.join(sorted(exc.allowed_methods))}.",
            "invalid_request_error",
            "method_not_allowed",
        ).to_response()
    except web.HTTPClientError as exc:
        return GatewayError(exc.status, exc.reason, "invalid_request_error", "bad_request").to_response()


def create_app(
    cfg: GatewayConfig,
    *,
    upstream: Upstream | str | None = None,
    registry: CollectorRegistry | None = None,
    store: AckStore | None = None,
    keys: KeyRing | None = None,
) -> web.Application:
    """The gateway; every external dependency can be injected (tests pass fakes, production passes none)."""
    s = cfg.settings
    if not isinstance(upstream, Upstream):
        upstream = Upstream(
            upstream or cfg.upstream_url,
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
        )
    registry = registry if registry is not None else CollectorRegistry()
    gw = Gateway(
        cfg,
        upstream,
        GatewayMetrics(registry, cfg.models),
        registry,
        store if store is not None else SqliteAckStore(s.terms.database),
        keys if keys is not None else KeyRing.from_settings(s.auth),
        ConcurrencyLimiter(s.limits),
    )
    app = web.Application(client_max_size=s.max_body_bytes, middlewares=[envelope_errors])
    app[GATEWAY] = gw
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/terms", get_terms)
    app.router.add_post("/v1/terms/acknowledge", acknowledge)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/metrics/engine", engine_metrics)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    await app[GATEWAY].upstream.start()


async def _stop(app: web.Application) -> None:
    await app[GATEWAY].upstream.close()
    await app[GATEWAY].store.close()
