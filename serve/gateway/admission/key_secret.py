"""The secret API-key hashes are keyed with: named by the profile (environment variable or file), or, for the
embedded SQLite store only, generated once beside its database and reused."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from serve.config import ConfigError, GatewaySettings
from serve.gateway.stores.private import private_dir, publish_once, restrict

GENERATED = "key-hash-secret"  # beside the SQLite database, so every gateway sharing the file shares it too
MIN_BYTES = 16
HOW = "e.g. the output of `openssl rand -hex 32`"


def hash_secret(settings: GatewaySettings, environ: Mapping[str, str]) -> bytes:
    """The secret; a named source that is empty or short, or a postgres store without one, is a ConfigError."""
    auth = settings.auth
    if auth.hash_secret_env:
        value = environ.get(auth.hash_secret_env, "").encode()
        return _checked(
            value, f"gateway.auth.hash_secret_env: the environment variable {auth.hash_secret_env}"
        )
    if auth.hash_secret_file:
        return _checked(
            _read(auth.hash_secret_file), f"gateway.auth.hash_secret_file: {auth.hash_secret_file}"
        )
    if settings.terms.store.kind == "postgres":
        raise ConfigError(
            "gateway.auth: API keys with a postgres store need hash_secret_env (or hash_secret_file) naming "
            f"the secret every gateway on that database shares ({HOW}); refusing to start without it"
        )
    return generated(settings.terms.database.parent / GENERATED)


def generated(path: Path) -> bytes:
    """Read the secret made by an earlier start, or make it now (random, 0600, never overwritten)."""
    private_dir(path.parent)
    if not path.exists():
        publish_once(path, secrets.token_hex(32).encode())
    restrict(path)
    return _checked(_read(path), f"the generated key-hash secret {path}")


def _checked(value: bytes, source: str) -> bytes:
    value = value.strip()
    if len(value) < MIN_BYTES:
        state = "is unset or empty" if not value else f"is shorter than {MIN_BYTES} bytes"
        raise ConfigError(f"{source} {state}: it must hold the key-hash secret ({HOW})")
    return value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"gateway.auth: cannot read the key-hash secret {path}: {exc.strerror}") from None
