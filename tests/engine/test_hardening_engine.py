"""Tier 3 hardening: the bad-input corpus, vLLM's extension fields, disconnects, PHI-safe logs on the real stack."""

import asyncio
import json
import re
import time
import urllib.request

import aiohttp
import openai
import pytest
import yaml

from serve import terms
from tests.corpus import ACK, corpus
from tests.engine.conftest import ROOT

pytestmark = pytest.mark.engine


def running(stack) -> float:
    with urllib.request.urlopen(stack.engine_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(v) for v in re.findall(r"^vllm:num_requests_running\{[^}]*\} (\S+)$", text, re.M))


def normal_request_works(stack) -> bool:
    out = stack.client().chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    return bool(out.choices[0].message.content)


def test_bad_input_corpus_gets_4xx_envelopes_and_the_stack_keeps_serving(stack):
    vllm = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())["vllm"]
    items = corpus(stack.model, vllm["max-model-len"], max_images=vllm["limit-mm-per-prompt"]["image"])
    assert len(items) >= 300

    async def send_all():
        results = []
        async with aiohttp.ClientSession() as session:
            for bad in items:
                headers = {"Content-Type": "application/json", **ACK, **bad.headers}
                async with session.post(stack.gateway_url + bad.path, data=bad.body, headers=headers) as resp:
                    results.append((bad, resp.status, await resp.read()))
        return results

    results = asyncio.run(send_all())
    wrong = []
    for bad, status, body in results:
        try:
            error = json.loads(body)["error"]
            envelope_ok = set(error) >= {"message", "type", "param", "code"} and error["message"]
        except (ValueError, KeyError, TypeError):
            envelope_ok = False
        if status not in bad.status or not envelope_ok:
            wrong.append((bad.name, status, body[:200]))
    assert not wrong, f"{len(wrong)} of {len(items)} bad requests were not refused cleanly: {wrong[:10]}"
    assert all(status < 500 for _, status, _ in results)
    assert normal_request_works(stack)


def test_vllm_extension_fields_pass_through_and_are_honoured(stack):
    client = stack.client()
    msgs = [{"role": "user", "content": "Count."}]
    exact = client.chat.completions.create(
        model=stack.model, messages=msgs, max_tokens=12, extra_body={"ignore_eos": True, "top_k": 5}
    )
    assert exact.usage.completion_tokens == 12
    at_least = client.chat.completions.create(
        model=stack.model, messages=msgs, max_completion_tokens=7, extra_body={"min_tokens": 7}
    )
    assert at_least.usage.completion_tokens == 7
    choice = client.chat.completions.create(
        model=stack.model,
        messages=msgs,
        max_tokens=8,
        extra_body={"structured_outputs": {"choice": ["normal", "abnormal"]}},
    )
    # A constrained answer is machine-readable: its content is the engine's alone (the disclaimer travels in the
    # top-level field and the header), so it is read as it is.
    assert choice.choices[0].message.content in ("normal", "abnormal")
    assert choice.model_extra["disclaimer"] == terms.DISCLAIMER
    # A JSON shape forced by vLLM's own regex constraint.
    structured = client.chat.completions.create(
        model=stack.model,
        messages=msgs,
        max_tokens=32,
        extra_body={"structured_outputs": {"regex": r'\{"finding":"(normal|abnormal)"\}'}},
    )
    answer = json.loads(structured.choices[0].message.content)
    assert answer["finding"] in ("normal", "abnormal")


def test_client_disconnect_mid_stream_frees_the_engine_within_a_second(stack):
    async def start_and_drop():
        async with aiohttp.ClientSession() as session:
            body = {
                "model": stack.model,
                "messages": [{"role": "user", "content": "long"}],
                "max_tokens": 1500,
                "stream": True,
                "ignore_eos": True,
            }
            resp = await session.post(stack.gateway_url + "/v1/chat/completions", json=body, headers=ACK)
            assert resp.status == 200, await resp.text()
            first = await asyncio.wait_for(resp.content.readline(), 60)
            deadline = time.monotonic() + 60
            while running(stack) < 1:
                assert time.monotonic() < deadline, (
                    f"the engine never reported the stream as running: {first!r}"
                )
                await asyncio.sleep(0.05)
            resp.close()  # the client goes away
            return time.monotonic()

    dropped = asyncio.run(start_and_drop())
    while running(stack) > 0 and time.monotonic() - dropped < 5:
        time.sleep(0.05)
    assert running(stack) == 0 and time.monotonic() - dropped < 1.0


def test_logs_of_the_whole_stack_never_hold_prompts_keys_or_acks(stack):
    canaries = {
        "prompt": "CANARY-prompt-4e1f",
        "system": "CANARY-system-90ab",
        "image_text": "CANARY-image-77cd",
        "user_field": "CANARY-user-5d2e",
        "stop": "CANARY-stop-3c3c",
    }
    client = stack.client()
    client.chat.completions.create(
        model=stack.model,
        max_tokens=4,
        user=canaries["user_field"],
        stop=[canaries["stop"]],
        messages=[
            {"role": "system", "content": canaries["system"]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": canaries["prompt"]},
                    {"type": "text", "text": canaries["image_text"]},
                ],
            },
        ],
    )
    list(
        client.chat.completions.create(
            model=stack.model,
            max_tokens=4,
            stream=True,
            messages=[{"role": "user", "content": canaries["prompt"]}],
        )
    )
    refused = stack.client(ack=False, default_headers={"HAI-DEF-Acknowledged": "CANARY-ack-6b6b"})
    with pytest.raises(openai.PermissionDeniedError):
        refused.chat.completions.create(
            model=stack.model, max_tokens=4, messages=[{"role": "user", "content": "x"}]
        )
    canaries["ack_header"] = "CANARY-ack-6b6b"
    time.sleep(0.5)
    log = "\n".join(stack.log)
    assert '"route":"/v1/chat/completions"' in log and '"status":403' in log  # the access lines are there
    for where, canary in canaries.items():
        assert canary not in log, f"{where} leaked into the logs"
