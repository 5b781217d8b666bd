"""The gateway application: create_app() wires routes, error rendering and injected dependencies."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, ProcessCollector

from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.admission.limits import ConcurrencyLimiter
from serve.gateway.dependencies import GATEWAY, Gateway, GatewayConfig, request_id
from serve.gateway.engine_client.client import Upstream
from serve.gateway.engine_client.readiness import BackendProbe
from serve.gateway.errors import GatewayError, route_not_found, unexpected
from serve.gateway.routes import responses
from serve.gateway.routes.model import chat_completions, completions, models
from serve.gateway.routes.service import acknowledge, engine_metrics, get_terms, health, metrics
from serve.gateway.routes.tokens import detokenize, tokenize
from serve.gateway.stores.base import AckStore
from serve.gateway.stores.factory import store_from_settings
from serve.gateway.telemetry.access_log import AccessLog
from serve.gateway.telemetry.metrics import GatewayMetrics
from serve.imaging.pool import ImagePool

# Loaded with the app, not by the first request that needs them: volumes and DICOMweb sources import each other, so
# their modules are imported where they are used, and the first volume request paid that on the event loop (13-26
# ms, measured). Once loaded, those imports are lookups.
import serve.gateway.dicomweb.resolve  # noqa: F401  isort: skip

__all__ = ["GATEWAY", "GatewayConfig", "create_app"]


@web.middleware
async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (unknown route, wrong method, body too large) in the OpenAI envelope, and any
    exception a handler did not expect as a 500 envelope (not aiohttp's plain-text 500) with one log line."""
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
    except web.HTTPException:
        raise  # aiohttp's other answers (redirects, its own 5xx) are answers, not failures
    except GatewayError as err:
        return err.to_response(request.app[GATEWAY].response_headers(request_id(request)))
    except Exception as exc:
        rid = request_id(request)
        return unexpected(rid, exc).to_response(request.app[GATEWAY].response_headers(rid))


def create_app(
    cfg: GatewayConfig,
    *,
    upstream: Upstream | str | None = None,
    registry: CollectorRegistry | None = None,
    store: AckStore | None = None,
    keys: KeyRing | None = None,
    backend: BackendProbe | None = None,
    access_log: AccessLog | None = None,
    image_pool: ImagePool | None = None,
) -> web.Application:
    """The gateway; every external dependency can be injected (tests pass fakes, production passes none)."""
    s = cfg.settings
    if not isinstance(upstream, Upstream):
        upstream = Upstream(
            upstream or cfg.upstream_url,
            timeouts=s.timeouts,
            max_connections=s.limits.engine_connections,
        )
    if registry is None:  # production: our metrics plus the process's own (RSS, CPU, open fds)
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
    gw = Gateway(
        cfg,
        upstream,
        GatewayMetrics(registry),
        registry,
        store if store is not None else store_from_settings(s.terms),
        keys if keys is not None else KeyRing.from_settings(s),
        ConcurrencyLimiter(s.limits),
        access_log if access_log is not None else AccessLog.to_stderr(s.access_log),
        image_pool if image_pool is not None else ImagePool(s.images),
        backend,
    )
    app = web.Application(client_max_size=s.max_body_bytes, middlewares=[envelope_errors])
    app[GATEWAY] = gw
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_post(responses.ROUTE, responses.create)
    for method, route in responses.STORED_ROUTES:  # refused: the gateway stores no responses
        app.router.add_route(method, route, responses.stored_route(route))
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/detokenize", detokenize)
    app.router.add_get("/v1/terms", get_terms)
    app.router.add_post("/v1/terms/acknowledge", acknowledge)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/metrics/engine", engine_metrics)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    await app[GATEWAY].image_pool.start()  # the first request with an image does not wait for workers
    app[GATEWAY].loop_lag.start()


async def _stop(app: web.Application) -> None:
    app[GATEWAY].loop_lag.stop()
    await app[GATEWAY].upstream.close()
    await app[GATEWAY].access_log.close()  # every line written, off the loop
    await app[GATEWAY].store.close()
    await app[GATEWAY].image_pool.close()
