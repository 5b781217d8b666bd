"""Deployment profiles: the pydantic models for one YAML in configs/, one module per section, and load_config()."""

from serve.config.base import ConfigError, Strict
from serve.config.engine import EngineSettings, ModelSettings, RestartPolicy
from serve.config.gateway import (
    DEMO_IMAGE_SIZE,
    AuthSettings,
    ClientSettings,
    DisclaimerSettings,
    DrainSettings,
    EngineTimeoutSettings,
    GatewaySettings,
    ImageSettings,
    LimitSettings,
    StoreSettings,
    TermsSettings,
)
from serve.config.profile import Profile, load_config, redacted
from serve.config.topology import Autoscaling, RaySettings, TopologySettings

__all__ = [
    "DEMO_IMAGE_SIZE",
    "AuthSettings",
    "Autoscaling",
    "ClientSettings",
    "ConfigError",
    "DisclaimerSettings",
    "DrainSettings",
    "EngineSettings",
    "EngineTimeoutSettings",
    "GatewaySettings",
    "ImageSettings",
    "LimitSettings",
    "ModelSettings",
    "Profile",
    "RaySettings",
    "RestartPolicy",
    "StoreSettings",
    "Strict",
    "TermsSettings",
    "TopologySettings",
    "load_config",
    "redacted",
]
