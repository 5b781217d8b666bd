"""`python -m serve migrate`: bring the configured acknowledgement store's schema up to date, explicitly."""

from __future__ import annotations

from collections.abc import Mapping

from serve.config import TermsSettings
from serve.gateway.stores.base import StoreUnavailable
from serve.gateway.stores.factory import postgres_dsn
from serve.gateway.stores.sqlite import SCHEMA_VERSION, SqliteAckStore


async def migrate_store(settings: TermsSettings, environ: Mapping[str, str] | None = None) -> str:
    """Apply pending migrations; returns one line saying what was done (safe to run again: idempotent)."""
    if settings.store.kind == "sqlite":
        store = SqliteAckStore(settings.database)  # the embedded store migrates itself on open
        await store.close()
        return f"sqlite {settings.database}: schema at version {SCHEMA_VERSION}"
    import psycopg

    from serve.gateway.stores.postgres_schema import LATEST, migrate

    timeout = max(1, round(settings.store.timeout_s))
    try:
        conn = await psycopg.AsyncConnection.connect(
            postgres_dsn(settings, environ), autocommit=True, connect_timeout=timeout
        )
        async with conn:
            applied = await migrate(conn)
    except (psycopg.Error, OSError) as exc:
        raise StoreUnavailable(f"postgres: cannot migrate: {exc}") from None
    done = ", ".join(f"{m.version} {m.name}" for m in applied) or "nothing to apply"
    return f"postgres: applied {done}; schema at version {LATEST}"
