"""The store a profile configures: embedded SQLite (the default) or shared PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Mapping

from serve.config import ConfigError, TermsSettings
from serve.gateway.stores.base import AckStore
from serve.gateway.stores.sqlite import SqliteAckStore


def store_from_settings(settings: TermsSettings, environ: Mapping[str, str] | None = None) -> AckStore:
    """The configured store: SQLite (embedded, migrated on open) or PostgreSQL (migrated explicitly)."""
    if settings.store.kind == "sqlite":
        return SqliteAckStore(settings.database, timeout_s=settings.store.timeout_s)
    from serve.gateway.stores.postgres import PostgresAckStore  # psycopg only where PostgreSQL is configured

    chosen = settings.store
    return PostgresAckStore(
        postgres_dsn(settings, environ), pool_max=chosen.pool_max, timeout_s=chosen.timeout_s
    )


def postgres_dsn(settings: TermsSettings, environ: Mapping[str, str] | None = None) -> str:
    """The DSN (with its password) from the environment variable the profile names, never from YAML."""
    name = settings.store.dsn_env
    dsn = (os.environ if environ is None else environ).get(name or "")
    if not dsn:
        raise ConfigError(
            f"gateway.terms.store: the environment variable {name} (the PostgreSQL DSN) is not set"
        )
    return dsn
