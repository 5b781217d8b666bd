"""Tier 1: machine-readable answers (structured output, tool calls) pass the gateway byte for byte, while the
disclaimer travels in the top-level field, the header and a disclaimer-only final chunk; the SDK parses them."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from aiohttp import web
from openai import AsyncOpenAI
from pydantic import BaseModel

from serve import terms
from tests.conftest import ACK, MODEL, chat_body

CONTENT = '{"finding":"normal"}'
CALL = {
    "id": "chatcmpl-tool-1",
    "type": "function",
    "function": {"name": "get_labs", "arguments": '{"test":"potassium"}'},
}
TOOLS = [{"type": "function", "function": {"name": "get_labs", "parameters": {"type": "object"}}}]
NAMED = {"type": "function", "function": {"name": "get_labs"}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "f", "schema": {"type": "object"}}}
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


class Finding(BaseModel):
    finding: Literal["normal", "abnormal"]


def _frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    return _frame({**head, "choices": choices, **extra})


def engine_frames(body: dict[str, Any]) -> list[bytes]:
    """As vLLM streams: the role, then the output, the last piece with finish_reason (a named tool call: "stop")."""
    if body.get("tools"):
        first = {
            "index": 0,
            "id": CALL["id"],
            "type": "function",
            "function": {"name": "get_labs", "arguments": ""},
        }
        rest = {"index": 0, "function": {"arguments": CALL["function"]["arguments"]}}
        deltas = [{"tool_calls": [first]}, {"tool_calls": [rest]}]
    else:
        deltas = [{"content": '{"finding":'}, {"content": '"normal"}'}]
    frames = [_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    frames += [_chunk([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas[:-1]]
    frames.append(_chunk([{"index": 0, "delta": deltas[-1], "finish_reason": "stop", "stop_reason": None}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(_chunk([], usage=USAGE))
    return [*frames, b"data: [DONE]\n\n"]


def engine_answer(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("tools"):
        message = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    else:
        message = {"role": "assistant", "content": CONTENT}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [choice],
        "usage": USAGE,
    }


async def _engine(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.json_response(engine_answer(body))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for frame in engine_frames(body):
        await resp.write(frame)
    await resp.write_eof()
    return resp


@pytest.fixture
async def gateway(aiohttp_server, make_gateway):
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _engine)
    engine = await aiohttp_server(app)
    return await make_gateway(upstream=str(engine.make_url("")).rstrip("/"))


def sdk(gateway) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=str(gateway.make_url("/v1")), api_key="local", default_headers=ACK, max_retries=0
    )


async def test_the_sdk_parses_a_structured_answer_and_still_sees_the_disclaimer(gateway):
    raw = await sdk(gateway).chat.completions.with_raw_response.parse(
        model=MODEL, messages=chat_body()["messages"], response_format=Finding
    )
    out = raw.parse()
    assert out.choices[0].message.parsed == Finding(finding="normal")
    assert out.choices[0].message.content == CONTENT  # byte for byte the engine's
    assert out.model_extra["disclaimer"] == terms.DISCLAIMER
    assert raw.headers["x-disclaimer"] == terms.DISCLAIMER


async def test_a_structured_stream_is_relayed_byte_for_byte_then_a_disclaimer_only_chunk(gateway):
    body = chat_body(stream=True, response_format=SCHEMA)
    resp = await gateway.post("/v1/chat/completions", json=body, headers=ACK)
    sent = await resp.read()
    engine = engine_frames({**body, "stream_options": {"include_usage": True}})
    final = _chunk([], disclaimer=terms.DISCLAIMER)
    assert sent == b"".join(engine[:-2]) + final + b"data: [DONE]\n\n"  # the usage we asked for is dropped
    assert resp.headers["X-Disclaimer"] == terms.DISCLAIMER


async def test_the_sdk_stream_helper_parses_a_structured_stream(gateway):
    async with sdk(gateway).chat.completions.stream(
        model=MODEL,
        messages=chat_body()["messages"],
        response_format=Finding,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = [event.chunk async for event in stream if event.type == "chunk"]
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == Finding(finding="normal")
    assert final.usage.total_tokens == 8  # the usage chunk still comes last, after the disclaimer chunk
    assert [c.model_extra.get("disclaimer") for c in chunks if not c.choices and not c.usage] == [
        terms.DISCLAIMER
    ]


async def test_a_tool_call_arrives_untouched_with_null_content(gateway):
    out = await sdk(gateway).chat.completions.create(
        model=MODEL, messages=chat_body()["messages"], tools=TOOLS, tool_choice=NAMED
    )
    message = out.choices[0].message
    assert message.content is None and message.tool_calls[0].model_dump() == CALL
    assert out.model_extra["disclaimer"] == terms.DISCLAIMER


async def test_a_tool_call_stream_gets_no_text(gateway):
    stream = await sdk(gateway).chat.completions.create(
        model=MODEL, messages=chat_body()["messages"], tools=TOOLS, tool_choice=NAMED, stream=True
    )
    chunks = [c async for c in stream]
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    arguments = "".join(
        t.function.arguments or "" for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()
    )
    assert arguments == CALL["function"]["arguments"]
    assert chunks[-1].choices == [] and chunks[-1].model_extra["disclaimer"] == terms.DISCLAIMER
