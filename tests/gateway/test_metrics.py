"""Tier 1: metric samples after known requests, the exposition, and what the request log leaves out."""

import json
import logging

from tests.conftest import ACK, MODEL, chat_body

P = "medgemma_gateway"
CHAT = "/v1/chat/completions"


def sample(registry, name, **labels):
    return registry.get_sample_value(f"{P}_{name}", labels) or 0


async def test_samples_after_one_stream_and_one_unary_request(gateway, registry):
    await (await gateway.post(CHAT, json=chat_body(), headers=ACK)).read()
    await (await gateway.post(CHAT, json=chat_body(stream=True), headers=ACK)).read()
    labels = {"route": CHAT, "model": MODEL, "status": "200"}
    assert sample(registry, "request_duration_seconds_count", **labels, stream="false") == 1
    assert sample(registry, "request_duration_seconds_count", **labels, stream="true") == 1
    assert sample(registry, "requests_total", **labels) == 2
    assert sample(registry, "time_to_first_token_seconds_count", route=CHAT, model=MODEL) == 1
    assert sample(registry, "inter_token_latency_seconds_count", route=CHAT, model=MODEL) == 7  # 8 tokens
    assert sample(registry, "time_per_output_token_seconds_count", route=CHAT, model=MODEL) == 1
    assert sample(registry, "prompt_tokens_total", model=MODEL) == 10
    assert sample(registry, "completion_tokens_total", model=MODEL) == 16
    assert sample(registry, "added_latency_seconds_count", route=CHAT) == 2
    assert sample(registry, "requests_in_flight", route=CHAT) == 0


async def test_refusals_and_errors_are_counted_with_bounded_labels(gateway, registry):
    await gateway.post(CHAT, json=chat_body())
    await gateway.post(CHAT, json=chat_body(model="someone-elses-model"), headers=ACK)
    assert sample(registry, "terms_refusals_total", reason="missing") == 1
    assert sample(registry, "errors_total", code="model_not_found") == 1
    assert sample(registry, "requests_total", route=CHAT, model="other", status="404") == 1


async def test_upstream_failures_are_counted_by_kind(make_gateway, registry, unused_tcp_port):
    gw = await make_gateway(upstream=f"http://127.0.0.1:{unused_tcp_port}")
    await gw.post(CHAT, json=chat_body(), headers=ACK)
    assert sample(registry, "upstream_errors_total", kind="connect") == 1


async def test_exposition_has_our_names_and_engine_metrics_have_their_own_path(gateway):
    await gateway.post(CHAT, json=chat_body(stream=True), headers=ACK)
    text = await (await gateway.get("/metrics")).text()
    assert f"{P}_time_to_first_token_seconds_bucket" in text and f"{P}_requests_in_flight" in text
    engine = await (await gateway.get("/metrics/engine")).text()
    assert "vllm:num_requests_running" in engine and P not in engine


async def test_request_log_line_never_holds_prompt_key_or_ack(make_gateway, caplog, access_log):
    gw = await make_gateway(keys=["sk-canary-7f3a"])
    canary = "CANARY-patient-Jane-Roe-1957"
    headers = {**ACK, "Authorization": "Bearer sk-canary-7f3a"}
    with caplog.at_level(logging.DEBUG):
        await gw.post(CHAT, json=chat_body(messages=[{"role": "user", "content": canary}]), headers=headers)
        await gw.post(
            CHAT, json=chat_body(stream=True, messages=[{"role": "user", "content": canary}]), headers=headers
        )
    access = access_log.lines()
    assert [(a["route"], a["stream"], a["status"], a["model"]) for a in access] == [
        (CHAT, False, 200, MODEL),
        (CHAT, True, 200, MODEL),
    ]
    assert all(a["request_id"] and a["latency_ms"] >= a["gateway_ms"] > 0 for a in access)
    assert access[0]["completion_tokens"] > 0 and "ttft_ms" in access[1]
    everything = "\n".join(r.getMessage() for r in caplog.records) + json.dumps(access)
    for secret in (canary, "sk-canary-7f3a", "2024-11-15"):
        assert secret not in everything
