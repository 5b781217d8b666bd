"""The model and engine sections of a profile: what to serve, on which port, and how to restart it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from serve.config.base import Strict


class ModelSettings(Strict):
    # An HF id, a local path, or "demo:<variant>" for a checkpoint the project builds itself.
    source: str
    served_name: str
    family: Literal["gemma3", "other"] = "gemma3"
    # "hai-def": the operator must accept the HAI-DEF terms before the launcher starts it.
    license: Literal["hai-def", "none"] = "hai-def"


class RestartPolicy(Strict):
    max_restarts: int = Field(5, ge=0)
    backoff_initial_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    # A run that stayed healthy this long resets the restart budget.
    reset_after_s: float = Field(300.0, gt=0)


class EngineSettings(Strict):
    port: int = Field(8100, ge=1, le=65535)
    env: dict[str, str] = Field(default_factory=dict)
    startup_timeout_s: float = Field(900.0, gt=0)
    stop_grace_s: float = Field(20.0, gt=0)
    restart: RestartPolicy = RestartPolicy()
