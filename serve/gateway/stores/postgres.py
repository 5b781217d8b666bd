"""Acknowledgements in PostgreSQL, shared by every gateway pointed at the same database (async pool)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from serve.config.redact import redact_text
from serve.gateway.stores.base import StoreUnavailable
from serve.gateway.stores.postgres_schema import SchemaBehind, check_schema

log = logging.getLogger("serve.gateway.stores.postgres")

HAS = "SELECT 1 FROM acknowledgements WHERE key_hash = %s AND terms_version = %s"
INSERT = "INSERT INTO acknowledgements (key_hash, terms_version) VALUES (%s, %s) ON CONFLICT DO NOTHING"
WHEN = "SELECT acknowledged_at FROM acknowledgements WHERE key_hash = %s AND terms_version = %s"
# One statement, so atomic: a key's rows under its legacy plain SHA-256 move to its keyed hash.
REHASH = """WITH legacy AS (
    DELETE FROM acknowledgements WHERE key_hash = %s RETURNING terms_version, acknowledged_at
)
INSERT INTO acknowledgements (key_hash, terms_version, acknowledged_at)
SELECT %s, terms_version, acknowledged_at FROM legacy ON CONFLICT DO NOTHING"""
FAILURES = (psycopg.Error, PoolTimeout, OSError, SchemaBehind)
RECONNECT_S = 30.0

T = TypeVar("T")


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")  # the SQLite store's format


class PostgresAckStore:
    """Same contract as SqliteAckStore: positives cached (never withdrawn), misses read the database, any
    failure is StoreUnavailable. The pool opens on first use, inside the running loop; no I/O before."""

    def __init__(self, dsn: str, *, pool_max: int = 10, timeout_s: float = 3.0) -> None:
        self._dsn, self._pool_max, self._timeout_s = dsn, pool_max, timeout_s
        self._pool: AsyncConnectionPool | None = None
        self._schema_ok = False
        self._opening = asyncio.Lock()
        self._known: set[tuple[str, str]] = set()

    async def has(self, key_hash: str, version: str) -> bool:
        if (key_hash, version) in self._known:
            return True
        row = await self._run(HAS, (key_hash, version))
        if row:
            self._known.add((key_hash, version))
        return row is not None

    async def acknowledge(self, key_hash: str, version: str) -> str:
        async def write(conn: psycopg.AsyncConnection) -> tuple | None:
            async with conn.transaction():
                await conn.execute(INSERT, (key_hash, version))
                return await (await conn.execute(WHEN, (key_hash, version))).fetchone()

        row = await self._with_conn(write)
        assert row is not None  # inserted or already there, in the same transaction
        self._known.add((key_hash, version))
        return iso(row[0])

    async def rehash(self, legacy_hash: str, key_hash: str) -> int:
        """Move a key's rows from its legacy plain SHA-256 to its keyed hash; returns how many rows moved."""

        async def move(conn: psycopg.AsyncConnection) -> int:
            return (await conn.execute(REHASH, (legacy_hash, key_hash))).rowcount

        return await self._with_conn(move)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _run(self, sql: str, params: tuple) -> tuple | None:
        async def read(conn: psycopg.AsyncConnection) -> tuple | None:
            return await (await conn.execute(sql, params)).fetchone()

        return await self._with_conn(read)

    async def _with_conn(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        try:
            pool = await self._open()
            async with pool.connection(timeout=self._timeout_s) as conn:
                if not self._schema_ok:
                    await check_schema(conn)
                    self._schema_ok = True
                return await work(conn)
        except FAILURES as exc:
            why = redact_text(str(exc))  # libpq may quote a malformed DSN, password and all
            log.warning("acknowledgement store unavailable: %s", why)
            raise StoreUnavailable(f"postgres: {why}") from None

    async def _open(self) -> AsyncConnectionPool:
        async with self._opening:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self._dsn,
                    min_size=1,
                    max_size=self._pool_max,
                    open=False,
                    timeout=self._timeout_s,
                    # A connection broken by a server restart is replaced on checkout, not handed out.
                    check=AsyncConnectionPool.check_connection,
                    kwargs={"autocommit": True, "connect_timeout": max(1, round(self._timeout_s))},
                    # Bounds the reconnect backoff, so a long outage heals within ~30 s of the server's return.
                    reconnect_timeout=RECONNECT_S,
                    name="medgemma-acks",
                )
                await pool.open(wait=False)
                self._pool = pool
            return self._pool
