"""The PostgreSQL acknowledgement schema as numbered migrations, and the explicit step that applies them."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS = (
    Migration(
        1,
        "acknowledgements",
        (
            """CREATE TABLE acknowledgements (
                key_hash TEXT NOT NULL,
                terms_version TEXT NOT NULL,
                acknowledged_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (key_hash, terms_version)
            )""",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version
# Any constant shared by every migrator: two gateways' init steps started together apply each step once.
LOCK_ID = 0x6D656467  # "medg"

TRACKING = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


class SchemaBehind(RuntimeError):
    """The database has not been migrated to the version this gateway needs."""


def pending(applied: set[int], migrations: tuple[Migration, ...] = MIGRATIONS) -> list[Migration]:
    """The migrations still to apply, in order; pure, so the ordering rule is unit-tested."""
    return sorted((m for m in migrations if m.version not in applied), key=lambda m: m.version)


async def applied_versions(conn: psycopg.AsyncConnection) -> set[int]:
    exists = await (await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")).fetchone()
    if not exists or not exists[0]:
        return set()
    rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
    return {row[0] for row in rows}


async def migrate(conn: psycopg.AsyncConnection) -> list[Migration]:
    """Apply what is pending in one transaction under an advisory lock; returns what was applied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        await conn.execute(TRACKING)
        todo = pending(await applied_versions(conn))
        for step in todo:
            for statement in step.statements:
                await conn.execute(statement)  # our own constant SQL
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (step.version, step.name)
            )
    return todo


async def check_schema(conn: psycopg.AsyncConnection) -> None:
    """Raise SchemaBehind unless every migration this code knows has been applied."""
    missing = pending(await applied_versions(conn))
    if missing:
        names = ", ".join(f"{m.version} {m.name}" for m in missing)
        raise SchemaBehind(
            f"the acknowledgement database lacks migrations {names}: run `python -m serve migrate --profile P`"
        )
