"""`python -m benchmarks.loopblock.locker`: another process writing to a gateway's SQLite store. On stdin,
`lock PATH` takes the file's write lock (BEGIN IMMEDIATE) and holds it, `unlock` lets it go; each command is
answered with one line once done."""

from __future__ import annotations

import sqlite3
import sys


def main() -> int:
    db: sqlite3.Connection | None = None
    for line in sys.stdin:
        command, _, path = line.strip().partition(" ")
        if command == "lock":
            db = sqlite3.connect(path, isolation_level=None, timeout=60)
            db.execute("BEGIN IMMEDIATE")  # held until `unlock`: every other writer waits
        elif command == "unlock" and db is not None:
            db.execute("ROLLBACK")
            db.close()
            db = None
        print(f"{command} done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
