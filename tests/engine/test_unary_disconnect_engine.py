"""Tier 3: a client that leaves mid non-streamed request frees the engine, as a streamed one does
(tests/engine/test_hardening_engine.py): the gateway closes its engine connection and vLLM aborts the request."""

import asyncio
import re
import time
import urllib.request

import aiohttp
import pytest

from tests.corpus import ACK

pytestmark = pytest.mark.engine
WAIT_S = 30  # generous: a loaded 2-core machine; no timing is asserted


def engine_metric(stack, name: str, labels: str = "") -> float:
    """The sum of an engine metric's samples whose labels include `labels` (e.g. 'finished_reason="length"')."""
    with urllib.request.urlopen(stack.engine_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$"
    return sum(float(v) for found, v in re.findall(pattern, text, re.M) if labels in found)


def running(stack) -> float:
    return engine_metric(stack, "vllm:num_requests_running")


def finished_by_length(stack) -> float:
    return engine_metric(stack, "vllm:request_success_total", 'finished_reason="length"')


def test_client_disconnect_mid_unary_request_frees_the_engine(stack):
    async def start_and_drop() -> None:
        body = {
            "model": stack.model,
            "messages": [{"role": "user", "content": "long"}],
            "max_tokens": 1500,  # minutes of CPU decoding: it would still run long after the client left
            "ignore_eos": True,
        }
        async with aiohttp.ClientSession() as session:
            call = asyncio.create_task(
                session.post(stack.gateway_url + "/v1/chat/completions", json=body, headers=ACK)
            )
            deadline = time.monotonic() + 60
            while running(stack) < 1:
                if call.done():
                    tail = "\n".join(list(stack.log)[-10:])
                    raise AssertionError(f"the request ended before it ran: {call.result().status}\n{tail}")
                assert time.monotonic() < deadline, "the engine never reported the request as running"
                await asyncio.sleep(0.05)
            call.cancel()  # the client goes away: its connection closes before any answer
            with pytest.raises(asyncio.CancelledError):
                await call

    completed = finished_by_length(stack)
    asyncio.run(start_and_drop())
    deadline = time.monotonic() + WAIT_S
    while running(stack) > 0:
        assert time.monotonic() < deadline, f"the engine still runs the abandoned request after {WAIT_S} s"
        time.sleep(0.1)
    assert finished_by_length(stack) == completed  # aborted, not run to its max_tokens
    out = stack.client().chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert out.choices[0].message.content  # and the stack keeps serving
