"""Tier 1: the gateway against the scripted fake engine; pass-through, disclaimer, streams, errors."""

import asyncio
import json

from serve import terms
from serve.gateway.engine_client import proxy
from serve.gateway.rewrite.sse import StreamRewriter
from tests.conftest import ACK, MODEL, chat_body


def sse_frames(text: str) -> list[str]:
    return [f.removeprefix("data: ") for f in text.split("\n\n") if f]


async def test_chat_reaches_engine_with_disclaimer_as_first_system_turn(gateway, script):
    resp = await gateway.post("/v1/chat/completions", json=chat_body(), headers=ACK)
    assert resp.status == 200
    sent = script.seen[-1]["messages"]
    assert sent[0] == {"role": "system", "content": terms.DISCLAIMER}
    assert [m["role"] for m in sent] == ["system", "user"]


async def test_json_answer_carries_disclaimer_three_ways(gateway):
    resp = await gateway.post("/v1/chat/completions", json=chat_body(), headers=ACK)
    body = await resp.json()
    assert body["disclaimer"] == terms.DISCLAIMER
    assert body["choices"][0]["message"]["content"].endswith("\n\n" + terms.DISCLAIMER)
    assert resp.headers["X-Disclaimer"] == terms.DISCLAIMER


async def test_append_off_keeps_output_but_still_carries_field_and_header(make_gateway):
    gw = await make_gateway(disclaimer={"append_to_output": False})
    body = await (await gw.post("/v1/chat/completions", json=chat_body(), headers=ACK)).json()
    assert terms.DISCLAIMER not in body["choices"][0]["message"]["content"]
    assert body["disclaimer"] == terms.DISCLAIMER


async def test_license_header_and_key_never_reach_the_engine(make_gateway, script):
    gw = await make_gateway(keys=["sk-secret"])
    headers = {**ACK, "Authorization": "Bearer sk-secret", "X-Request-Id": "req-42"}
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=headers)).status == 200
    sent = {k.lower() for k in script.headers[-1]}
    assert "authorization" not in sent and "hai-def-acknowledged" not in sent
    assert script.headers[-1]["X-Request-Id"] == "req-42"


async def test_request_id_is_propagated_or_made(gateway, script):
    resp = await gateway.post(
        "/v1/chat/completions", json=chat_body(), headers={**ACK, "X-Request-Id": "abc-1"}
    )
    assert resp.headers["X-Request-Id"] == "abc-1" and script.headers[-1]["X-Request-Id"] == "abc-1"
    resp = await gateway.post("/v1/chat/completions", json=chat_body(), headers=ACK)
    assert len(resp.headers["X-Request-Id"]) == 32
    assert script.headers[-1]["X-Request-Id"] == resp.headers["X-Request-Id"]


async def test_unsafe_request_id_is_refused_not_forwarded(gateway, script):
    for bad in ("bad id!", "a" * 200, "x%0d%0aSet-Cookie:1", "<script>"):
        resp = await gateway.post(
            "/v1/chat/completions", json=chat_body(), headers={**ACK, "X-Request-Id": bad}
        )
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_request_id"
        assert resp.headers["X-Request-Id"] != bad
    assert script.seen == []


async def test_stream_ends_with_disclaimer_chunk_then_done_and_strips_usage_we_asked_for(gateway, script):
    resp = await gateway.post("/v1/chat/completions", json=chat_body(stream=True), headers=ACK)
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    frames = sse_frames(await resp.text())
    assert script.seen[-1]["stream_options"] == {"include_usage": True}
    assert frames[-1] == "[DONE]"
    last = json.loads(frames[-2])
    assert last["disclaimer"] == terms.DISCLAIMER and last["choices"] == []
    assert json.loads(frames[-4])["choices"][0]["delta"]["content"] == "\n\n" + terms.DISCLAIMER
    assert json.loads(frames[-3])["choices"][0]["finish_reason"] == "length"  # the finish after our text
    assert not any('"usage"' in f for f in frames)
    content = "".join(json.loads(f)["choices"][0]["delta"].get("content", "") for f in frames[:-2])
    assert content.startswith("tok0 tok1 ")


async def test_stream_keeps_usage_when_client_asked(gateway):
    body = chat_body(stream=True, stream_options={"include_usage": True})
    frames = sse_frames(await (await gateway.post("/v1/chat/completions", json=body, headers=ACK)).text())
    assert json.loads(frames[-2])["usage"]["completion_tokens"] == 8
    assert json.loads(frames[-3])["disclaimer"] == terms.DISCLAIMER


async def test_completions_prompt_untouched_and_disclaimer_on_output(gateway, script):
    body = {"model": MODEL, "prompt": "Water boils at"}
    answer = await (await gateway.post("/v1/completions", json=body, headers=ACK)).json()
    assert script.seen[-1]["prompt"] == "Water boils at" and "messages" not in script.seen[-1]
    assert answer["choices"][0]["text"].endswith(terms.DISCLAIMER)
    frames = sse_frames(
        await (await gateway.post("/v1/completions", json={**body, "stream": True}, headers=ACK)).text()
    )
    assert json.loads(frames[-4])["choices"][0]["text"] == "\n\n" + terms.DISCLAIMER


