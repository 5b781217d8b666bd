"""Acknowledgements in an embedded SQLite file (the default store), migrated on open; its sqlite3 calls run in
the store's own threads (serve/gateway/stores/sqlite_thread.py), never on the event loop."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from serve.gateway.stores.base import now_iso
from serve.gateway.stores.private import private_dir, private_file, restrict
from serve.gateway.stores.sqlite_thread import SqliteThread

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


HAS = "SELECT 1 FROM acknowledgements WHERE key_hash = ? AND terms_version = ?"
INSERT = "INSERT OR IGNORE INTO acknowledgements VALUES (?, ?, ?)"
WHEN = "SELECT acknowledged_at FROM acknowledgements WHERE key_hash = ? AND terms_version = ?"
LEGACY_ROW = "SELECT 1 FROM acknowledgements WHERE key_hash = ? LIMIT 1"
REHASH = """INSERT OR IGNORE INTO acknowledgements (key_hash, terms_version, acknowledged_at)
    SELECT ?, terms_version, acknowledged_at FROM acknowledgements WHERE key_hash = ?"""


class SqliteAckStore:
    """Positive answers are cached (an acknowledgement is never withdrawn) and answered on the loop; a miss
    reads the file, so acknowledgements written by another gateway process sharing the file are seen at once.

    Reads and writes each have a thread and a connection: while another process holds the file's write lock,
    a write waits up to `timeout_s` and then raises StoreUnavailable (routes answer 503), and reads go on (in
    WAL mode a reader needs no lock), so keys acknowledged before are still admitted. The file holds key
    hashes: it and its -wal/-shm companions are 0600 (SQLite gives the companions the database's mode)."""

    def __init__(self, path: Path | str, *, timeout_s: float = 3.0) -> None:
        path = Path(path)
        private_dir(path.parent)
        private_file(path)
        self._writes = SqliteThread(path, "ack-store-write", timeout_s)
        self._writes.run_now(migrate)  # at start-up, before the gateway serves
        self._reads = SqliteThread(path, "ack-store-read", timeout_s)
        for companion in ("-wal", "-shm"):  # left 0644 by a gateway from before this rule
            restrict(path.with_name(path.name + companion))
        self._known: set[tuple[str, str]] = set()

    async def has(self, key_hash: str, version: str) -> bool:
        if (key_hash, version) in self._known:
            return True  # the hot path: no thread hop
        found = await self._reads.call(_exists, HAS, (key_hash, version))
        if found:
            self._known.add((key_hash, version))
        return found

    async def acknowledge(self, key_hash: str, version: str) -> str:
        when = await self._writes.call(_acknowledge, key_hash, version, now_iso())
        self._known.add((key_hash, version))
        return when

    async def rehash(self, legacy_hash: str, key_hash: str) -> int:
        """Move a key's rows from its legacy plain SHA-256 to its keyed hash; returns how many rows moved."""
        if not await self._reads.call(_exists, LEGACY_ROW, (legacy_hash,)):
            return 0  # the common miss: a read, no write lock
        return await self._writes.call(_rehash, legacy_hash, key_hash)

    async def close(self) -> None:
        await self._reads.close()
        await self._writes.close()


# What runs in the store's threads: plain sqlite3, each write one transaction.


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")  # the write lock now, or a busy wait bounded by the connection's timeout
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")  # never half-written
        raise


def _exists(db: sqlite3.Connection, sql: str, params: tuple[str, ...]) -> bool:
    return db.execute(sql, params).fetchone() is not None


def _acknowledge(db: sqlite3.Connection, key_hash: str, version: str, now: str) -> str:
    with transaction(db):
        db.execute(INSERT, (key_hash, version, now))
        return db.execute(WHEN, (key_hash, version)).fetchone()[0]


def _rehash(db: sqlite3.Connection, legacy_hash: str, key_hash: str) -> int:
    with transaction(db):
        moved = db.execute(REHASH, (key_hash, legacy_hash)).rowcount
        db.execute("DELETE FROM acknowledgements WHERE key_hash = ?", (legacy_hash,))
    return moved


def migrate(db: sqlite3.Connection) -> None:
    """Apply numbered migrations past PRAGMA user_version, each in one transaction with its version bump."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(db):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
