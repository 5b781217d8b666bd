"""What clients can make the engine do: /health shares one probe, and the engine pool opens a bounded number
of connections whatever the clients send."""

import asyncio

import pytest
from aiohttp import web

from serve.gateway import dependencies
from serve.gateway.engine_client.readiness import Health, SharedProbe
from testkit.fake_engine import Script, create_fake_upstream
from tests.conftest import ACK, MODEL


@pytest.fixture
async def counted_engine(aiohttp_server, script):
    """The scripted fake engine, counting requests per path and the connections it accepted."""
    seen = {"paths": [], "peers": set()}

    @web.middleware
    async def count(request, handler):
        seen["paths"].append(request.path)
        seen["peers"].add(request.transport.get_extra_info("peername"))
        return await handler(request)

    app = create_fake_upstream(script)
    app.middlewares.append(count)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), seen


async def test_400_concurrent_health_checks_cost_the_engine_one_probe(
    make_gateway, counted_engine, monkeypatch
):
    monkeypatch.setattr(dependencies, "HEALTH_TTL_S", 60.0)  # however slowly the 400 arrive, one probe
    url, seen = counted_engine
    gw = await make_gateway(upstream=url)

    async def health():
        async with gw.get("/health") as resp:
            return resp.status

    assert await asyncio.gather(*(health() for _ in range(400))) == [200] * 400
    assert sorted(seen["paths"]) == ["/health", "/metrics"]


async def test_the_engine_pool_never_opens_more_than_its_cap(make_gateway, counted_engine, script: Script):
    script.delay_s = 0.2  # requests overlap, so each would want a connection of its own
    url, seen = counted_engine
    gw = await make_gateway(upstream=url, limits={"max_engine_connections": 4})
    body = {"model": MODEL, "prompt": "hi", "max_tokens": 2}

    async def complete():
        async with gw.post("/v1/completions", json=body, headers=ACK) as resp:
            return resp.status

    assert await asyncio.gather(*(complete() for _ in range(30))) == [200] * 30
    assert len(seen["paths"]) == 30 and len(seen["peers"]) <= 4


def test_the_pool_cap_defaults_above_the_concurrency_cap():
    from serve.config import LimitSettings

    assert LimitSettings().engine_connections > LimitSettings().max_concurrent
    assert LimitSettings(max_concurrent=5000).engine_connections > 5000
    assert LimitSettings(max_engine_connections=7).engine_connections == 7


async def test_concurrent_callers_share_one_probe_and_its_answer_for_the_ttl():
    calls, release = [], asyncio.Event()

    async def probe():
        calls.append(1)
        await release.wait()
        return Health(True, [])

    shared = SharedProbe(ttl_s=60)
    waiting = [asyncio.create_task(shared.get(probe)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert {(await w).ready for w in waiting} == {True} and len(calls) == 1
    await shared.get(probe)
    assert len(calls) == 1  # within the ttl: the same answer


async def test_an_expired_or_failed_probe_is_not_reused():
    calls = []

    async def probe():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("probe failed")
        return Health(len(calls) % 2 == 1, [])

    shared = SharedProbe(ttl_s=0)
    assert (await shared.get(probe)).ready
    with pytest.raises(RuntimeError):
        await shared.get(probe)
    assert (await shared.get(probe)).ready and len(calls) == 3


async def test_a_caller_that_leaves_does_not_cancel_the_probe_others_wait_on():
    release = asyncio.Event()

    async def probe():
        await release.wait()
        return Health(True, [{"engine": "0"}])

    shared = SharedProbe(ttl_s=60)
    leaving = asyncio.create_task(shared.get(probe))
    staying = asyncio.create_task(shared.get(probe))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert (await staying).replicas == [{"engine": "0"}]
