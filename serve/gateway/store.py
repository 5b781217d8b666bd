"""Durable acknowledgements: which key hash accepted which terms version, when. Embedded SQLite by default."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from serve.config import ConfigError, TermsSettings

SCHEMA_VERSION = 1
MIGRATIONS = {
    1: [
        """CREATE TABLE acknowledgements (
            key_hash TEXT NOT NULL,
            terms_version TEXT NOT NULL,
            acknowledged_at TEXT NOT NULL,
            PRIMARY KEY (key_hash, terms_version)
        )""",
    ],
}


class StoreUnavailable(RuntimeError):
    """The acknowledgement store cannot be read or written; model routes must refuse, never bypass."""


class AckStore(Protocol):
    async def has(self, key_hash: str, version: str) -> bool: ...
    async def acknowledge(self, key_hash: str, version: str) -> str: ...
    async def close(self) -> None: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteAckStore:
    """Positive answers are cached (an acknowledgement is never withdrawn); a miss reads the file, so
    acknowledgements written by another gateway process sharing the file are seen at once."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one short transaction per write.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an answered acknowledgement survives a crash
        migrate(self._db)
        self._known: set[tuple[str, str]] = set()

    async def has(self, key_hash: str, version: str) -> bool:
        if (key_hash, version) in self._known:
            return True
        try:
            row = self._db.execute(
                "SELECT 1 FROM acknowledgements WHERE key_hash = ? AND terms_version = ?", (key_hash, version)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from None
        if row:
            self._known.add((key_hash, version))
        return row is not None

    async def acknowledge(self, key_hash: str, version: str) -> str:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO acknowledgements VALUES (?, ?, ?)", (key_hash, version, now_iso())
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")  # never half-written
                raise
            row = self._db.execute(
                "SELECT acknowledged_at FROM acknowledgements WHERE key_hash = ? AND terms_version = ?",
                (key_hash, version),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from None
        self._known.add((key_hash, version))
        return row[0]

    async def close(self) -> None:
        self._db.close()


def migrate(db: sqlite3.Connection) -> None:
    """Apply numbered migrations past PRAGMA user_version, each in one transaction with its version bump."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for version in range(current + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def store_from_settings(settings: TermsSettings, environ: Mapping[str, str] | None = None) -> AckStore:
    """The configured store: SQLite (embedded, migrated on open) or PostgreSQL (migrated explicitly)."""
    if settings.store.kind == "sqlite":
        return SqliteAckStore(settings.database)
    from serve.gateway.pg_store import PostgresAckStore  # psycopg only where PostgreSQL is configured

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
