"""What every acknowledgement store offers: which key hash accepted which terms version, and when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class StoreUnavailable(RuntimeError):
    """The acknowledgement store cannot be read or written; model routes must refuse, never bypass."""


class AckStore(Protocol):
    async def has(self, key_hash: str, version: str) -> bool: ...
    async def acknowledge(self, key_hash: str, version: str) -> str: ...
    # A key's rows under its legacy plain SHA-256 (written before keyed hashes) move to its keyed hash.
    async def rehash(self, legacy_hash: str, key_hash: str) -> int: ...
    async def close(self) -> None: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
