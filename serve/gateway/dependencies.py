"""What the gateway's handlers share: its config and its injected dependencies, one per app."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, Profile
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.admission.body import BodyBudget
from serve.gateway.admission.limits import ConcurrencyLimiter
from serve.gateway.engine_client.client import Upstream
from serve.gateway.engine_client.readiness import HEALTH_TTL_S, BackendProbe, SharedProbe
from serve.gateway.errors import bad_request
from serve.gateway.lifecycle import Lifecycle
from serve.gateway.rewrite.image_budget import ImageBudget
from serve.gateway.stores.base import AckStore
from serve.gateway.telemetry.access_log import AccessLog
from serve.gateway.telemetry.loop_lag import LoopLag
from serve.gateway.telemetry.metrics import GatewayMetrics
from serve.imaging.pool import ImagePool

REQUEST_ID = "X-Request-Id"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True)
class GatewayConfig:
    settings: GatewaySettings
    models: list[str]
    upstream_url: str
    max_images: int | None = None  # images per request the engine takes (vLLM's limit-mm-per-prompt)
    # vLLM answers /health; a Ray Serve LLM app has no such route, and its ingress answers /v1/models.
    health_path: str = "/health"
    context_len: int | None = None  # the engine's context (vLLM's max-model-len): the images' token budget

    @property
    def image_budget(self) -> ImageBudget:
        images = self.settings.images
        return ImageBudget(
            self.max_images,
            self.context_len,
            images.tokens_per_image,
            images.volumes,
            self.settings.max_body_bytes,
        )

    @classmethod
    def from_profile(cls, profile: Profile, upstream_url: str) -> GatewayConfig:
        limit = (profile.vllm.get("limit-mm-per-prompt") or {}).get("image")
        health = "/v1/models" if profile.topology.kind == "ray" else "/health"
        context = profile.vllm.get("max-model-len")
        context = int(context) if context else None
        return cls(profile.gateway, [profile.model.served_name], upstream_url, limit, health, context)


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
    access_log: AccessLog
    image_pool: ImagePool  # image decoding in worker processes, started and closed with the app
    backend: BackendProbe | None = None  # the launcher's view of the replicas (ray), when it has one
    health: SharedProbe = field(init=False)
    bodies: BodyBudget = field(init=False)  # request bodies buffered across requests in flight
    lifecycle: Lifecycle = field(init=False)  # serving, draining, closing (serve/gateway/drain.py)
    loop_lag: LoopLag = field(init=False)  # the event loop's own stall meter, started with the app

    @property
    def settings(self) -> GatewaySettings:
        return self.cfg.settings

    def __post_init__(self) -> None:
        # Header values must be latin-1 without line breaks; computed once, not per request.
        text = " ".join(self.settings.disclaimer.text.split()).encode("ascii", "replace").decode()
        self._disclaimer_header = (self.settings.disclaimer.header, text)
        self.lifecycle = Lifecycle()
        self.loop_lag = LoopLag(self.metrics.loop_lag)
        self.health = SharedProbe(HEALTH_TTL_S)  # /health: one engine probe per second at most
        client = self.settings.client
        self.bodies = BodyBudget(
            client.max_buffered_body_bytes,
            # A volume's larger limit: the rest are held to max_body_bytes once parsed (image_budget.plan).
            max_body_bytes=max(self.settings.max_body_bytes, self.settings.images.volumes.max_body_bytes),
            timeout_s=client.body_timeout_s,
        )

    def response_headers(self, request_id: str) -> dict[str, str]:
        name, text = self._disclaimer_header
        return {REQUEST_ID: request_id, name: text}


GATEWAY = web.AppKey("gateway", Gateway)


def request_id(request: web.Request) -> str:
    """The client's X-Request-Id when it is safe to log and forward, else a fresh one."""
    given = request.headers.get(REQUEST_ID, "")
    return given if SAFE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()


def check_request_id(request: web.Request) -> None:
    given = request.headers.get(REQUEST_ID)
    if given is not None and not SAFE_REQUEST_ID.fullmatch(given):
        raise bad_request(
            f"{REQUEST_ID} must be 1-128 characters of letters, digits and . _ : -",
            REQUEST_ID,
            "invalid_request_id",
        )
