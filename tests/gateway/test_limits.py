"""Tier 1: concurrency caps answer 429 with Retry-After at once, globally and per key; slots are returned."""

import asyncio

from tests.conftest import ACK, chat_body

CHAT = "/v1/chat/completions"


async def test_over_the_global_cap_is_429_at_once_and_slots_come_back(make_gateway, script):
    gw = await make_gateway(limits={"max_concurrent": 2})
    script.delay_s = 0.5
    held = [asyncio.create_task(gw.post(CHAT, json=chat_body(), headers=ACK)) for _ in range(2)]
    await asyncio.sleep(0.1)
    t0 = asyncio.get_running_loop().time()
    resp = await gw.post(CHAT, json=chat_body(), headers=ACK)
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"]["type"] == "rate_limit_error"
    assert asyncio.get_running_loop().time() - t0 < 0.3  # refused at once, not queued
    assert [r.status for r in await asyncio.gather(*held)] == [200, 200]
    script.delay_s = 0
    assert (await gw.post(CHAT, json=chat_body(), headers=ACK)).status == 200


async def test_per_key_cap_leaves_other_keys_alone(make_gateway, script):
    gw = await make_gateway(keys=["sk-a", "sk-b"], limits={"max_concurrent_per_key": 1})
    a, b = ({**ACK, "Authorization": f"Bearer sk-{k}"} for k in "ab")
    script.delay_s = 0.4
    first = asyncio.create_task(gw.post(CHAT, json=chat_body(), headers=a))
    await asyncio.sleep(0.1)
    assert (await gw.post(CHAT, json=chat_body(), headers=a)).status == 429
    assert (await gw.post(CHAT, json=chat_body(), headers=b)).status == 200
    assert (await first).status == 200


async def test_a_stream_holds_its_slot_until_it_ends(make_gateway, script):
    gw = await make_gateway(limits={"max_concurrent": 1})
    script.gap_s, script.chunks = 0.05, 6
    stream = await gw.post(CHAT, json=chat_body(stream=True), headers=ACK)
    assert (await gw.post(CHAT, json=chat_body(), headers=ACK)).status == 429
    await stream.read()
    assert (await gw.post(CHAT, json=chat_body(), headers=ACK)).status == 200
