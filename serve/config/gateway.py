"""The gateway section of a profile: disclaimer, terms store, keys, image ingestion, limits, timeouts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from serve import terms
from serve.config.base import Strict
from serve.config.dicomweb import DicomwebSettings


class DisclaimerSettings(Strict):
    text: str = terms.DISCLAIMER
    append_to_output: bool = True
    header: str = "X-Disclaimer"
    # MedGemma's thinking: Google's instruction opens the system turn, before this text; the thought comes back in
    # `reasoning`, apart from the answer (the profile's vLLM reasoning parser), and this text goes to the answer only.
    thinking: bool = False


class StoreSettings(Strict):
    # sqlite: the embedded default (terms.database). postgres: shared by several gateways; its schema is
    # migrated by the explicit step `python -m serve migrate --profile P`, never by the gateway itself.
    kind: Literal["sqlite", "postgres"] = "sqlite"
    dsn_env: str | None = None  # the environment variable holding the libpq DSN (with its password)
    pool_max: int = Field(10, gt=0)
    # postgres: connect/checkout wait; sqlite: the wait for the file's lock. Past it, model routes answer 503.
    timeout_s: float = Field(3.0, gt=0)

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
    # Secrets never live in YAML: name the environment variable (keys separated by commas or lines) or the file
    # (one key a line) that holds the keys; `#` starts a comment line. A source named here that yields no key
    # refuses start-up (exit 2): with neither named the gateway runs in local mode (no keys).
    api_keys_env: str | None = None
    api_keys_file: Path | None = None
    # The store keeps HMAC-SHA256(secret, key) of each key, never the key or its plain hash. Every gateway on the
    # same store needs the same secret: name the variable or the file that holds it. Unnamed, a sqlite store
    # generates one beside its database (0600, reused); a postgres store refuses to start without it.
    hash_secret_env: str | None = None
    hash_secret_file: Path | None = None

    @model_validator(mode="after")
    def _one_secret_source(self) -> AuthSettings:
        if self.hash_secret_env and self.hash_secret_file:
            raise ValueError("name hash_secret_env or hash_secret_file, not both")
        return self


# A DNS name as the remote-image allow-list takes it: LDH labels, no trailing dot, no user-info, port or IP
# literal in brackets (serve/gateway/rewrite/remote_url.py explains why the grammar is this narrow).
HOST_NAME = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"

DEMO_IMAGE_SIZE = 224  # the processor size demo_checkpoint.py builds the demo checkpoints with
DEMO_TOKENS_PER_IMAGE = 67  # its 64 image tokens plus the delimiters (1 image: 87 prompt tokens, 2: 154)


class VolumeSettings(Strict):
    """CT and MR series expanded into slices by the gateway (serve/gateway/rewrite/volumes.py)."""

    # Slices sampled evenly from a series: Google's MedGemma 1.5 CT notebook sends 85. A request may ask for
    # fewer ("max_slices"), never more; limit-mm-per-prompt and the context must hold them (a 400 says which).
    max_slices: int = Field(85, gt=0)
    # DICOM objects in one volume part (one per slice, or a few multi-frame objects): a 300-slice series fits.
    max_objects: int = Field(1000, gt=0)
    # A request that carries a volume part may be this large (others keep gateway.max_body_bytes): 85 slices of
    # 512x512 16-bit DICOM are ~45 MB, ~60 MB as base64; 300 slices ~200 MB. Within client.max_buffered_body_bytes.
    max_body_bytes: int = Field(256 * 1024 * 1024, gt=0)
    # How each slice goes to the engine. "jpeg" (at images.jpeg_quality, 4:4:4: within 4 levels of the recipe):
    # the engine's TTFT for an 85-slice volume of 512x512 slices was 169 ms [127, 213] lower than with "bmp"
    # (uncompressed, exact: 2.6x the bytes for vLLM's front end to take in), though BMP costs the gateway ~1.4 ms
    # less CPU a slice (BENCHMARKS.md, "CT and MR volumes"). "bmp" where the gateway's CPU is what runs short.
    slice_format: Literal["jpeg", "bmp"] = "jpeg"


class ImageSettings(Strict):
    max_image_bytes: int = Field(20 * 1024 * 1024, gt=0)  # one decoded image file
    max_pixels: int = Field(40_000_000, gt=0)  # beyond a 6k x 6k radiograph: a decompression bomb
    max_side: int = Field(16384, gt=0)
    # Remote image URLs are refused unless their host is listed; listed hosts must resolve to public addresses.
    # vLLM fetches them, and is started with the same list and without redirects (serve/engine/command.py).
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
    # Images are decoded in worker processes (serve/imaging/pool.py): decoders hold the GIL, so in a thread a
    # 4096x4096 JPEG 2000 stalled every stream ~0.7 s. One worker per core of the deployment's CPU limit (2).
    # 0 decodes in the gateway's own threads: the "before" arm of BENCHMARKS.md's measurement, not for use.
    workers: int = Field(2, ge=0)
    # Per worker (RLIMIT_DATA): the worst legitimate image, 40 M pixels of 16-bit JPEG 2000, peaked at 717 MiB
    # RSS; past the cap an allocation fails and the image is refused (400 image_too_large). Workers x this cap
    # sizes the deployment's memory limit (deploy/kubernetes/gateway-deployment.yaml).
    worker_memory_mb: int = Field(1024, ge=256)
    # A job still running after this is killed with its worker (400 image_decode_failed); the worst legitimate
    # image took 6 s of CPU on one core of the development machine.
    job_timeout_s: float = Field(30.0, gt=0)
    # Image jobs queued or running, gateway-wide; a request whose images do not all fit gets 429 at once. Room
    # for one CT series of a few hundred slices, which arrives as one job per slice.
    max_pending_jobs: int = Field(512, gt=0)
    # Prompt tokens one image costs the engine, delimiters included: MedGemma's 256 image tokens plus
    # <start_of_image>, <end_of_image> and a line break (the demo checkpoints: 64 + 3 = 67, measured). With
    # vllm max-model-len it sizes the gateway's context_budget_exceeded check before any image is decoded.
    tokens_per_image: int = Field(259, gt=0)
    volumes: VolumeSettings = VolumeSettings()
    # DICOMweb servers that volume parts may name as sources (serve/gateway/dicomweb/): none by default.
    dicomweb: DicomwebSettings = DicomwebSettings()

    @field_validator("remote_hosts")
    @classmethod
    def _hosts_are_plain_names(cls, hosts: list[str]) -> list[str]:
        """Lower case, as both URL parsers compare hosts; the engine gets the same list."""
        hosts = [h.lower() for h in hosts]
        for host in hosts:
            if not re.fullmatch(HOST_NAME, host):
                raise ValueError(f"{host!r} is not a plain host name (no scheme, port or final dot)")
        return hosts

    @model_validator(mode="after")
    def _input_fits_the_limits(self) -> ImageSettings:
        if self.model_input_size > self.max_side:
            raise ValueError(f"model_input_size {self.model_input_size} exceeds max_side {self.max_side}")
        return self


class LimitSettings(Strict):
    # Beyond these the gateway answers 429 at once rather than queueing without bound.
    max_concurrent: int = Field(1024, gt=0)
    max_concurrent_per_key: int = Field(256, gt=0)
    # Connections the gateway may hold open to the engine, all routes together. Unset: max_concurrent + 64, so
    # the concurrency cap is what clients meet; past it a request waits up to timeouts.connect_s for a free one.
    max_engine_connections: int | None = Field(None, gt=0)

    @property
    def engine_connections(self) -> int:
        return self.max_engine_connections or self.max_concurrent + 64


class ClientSettings(Strict):
    """What one client connection may hold, and for how long (the client's side; the engine's is `timeouts`)."""

    # The whole request head within this of connecting or of its first byte: a head is < 8 KiB.
    header_timeout_s: float = Field(15.0, gt=0)
    # The whole body within this once its head is in: 32 MiB (max_body_bytes) at ~4.5 Mbit/s.
    body_timeout_s: float = Field(60.0, gt=0)
    # A client that takes no byte of its answer for this long has stopped reading: the request ends, its slot
    # and the engine's generation are freed, the connection is dropped.
    write_timeout_s: float = Field(30.0, gt=0)
    # Between requests on a keep-alive connection; above the 60 s idle timeout of common load balancers.
    idle_timeout_s: float = Field(75.0, gt=0)
    # Open client connections; a new one beyond this is closed at once. Each is a file descriptor: keep
    # `ulimit -n` above this plus limits.max_concurrent (the engine connections) plus one per body of 1 MiB or
    # more in flight, at most max_buffered_body_bytes / 1 MiB (such bodies are held in shared memory files).
    max_connections: int = Field(4096, gt=0)
    # Request bodies held at once across all requests in flight (a volume's body is held once, with its rendered
    # slices: ~1.2-1.6x in memory, measured); a body that does not fit is refused with 503 before it is read.
    max_buffered_body_bytes: int = Field(512 * 1024 * 1024, gt=0)


class EngineTimeoutSettings(Strict):
    """How long the gateway waits on the engine (the client's side is ClientSettings). Each limit matches the work:
    a hung engine is found quickly, a long generation is not cut."""

    # A TCP connection to the engine, or a free pooled one when all max_engine_connections are busy.
    connect_s: float = Field(5.0, gt=0)
    # Streams: the engine's first byte after the request is sent (vLLM sends its head and role chunk once the
    # request is scheduled; a long queue on a busy GPU or a 22k-token volume prefill are the slow cases).
    first_byte_s: float = Field(180.0, gt=0)
    # Streams: silence between two chunks while the gateway is reading. Time the gateway does not read because
    # its client is slow (reading paused) is not engine silence and does not count.
    stream_stall_s: float = Field(60.0, gt=0)
    # Non-streamed answers: the engine sends nothing until the whole answer is done, so the only limit is the
    # total. 2,000 tokens (MedGemma 1.5's pathology budget) at ~2 tokens/s on a saturated 27B is ~1,000 s.
    total_s: float = Field(1800.0, gt=0)


class DrainSettings(Strict):
    """Graceful shutdown on SIGTERM or Ctrl-C (serve/gateway/drain.py)."""

    # /health answers 503 "draining" at once while the port stays open this long, so load balancers (health
    # checks) and Kubernetes (readiness probe, endpoint removal) stop sending before connections are refused.
    delay_s: float = Field(5.0, ge=0)
    # Then the port closes and requests in flight get this long to finish; what is left ends server-side with an
    # in-band error frame and [DONE] (streams) or a 503 envelope. Kubernetes' terminationGracePeriodSeconds
    # must cover delay_s + deadline_s (deploy/kubernetes/gateway-deployment.yaml).
    deadline_s: float = Field(300.0, ge=0)


class GatewaySettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)  # 0: a free port, chosen at start and logged
    disclaimer: DisclaimerSettings = DisclaimerSettings()
    terms: TermsSettings = TermsSettings()
    auth: AuthSettings = AuthSettings()
    images: ImageSettings = ImageSettings()
    limits: LimitSettings = LimitSettings()
    client: ClientSettings = ClientSettings()
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    timeouts: EngineTimeoutSettings = EngineTimeoutSettings()
    drain: DrainSettings = DrainSettings()
    # One JSON line per request on stderr (request id, route, model, status, latency, tokens; never content).
    access_log: bool = True

    @model_validator(mode="after")
    def _one_body_fits_the_buffer(self) -> GatewaySettings:
        if self.client.max_buffered_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"client.max_buffered_body_bytes ({self.client.max_buffered_body_bytes}) is below "
                f"max_body_bytes ({self.max_body_bytes}): a body of the allowed size could never be read"
            )
        if self.client.max_buffered_body_bytes < self.images.volumes.max_body_bytes:
            raise ValueError(
                f"client.max_buffered_body_bytes ({self.client.max_buffered_body_bytes}) is below "
                f"images.volumes.max_body_bytes ({self.images.volumes.max_body_bytes})"
            )
        return self
