"""Acknowledgements in an embedded SQLite file (the default store), migrated on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from serve.gateway.stores.base import StoreUnavailable, now_iso
from serve.gateway.stores.private import private_dir, private_file, restrict

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


LEGACY_ROW = "SELECT 1 FROM acknowledgements WHERE key_hash = ? LIMIT 1"
REHASH = """INSERT OR IGNORE INTO acknowledgements (key_hash, terms_version, acknowledged_at)
    SELECT ?, terms_version, acknowledged_at FROM acknowledgements WHERE key_hash = ?"""


class SqliteAckStore:
    """Positive answers are cached (an acknowledgement is never withdrawn); a miss reads the file, so
    acknowledgements written by another gateway process sharing the file are seen at once. The file holds key
    hashes: it and its -wal/-shm companions are 0600 (SQLite gives the companions the database's mode)."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        private_dir(path.parent)
        private_file(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one short transaction per write.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an answered acknowledgement survives a crash
        migrate(self._db)
        for companion in ("-wal", "-shm"):  # left 0644 by a gateway from before this rule
            restrict(path.with_name(path.name + companion))
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

    async def rehash(self, legacy_hash: str, key_hash: str) -> int:
        """Move a key's rows from its legacy plain SHA-256 to its keyed hash; returns how many rows moved."""
        try:
            if not self._db.execute(LEGACY_ROW, (legacy_hash,)).fetchone():
                return 0  # the common miss: a read, no write lock
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = self._db.execute(REHASH, (key_hash, legacy_hash)).rowcount
                self._db.execute("DELETE FROM acknowledgements WHERE key_hash = ?", (legacy_hash,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from None
        return moved

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
