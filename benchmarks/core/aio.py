"""How every benchmark runs its event loop: uvloop when installed, so the load generator stays cheap."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """uvloop when it is installed (a cheaper event loop keeps the generator off the critical path)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
