"""Durable acknowledgements: which key hash accepted which terms version, when; embedded SQLite."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 1
MIGRATIONS = {
    1: """
    CREATE TABLE acknowledgements (
        key_hash TEXT NOT NULL,
        terms_version TEXT NOT NULL,
        acknowledged_at TEXT NOT NULL,
        PRIMARY KEY (key_hash, terms_version)
    );
    """,
}


class AckStore:
    """Reads are served from memory (a set loaded at start); writes go through to SQLite before returning."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the event loop thread only; each write is one short transaction.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "PRAGMA synchronous=FULL"
        )  # an acknowledgement that was answered 200 survives a crash
        migrate(self._db)
        self._known = set(self._db.execute("SELECT key_hash, terms_version FROM acknowledgements"))

    def has(self, key_hash: str, version: str) -> bool:
        return (key_hash, version) in self._known

    def acknowledge(self, key_hash: str, version: str) -> str:
        when = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK: never half-written
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO acknowledgements VALUES (?, ?, ?)", (key_hash, version, when)
            )
        self._known.add((key_hash, version))
        row = self._db.execute(
            "SELECT acknowledged_at FROM acknowledgements WHERE key_hash = ? AND terms_version = ?",
            (key_hash, version),
        ).fetchone()
        return row[0]

    def close(self) -> None:
        self._db.close()


def migrate(db: sqlite3.Connection) -> None:
    """Apply numbered migrations past PRAGMA user_version, each in its own transaction."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with db:
            db.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
