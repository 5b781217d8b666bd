"""The gateway's own routes: the terms document and per-key acknowledgement, health, metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from serve import terms
from serve.gateway.admission import gate
from serve.gateway.dependencies import GATEWAY, Gateway
from serve.gateway.engine_client import proxy, readiness
from serve.gateway.engine_client.client import UpstreamError
from serve.gateway.errors import GatewayError, bad_request, shutting_down, store_unavailable
from serve.gateway.rewrite.request_body import parse_json
from serve.gateway.routes.model import read_body
from serve.gateway.stores.base import StoreUnavailable


async def get_terms(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response(
        gate.terms_document(gw.settings.terms, gw.settings.disclaimer.text, gw.keys.enabled)
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
        client = gate.identify(gw.keys, request.headers.get("Authorization"))
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
    """Ready while at least one engine replica is; `replicas` lists each one's state where it can be read."""
    gw = request.app[GATEWAY]
    if gw.lifecycle.draining:  # first, and without asking the engine: balancers must stop sending here now
        return draining()
    state = await gw.health.get(lambda: probe_engines(gw))
    extra = {"replicas": state.replicas} if state.replicas else {}
    if state.ready:
        return web.json_response({"status": "ok", "gateway": "ok", "engine": "ok", **extra})
    err = GatewayError(
        503,
        "The gateway is up but the model engine is not ready.",
        "server_error",
        "engine_unavailable",
        headers={"Retry-After": "5"},
    )
    return web.json_response(
        {**err.envelope(), "status": "degraded", "gateway": "ok", "engine": "down", **extra},
        status=503,
        headers=err.headers,
    )


def draining() -> web.Response:
    err = shutting_down()
    resp = web.json_response(
        {**err.envelope(), "status": "draining", "gateway": "draining"}, status=503, headers=err.headers
    )
    resp.force_close()
    return resp


async def probe_engines(gw: Gateway) -> readiness.Health:
    """What /health reports, read from the engine (and the launcher's probe): shared by concurrent callers."""
    probe = await gw.backend() if gw.backend is not None else None
    upstream_ok = await gw.upstream.healthy(path=gw.cfg.health_path)
    replicas = probe[1] if probe is not None else await readiness.engines_via_metrics(gw.upstream)
    return readiness.Health(readiness.verdict(upstream_ok, probe), replicas)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[GATEWAY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def engine_metrics(request: web.Request) -> web.Response:
    """The engine's own vllm:* metrics, so one Prometheus job scrapes both through the one open port."""
    gw = request.app[GATEWAY]
    try:
        async with await gw.upstream.get("/metrics") as resp:
            return web.Response(
                status=resp.status,
                body=await resp.read(),
                headers={"Content-Type": resp.headers.get("content-type", CONTENT_TYPE_LATEST)},
            )
    except UpstreamError as exc:
        return proxy.upstream_error(exc, gw.metrics).to_response()
