"""One YAML in configs/ as a Profile, and load_config(), its only reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from serve.config.base import ConfigError, Strict
from serve.config.engine import EngineSettings, ModelSettings
from serve.config.gateway import DEMO_IMAGE_SIZE, DEMO_TOKENS_PER_IMAGE, GatewaySettings
from serve.config.redact import redact_tree
from serve.config.topology import TopologySettings


class Profile(Strict):
    name: str
    description: str = ""
    model: ModelSettings
    engine: EngineSettings = EngineSettings()
    gateway: GatewaySettings = GatewaySettings()
    topology: TopologySettings = TopologySettings()
    # vLLM's own long-form flags, passed through to `vllm serve` (see serve/engine/command.py).
    vllm: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _demo_images_at_demo_size(cls, raw: Any) -> Any:
        """Demo checkpoints are built at 224 px, 64 image tokens (serve/engine/demo_checkpoint.py): a demo profile
        that names no model_input_size or tokens_per_image gets those, not MedGemma's 896 and 259, so copies of
        cpu-demo.yaml stay right."""
        if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
            return raw
        gateway = raw.get("gateway") or {}
        images = (gateway.get("images") or {}) if isinstance(gateway, dict) else None
        if not isinstance(images, dict) or not str(raw["model"].get("source", "")).startswith("demo:"):
            return raw  # built from objects rather than YAML, or not a demo checkpoint
        demo = {"model_input_size": DEMO_IMAGE_SIZE, "tokens_per_image": DEMO_TOKENS_PER_IMAGE}
        missing = {key: value for key, value in demo.items() if key not in images}  # explicit values win
        return _merge(raw, {"gateway": {"images": missing}}) if missing else raw

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
    """The effective config for the start-up log: engine.env values, secret-named keys and vLLM flags (api-key,
    hf-token...) and URL passwords hidden (serve/config/redact.py says exactly what)."""
    tree: dict[str, Any] = redact_tree(profile.model_dump(mode="json"))
    return tree
