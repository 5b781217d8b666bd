"""One SQLite connection owned by one thread: the event loop hands it calls, which run there in order, each
allowed to wait for the file's lock only until its deadline. sqlite3 blocks (lock waits, an fsync per commit):
never on the loop, where one wait would stall every stream of the gateway."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from serve.gateway.stores.base import StoreUnavailable

T = TypeVar("T")


def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one short transaction per write.
    db = sqlite3.connect(str(path), isolation_level=None, timeout=timeout_s)
    db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer's lock
    db.execute("PRAGMA synchronous=FULL")  # an answered acknowledgement survives a crash
    return db


def wait_budget_ms(deadline: float, now: float) -> int | None:
    """How long a call may still wait for the lock, or None when its time went by waiting in line."""
    left = deadline - now
    return max(1, int(left * 1000)) if left > 0 else None


class SqliteThread:
    """Calls run one at a time, in order, in this object's thread (the only thread that uses its connection).
    A call answers within `timeout_s` of being made, however long the line before it: time spent in line
    counts, so a held lock costs each caller one timeout, not one per call queued ahead of it."""

    def __init__(self, path: Path, name: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db = self._executor.submit(connect, path, timeout_s).result()  # opened where it is used
        self._closed = False

    def run_now(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking, for start-up only (before the gateway serves): migrations."""
        return self._executor.submit(fn, self._db, *args).result()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(connection, *args) in the thread; a sqlite3 error or a missed deadline is StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("sqlite: the store is closed")
        deadline = time.monotonic() + self.timeout_s
        work = self._executor.submit(self._within, deadline, fn, args)
        try:
            # Bounded here too: a call in line behind a slow one (an fsync on a stalled disk) is answered at
            # its deadline. If it has not started, it never runs; if it has, its result is dropped (a write may
            # still commit: the client, told 503, acknowledges again and gets the stored row).
            return await asyncio.wait_for(asyncio.wrap_future(work), self.timeout_s)
        except TimeoutError:
            raise StoreUnavailable(f"sqlite: no answer within {self.timeout_s:g} s") from None
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from None

    def _within(self, deadline: float, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        budget = wait_budget_ms(deadline, time.monotonic())
        if budget is None:
            raise StoreUnavailable(f"sqlite: still waiting for the store after {self.timeout_s:g} s")
        self._db.execute(f"PRAGMA busy_timeout = {budget}")
        return fn(self._db, *args)

    async def close(self) -> None:
        """Calls already made still run (each within its deadline); then the connection closes and the thread
        ends, and this returns once it has."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._db.close)
        await asyncio.to_thread(self._executor.shutdown, wait=True)
