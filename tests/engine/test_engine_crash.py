"""Tier 3 fault test: the engine is SIGKILLed under load; in-flight requests end cleanly, the stack recovers.

Marked `disruptive`: it runs after every other test of the session, since the engine restarts (~2 min on CPU).
"""

import asyncio
import json
import os
import re
import signal
import time
import urllib.request

import aiohttp
import psutil
import pytest

from tests.corpus import ACK

pytestmark = [pytest.mark.engine, pytest.mark.disruptive]
STREAMS, UNARY = 24, 8


def engine_process(stack) -> psutil.Process:
    for child in psutil.Process(stack.proc.pid).children():
        if "serve" in child.cmdline() and any(part.endswith("vllm") for part in child.cmdline()):
            return child
    raise AssertionError("no vllm child found under the launcher")


def gateway_metric(stack, name: str) -> float:
    with urllib.request.urlopen(stack.gateway_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def health(stack) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(stack.gateway_url + "/health", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def one(session, stack, stream: bool) -> tuple[float, int, bytes]:
    body = {
        "model": stack.model,
        "messages": [{"role": "user", "content": "long answer"}],
        "max_tokens": 1800,
        "ignore_eos": True,
        "stream": stream,
    }
    async with session.post(stack.gateway_url + "/v1/chat/completions", json=body, headers=ACK) as resp:
        data = await resp.read()
        return time.monotonic(), resp.status, data


async def load_and_kill(stack):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        tasks = [asyncio.create_task(one(session, stack, i < STREAMS)) for i in range(STREAMS + UNARY)]
        await asyncio.sleep(3)  # all admitted and generating (1800 tokens take far longer than this)
        assert not any(t.done() for t in tasks)
        os.kill(engine_process(stack).pid, signal.SIGKILL)
        killed = time.monotonic()
        return killed, await asyncio.gather(*tasks)


def test_engine_killed_under_load_fails_in_flight_cleanly_and_recovers(stack):
    errors_before = gateway_metric(stack, "medgemma_gateway_upstream_errors_total")
    killed, results = asyncio.run(load_and_kill(stack))
    for ended, status, data in results:
        assert ended - killed < 2.0, "a request hung after the engine died"
        if data.startswith(b"data: "):  # a stream: in-band error, then [DONE]
            frames = [f for f in data.split(b"\n\n") if f]
            assert frames[-1] == b"data: [DONE]"
            assert json.loads(frames[-2][6:])["error"]["code"] in ("engine_error", "engine_unavailable")
        else:
            assert status in (502, 503) and json.loads(data)["error"]["type"] == "server_error"
    assert gateway_metric(stack, "medgemma_gateway_upstream_errors_total") >= errors_before + STREAMS + UNARY
    status, body = health(stack)
    assert status == 503 and body["engine"] == "down"
    deadline = time.monotonic() + 600
    while health(stack)[0] != 200:  # the supervisor restarts the engine; no operator action
        assert time.monotonic() < deadline, "the engine did not come back"
        time.sleep(2)
    answer = stack.client().chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert answer.choices[0].message.content
