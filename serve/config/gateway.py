"""The gateway section of a profile: disclaimer, terms store, keys, image ingestion, limits, timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from serve import terms
from serve.config.base import Strict


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
    remote_hosts: list[str] = Field(default_factory=list)
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
    # One JSON line per request on stderr (request id, route, model, status, latency, tokens; never content).
    access_log: bool = True