async def test_unknown_model_is_404_envelope(gateway):
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="gpt-4"), headers=ACK)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "model_not_found"


async def test_engine_only_routes_are_not_exposed(gateway):
    for method, path in (
        ("GET", "/tokenizer_info"),
        ("GET", "/pause"),
        ("POST", "/v1/embeddings"),
        ("GET", "/version"),
    ):
        resp = await gateway.request(method, path, headers=ACK)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "route_not_found"


async def test_engine_errors_pass_through_unchanged(gateway, script):
    script.status = 400
    resp = await gateway.post("/v1/chat/completions", json=chat_body(), headers=ACK)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == "scripted engine error"


async def test_engine_down_is_503_with_retry_after(make_gateway, unused_tcp_port):
    gw = await make_gateway(upstream=f"http://127.0.0.1:{unused_tcp_port}")
    resp = await gw.post("/v1/chat/completions", json=chat_body(), headers=ACK)
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert (await resp.json())["error"]["code"] == "engine_unavailable"
    health = await gw.get("/health")
    assert health.status == 503 and (await health.json())["engine"] == "down"


async def test_an_answer_past_the_total_limit_gives_504_and_gateway_keeps_serving(make_gateway, script):
    gw = await make_gateway(timeouts={"total_s": 0.2})
    script.delay_s = 1.0
    slow = asyncio.create_task(gw.post("/v1/chat/completions", json=chat_body(), headers=ACK))
    await asyncio.sleep(0.05)
    assert (await gw.get("/v1/terms")).status == 200  # not blocked by the hung request
    resp = await slow
    error = (await resp.json())["error"]
    assert resp.status == 504 and error["code"] == "engine_timeout" and "total limit" in error["message"]


async def test_engine_dying_mid_stream_ends_with_error_frame_then_done(gateway, script):
    script.die_after = 3
    frames = sse_frames(
        await (await gateway.post("/v1/chat/completions", json=chat_body(stream=True), headers=ACK)).text()
    )
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["error"]["code"] == "engine_error"


async def test_unexpected_failure_mid_stream_ends_with_error_frame_then_done(gateway, monkeypatch):
    def broken(self, data, now):
        raise RuntimeError("a bug in the relay")

    monkeypatch.setattr(StreamRewriter, "feed", broken)
    resp = await gateway.post("/v1/chat/completions", json=chat_body(stream=True), headers=ACK)
    frames = sse_frames(await resp.text())  # a cut connection would raise here instead
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["error"]["code"] == "engine_error"


async def test_a_failure_after_the_last_frame_still_ends_the_stream_cleanly(gateway, monkeypatch):
    def broken(*args):
        raise RuntimeError("a bug in the metrics")

    monkeypatch.setattr(proxy, "observe_stream", broken)
    resp = await gateway.post("/v1/chat/completions", json=chat_body(stream=True), headers=ACK)
    frames = sse_frames(await resp.text())  # a second (500) response on the connection would cut it here
    assert resp.status == 200 and frames[-1] == "[DONE]"
    assert not any('"error"' in frame for frame in frames)
    assert (await gateway.get("/v1/terms")).status == 200


async def test_client_disconnect_cancels_the_engine_stream(gateway, script):
    script.gap_s, script.chunks = 0.05, 100
    resp = await gateway.post("/v1/chat/completions", json=chat_body(stream=True), headers=ACK)
    await resp.content.readline()
    resp.close()
    for _ in range(40):
        if script.cancelled:
            break
        await asyncio.sleep(0.05)
    assert script.cancelled == 1


async def test_bad_json_and_bad_messages_are_400_envelopes(gateway):
    cases = [
        b"{not json",
        b"[1, 2]",
        json.dumps({"model": MODEL, "messages": []}).encode(),
        json.dumps({"model": MODEL, "messages": [{"content": "no role"}]}).encode(),
        json.dumps({"model": MODEL, "messages": [{"role": "user", "content": 5}]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(),
        json.dumps({**chat_body(), "stream": "yes"}).encode(),
    ]
    for raw in cases:
        resp = await gateway.post(
            "/v1/chat/completions", data=raw, headers={**ACK, "Content-Type": "application/json"}
        )
        assert resp.status == 400, raw
        error = (await resp.json())["error"]
        assert set(error) == {"message", "type", "param", "code"} and isinstance(error["code"], str)


async def test_body_over_the_limit_is_413_envelope(make_gateway):
    gw = await make_gateway(max_body_bytes=1024)
    resp = await gw.post("/v1/chat/completions", json=chat_body(pad="x" * 4096), headers=ACK)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "request_too_large"


async def test_models_list_is_guarded_and_relayed(gateway):
    assert (await gateway.get("/v1/models")).status == 403
    body = await (await gateway.get("/v1/models", headers=ACK)).json()
    assert body["data"][0]["id"] == MODEL


async def test_health_reports_gateway_and_engine(gateway):
    assert await (await gateway.get("/health")).json() == {"status": "ok", "gateway": "ok", "engine": "ok"}
