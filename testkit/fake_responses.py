"""The fake engine's /v1/responses, /tokenize and /detokenize answers, in vLLM 0.32's shapes
(vllm/entrypoints/openai/responses/, vllm/entrypoints/serve/tokenize/)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testkit.fake_engine import Script

CALL = {
    "type": "function_call",
    "id": "fc_fake",
    "call_id": "call_fake",
    "name": "get_labs",
    "status": "completed",
}
ARGUMENTS = '{"test":"potassium"}'
IMAGE_TOKENS = 4  # what the fake counts per image part (Gemma 3 counts 256)


def tokens(script: Script, body: dict[str, Any]) -> int:
    return script.tokens({"max_tokens": body.get("max_output_tokens")})


def response_object(script: Script, body: dict[str, Any], output: list[dict[str, Any]] | None = None) -> dict:
    """The whole answer (status "incomplete": the fake always stops at its token limit, as vLLM says then)."""
    n = tokens(script, body)
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1,
        "model": body.get("model"),
        "instructions": body.get("instructions"),
        "output": whole_output(body, n) if output is None else output,
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": 1.0,
        "background": False,
        "max_output_tokens": n,
        "service_tier": "auto",
        "text": body.get("text"),
        "truncation": "disabled",
        "usage": {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": n,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 5 + n,
        },
    }


def whole_output(body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    if body.get("tools"):
        return [{**CALL, "arguments": ARGUMENTS}]
    if n == 0:
        return []  # vLLM streams no message for an answer without text
    return [_message(_text("".join(f"tok{i} " for i in range(n))))]


def response_events(script: Script, body: dict[str, Any]) -> list[bytes]:
    """As vLLM streams: created, in_progress, the output item's events, then completed with the whole answer."""
    n = tokens(script, body)
    shell = {**response_object(script, body, output=[]), "status": "in_progress", "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
    ]
    events += _call_events() if body.get("tools") else _text_events(n)
    events.append({"type": "response.completed", "response": response_object(script, body)})
    return [_frame({**e, "sequence_number": i}) for i, e in enumerate(events)]


def _text_events(n: int) -> list[dict[str, Any]]:
    if n == 0:
        return []
    at = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    text = "".join(f"tok{i} " for i in range(n))
    return [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**_message(), "status": "in_progress"},
        },
        {"type": "response.content_part.added", **at, "part": _text("")},
        *(
            {"type": "response.output_text.delta", **at, "delta": f"tok{i} ", "logprobs": []}
            for i in range(n)
        ),
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": _text(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": _message(_text(text))},
    ]


def _call_events() -> list[dict[str, Any]]:
    at = {"item_id": CALL["id"], "output_index": 0}
    return [
        {"type": "response.output_item.added", "output_index": 0, "item": {**CALL, "arguments": ""}},
        {"type": "response.function_call_arguments.delta", **at, "delta": ARGUMENTS},
        {"type": "response.function_call_arguments.done", **at, "arguments": ARGUMENTS},
        {"type": "response.output_item.done", "output_index": 0, "item": {**CALL, "arguments": ARGUMENTS}},
    ]


def _message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": list(parts),
    }


def _text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": None}


def _frame(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def tokenize_answer(script: Script, body: dict[str, Any]) -> dict[str, Any]:
    """One token per word of the prompt, or of each message's role and text; IMAGE_TOKENS per image part."""
    if "messages" in body:
        words, images = [], 0
        for message in body["messages"]:
            words.append(message["role"])
            content = message.get("content") or ""
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            words += " ".join(p.get("text", "") for p in parts if p.get("type") == "text").split()
            images += sum(p.get("type") == "image_url" for p in parts)
    else:
        words, images = body["prompt"].split(), 0
    ids = [len(w) for w in words] + [262144] * (IMAGE_TOKENS * images)
    return {"count": len(ids), "max_model_len": 2048, "tokens": ids, "token_strs": None}


def detokenize_answer(script: Script, body: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": " ".join(f"t{t}" for t in body["tokens"])}
