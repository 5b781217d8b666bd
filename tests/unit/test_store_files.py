"""The SQLite store holds key hashes: its directory, file and WAL companions are private to the gateway's user."""

import os
import stat

from serve.gateway.stores.sqlite import SqliteAckStore


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_store_directory_file_and_wal_companions_are_private(tmp_path):
    old = os.umask(0o022)  # the usual umask, which gave 0644 files before
    try:
        db = tmp_path / ".state" / "acks.sqlite3"
        store = SqliteAckStore(db)
        await store.acknowledge("ab" * 32, "v1")
        assert mode(db.parent) == 0o700
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            assert path.exists() and mode(path) == 0o600, path.name
        await store.close()
    finally:
        os.umask(old)


async def test_store_made_before_the_rule_is_made_private_on_open(tmp_path):
    tmp_path.chmod(0o755)
    first = SqliteAckStore(tmp_path / "acks.sqlite3")
    await first.acknowledge("ab" * 32, "v1")
    for path in tmp_path.glob("acks.sqlite3*"):
        path.chmod(0o644)
    again = SqliteAckStore(tmp_path / "acks.sqlite3")
    assert {p.name: mode(p) for p in tmp_path.glob("acks.sqlite3*")} == {
        "acks.sqlite3": 0o600,
        "acks.sqlite3-wal": 0o600,
        "acks.sqlite3-shm": 0o600,
    }
    assert mode(tmp_path) == 0o755  # a directory that existed is the operator's: left as it is
    await first.close()
    await again.close()
