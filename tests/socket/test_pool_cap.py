"""The upstream pool opens at most `max_connections`: past it requests wait (bounded) for a free connection."""

from __future__ import annotations

import asyncio

import pytest

from serve.gateway.engine_client.http1 import ConnectFailed, Pool, PoolTimeout
from tests.socket.test_http1 import Reader, Server, Writer, answer


def gated_server(gate: asyncio.Event) -> Server:
    """Answers every request on a connection, each once `gate` is set; counts connections (server.connections)."""

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while True:
            await server.read_request(reader)
            await gate.wait()
            writer.write(answer(b"{}"))

    server = Server(handler)
    return server


async def ask(pool: Pool) -> int:
    async with await pool.request("GET", "/x") as resp:
        await resp.read()
        return resp.status


async def test_requests_past_the_cap_wait_for_a_connection_instead_of_opening_more():
    gate = asyncio.Event()
    async with gated_server(gate) as server:
        pool = Pool(server.url, max_connections=3, connect_timeout_s=60)
        calls = [asyncio.create_task(ask(pool)) for _ in range(40)]
        while len(server.requests) < 3:  # the first three hold every connection the pool may open
            await asyncio.sleep(0.01)
        gate.set()
        assert await asyncio.wait_for(asyncio.gather(*calls), 60) == [200] * 40
        pool.close()
    assert server.connections <= 3 and len(server.requests) == 40


async def test_a_wait_past_the_connect_timeout_is_a_connect_failure():
    gate = asyncio.Event()  # never set: the one connection stays busy
    async with gated_server(gate) as server:
        pool = Pool(server.url, max_connections=1, connect_timeout_s=1.0)
        busy = asyncio.create_task(ask(pool))
        while not server.requests:
            await asyncio.sleep(0.01)
        with pytest.raises(PoolTimeout) as caught:
            await ask(pool)
        assert isinstance(caught.value, ConnectFailed) and caught.value.kind == "connect"
        busy.cancel()
        pool.close()
    assert server.connections == 1


async def test_a_waiter_that_leaves_does_not_lose_the_connection_it_was_handed():
    gate = asyncio.Event()
    async with gated_server(gate) as server:
        pool = Pool(server.url, max_connections=1, connect_timeout_s=60)
        first = asyncio.create_task(ask(pool))
        while not server.requests:
            await asyncio.sleep(0.01)
        leaving = asyncio.create_task(ask(pool))
        staying = asyncio.create_task(ask(pool))
        await asyncio.sleep(0.05)  # both wait now (order does not matter to the assertions)
        gate.set()
        leaving.cancel()
        assert await asyncio.wait_for(first, 60) == 200
        assert await asyncio.wait_for(staying, 60) == 200
        assert await asyncio.wait_for(ask(pool), 60) == 200  # the one connection is still usable
        pool.close()
    assert server.connections == 1
