"""Socket-tier tests run on both event loops: asyncio's (the tests' default) and uvloop (what `serve` runs)."""

import asyncio

import uvloop


def pytest_asyncio_loop_factories(config, item):
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
