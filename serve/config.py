"""Deployment profiles: the pydantic models for one YAML in configs/, and load_config(), their only reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from serve import terms


class ConfigError(ValueError):
    """A profile that cannot be used; the message names the file and the offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    env: dict[str, str] = {}
    startup_timeout_s: float = Field(900.0, gt=0)
    stop_grace_s: float = Field(20.0, gt=0)
    restart: RestartPolicy = RestartPolicy()


class DisclaimerSettings(Strict):
    text: str = terms.DISCLAIMER
    append_to_output: bool = True
    header: str = "X-Disclaimer"


class StoreSettings(Strict):
    # sqlite: the embedded default (terms.database). postgres: shared by several gateways; its schema is
    # migrated by the explicit step `python -m serve migrate --profile P`, never by the gateway itself.
    kind: Literal["sqlite", "postgres"] = "sqlite"
    dsn_env: str | None = None  # the environment variable holding the libpq DSN (with its password)
    pool_max: int = Field(10, gt=0)
    timeout_s: float = Field(3.0, gt=0)  # connect/checkout wait before model routes answer 503

    @model_validator(mode="after")
    def _postgres_names_its_dsn(self) -> StoreSettings:
        if self.kind == "postgres" and not self.dsn_env:
            raise ValueError("a postgres store needs dsn_env: the environment variable that holds the DSN")
        return self


class TermsSettings(Strict):
    version: str = terms.TERMS_VERSION
    url: str = terms.TERMS_URL
    prohibited_use_url: str = terms.PROHIBITED_USE_URL
    database: Path = Path(".state/acknowledgements.sqlite3")
    store: StoreSettings = StoreSettings()


class AuthSettings(Strict):
    # Secrets never live in YAML: name the environment variable or file that holds the keys.
    api_keys_env: str | None = None
    api_keys_file: Path | None = None


DEMO_IMAGE_SIZE = 224  # the processor size demo_checkpoint.py builds the demo checkpoints with


class ImageSettings(Strict):
    max_image_bytes: int = Field(20 * 1024 * 1024, gt=0)  # one decoded image file
    max_pixels: int = Field(40_000_000, gt=0)  # beyond a 6k x 6k radiograph: a decompression bomb
    max_side: int = Field(16384, gt=0)
    # Remote image URLs are refused unless their host is listed; listed hosts must resolve to public addresses.
    remote_hosts: list[str] = []
    max_frames: int = Field(1000, gt=0)  # frames a multi-frame DICOM may declare; one is decoded
    # Decode every image once here, resize it to the model's input size and forward it small (notes in
    # serve/imaging/normalise.py). Off: images pass unchanged, except DICOM, which the engine cannot read.
    normalize: bool = True
    # The checkpoint's processor size: 896 for MedGemma, 224 for the demo checkpoints.
    model_input_size: int = Field(896, ge=14, le=4096)
    # The checkpoint processor's own filter (Gemma 3: bilinear); another filter changes what the model sees.
    resample: Literal["bilinear", "bicubic", "lanczos"] = "bilinear"
    # At equal fidelity (within 1 level of the engine's own result on a radiograph) JPEG q100 4:4:4 costs ~10x
    # less gateway CPU, ~40% fewer bytes and ~3x less engine decode than PNG (BENCHMARKS.md, "Image ingestion").
    forward_format: Literal["jpeg", "png"] = "jpeg"
    jpeg_quality: int = Field(100, ge=50, le=100)  # q95 is 2.7x smaller but 6 levels off on a radiograph

    @model_validator(mode="after")
    def _input_fits_the_limits(self) -> ImageSettings:
        if self.model_input_size > self.max_side:
            raise ValueError(f"model_input_size {self.model_input_size} exceeds max_side {self.max_side}")
        return self


class LimitSettings(Strict):
    # Beyond these the gateway answers 429 at once rather than queueing without bound.
    max_concurrent: int = Field(1024, gt=0)
    max_concurrent_per_key: int = Field(256, gt=0)


class GatewaySettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    disclaimer: DisclaimerSettings = DisclaimerSettings()
    terms: TermsSettings = TermsSettings()
    auth: AuthSettings = AuthSettings()
    images: ImageSettings = ImageSettings()
    limits: LimitSettings = LimitSettings()
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0)


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


class Profile(Strict):
    name: str
    description: str = ""
    model: ModelSettings
    engine: EngineSettings = EngineSettings()
    gateway: GatewaySettings = GatewaySettings()
    topology: TopologySettings = TopologySettings()
    # vLLM's own long-form flags, passed through to `vllm serve` (see serve/engine/command.py).
    vllm: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _demo_images_at_demo_size(cls, raw: Any) -> Any:
        """Demo checkpoints are built at 224 px (serve/engine/demo_checkpoint.py): a demo profile that names no
        model_input_size gets that, not MedGemma's 896, so copies of cpu-demo.yaml stay right."""
        if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
            return raw
        gateway = raw.get("gateway") or {}
        images = (gateway.get("images") or {}) if isinstance(gateway, dict) else None
        if not isinstance(images, dict) or "model_input_size" in images:
            return raw  # set explicitly, or built from objects rather than YAML
        if str(raw["model"].get("source", "")).startswith("demo:"):
            return _merge(raw, {"gateway": {"images": {"model_input_size": DEMO_IMAGE_SIZE}}})
        return raw

    @field_validator("vllm")
    @classmethod
    def _flags_are_long_form_names(cls, flags: dict[str, Any]) -> dict[str, Any]:
        for key in flags:
            if key.startswith("-") or "_" in key or " " in key:
                raise ValueError(
                    f"vllm flag {key!r}: write the long form without dashes, e.g. 'max-model-len'"
                )
        return flags


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Profile:
    """Read and validate one profile; unknown keys fail, naming the key and the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a profile is a mapping of keys, got {type(raw).__name__}")
    try:
        return Profile.model_validate(_merge(raw, overrides or {}))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {what}")
    return "; ".join(parts)


def redacted(profile: Profile) -> dict[str, Any]:
    """The effective config for the start-up log; it holds no secrets (they live in env/files)."""
    return profile.model_dump(mode="json")
