"""The capacity bench's reference, the bare aiohttp proxy: it forwards and relays, and does nothing else."""

import json

from benchmarks.capacity.bare_proxy import create_app
from tests.conftest import MODEL


async def test_it_relays_answers_and_streams_unchanged_and_adds_nothing(aiohttp_client, engine, script):
    script.chunks = 3
    proxy = await aiohttp_client(create_app(str(engine.make_url("")).rstrip("/")))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    direct = await (await engine_post(aiohttp_client, engine, body)).read()
    resp = await proxy.post("/v1/chat/completions", json=body)
    relayed = await resp.read()
    assert resp.status == 200 and json.loads(relayed)["choices"] == json.loads(direct)["choices"]
    assert "disclaimer" not in json.loads(relayed) and script.seen[-1] == body  # nothing added either way
    resp = await proxy.post("/v1/chat/completions", json={**body, "stream": True})
    frames = [f for f in (await resp.read()).split(b"\n\n") if f]
    assert resp.content_type == "text/event-stream" and frames[-1] == b"data: [DONE]" and len(frames) >= 4
    assert (await proxy.get("/health")).status == 200


async def engine_post(aiohttp_client, engine, body):
    client = await aiohttp_client(engine)
    return await client.post("/v1/chat/completions", json=body)
