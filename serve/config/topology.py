"""The topology section of a profile: one engine, vLLM data parallel, or a Ray Serve LLM app."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from serve.config.base import Strict


class Autoscaling(Strict):
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(8.0, gt=0)  # per replica, before Ray Serve adds one

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        return self


class RaySettings(Strict):
    # None: start a local head; "auto" or "host:port": join the cluster that `ray start` made.
    address: str | None = None
    app_name: str = "medgemma"
    # Where Ray Serve's HTTP proxy listens; the gateway proxies to it (engine.port). Keep it private.
    host: str = "127.0.0.1"
    metrics_port: int = Field(8080, ge=1, le=65535)  # outside Ray's worker port range 10002-19999


class TopologySettings(Strict):
    # single: one vLLM server. data-parallel: `size` engine cores behind one vLLM server (one per GPU).
    # ray: a Ray Serve LLM app, `replicas` fixed or within `autoscaling` bounds, across Ray's hosts.
    kind: Literal["single", "data-parallel", "ray"] = "single"
    size: int = Field(1, ge=1)
    replicas: int = Field(1, ge=1)
    autoscaling: Autoscaling | None = None
    ray: RaySettings = RaySettings()

    @model_validator(mode="after")
    def _fits_the_kind(self) -> TopologySettings:
        if self.kind == "data-parallel" and self.size < 2:
            raise ValueError("data-parallel needs size >= 2 (ranks); use kind: single for one engine")
        if self.kind != "data-parallel" and self.size != 1:
            raise ValueError(f"size is the data-parallel rank count; kind {self.kind!r} takes none")
        if self.kind != "ray" and (self.replicas != 1 or self.autoscaling is not None):
            raise ValueError(
                f"replicas and autoscaling are Ray Serve settings; kind {self.kind!r} takes none"
            )
        if self.autoscaling is not None and self.replicas != 1:
            raise ValueError("give either replicas (fixed) or autoscaling (bounds), not both")
        return self
