"""What every profile section shares: unknown keys fail, values are frozen, and the one error type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A profile that cannot be used; the message names the file and the offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
