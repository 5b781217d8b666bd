"""The disclaimer on /v1/responses answers (pure): a `disclaimer` field on the response object, and its text appended
to each output_text part of the output messages, never to tool calls or to output a program parses."""

from __future__ import annotations

import os
from typing import Any

from serve.gateway.rewrite import disclaimer as disc

# Output items that call tools: an answer holding one is left as the engine wrote it (as chat's tool calls).
TOOL_CALLS = ("function_call", "custom_tool_call", "mcp_call", "code_interpreter_call", "web_search_call")


def attach_to_response(
    response: dict[str, Any],
    disclaimer: str,
    *,
    append: bool,
    machine_readable: bool = False,
    item_id: str | None = None,
) -> dict[str, Any]:
    """The response object with a `disclaimer` field and, for a plain-text answer, the disclaimer appended to each
    output_text part; an answer with no text at all gets one message holding only the disclaimer (as an empty
    chat answer gets it as its content), with `item_id` when a stream already announced that message."""
    response["disclaimer"] = disclaimer
    output = response.get("output")
    if not append or machine_readable or not isinstance(output, list) or calls_tools(output):
        return response
    parts = text_parts(output)
    for part in parts:
        part["text"] += disc.suffix(disclaimer)
    if not parts:
        output.append(disclaimer_message(item_id or new_item_id(), disclaimer))
    return response


def calls_tools(output: list[Any]) -> bool:
    return any(isinstance(item, dict) and item.get("type") in TOOL_CALLS for item in output)


def text_parts(output: list[Any]) -> list[dict[str, Any]]:
    return [
        part
        for item in output
        if isinstance(item, dict) and item.get("type") == "message" and isinstance(item.get("content"), list)
        for part in item["content"]
        if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str)
    ]


def token_usage(usage: object) -> dict[str, Any] | None:
    """Responses' usage (input_tokens / output_tokens) as the token metrics read it."""
    if not isinstance(usage, dict):
        return None
    return {
        "prompt_tokens": usage.get("input_tokens") or 0,
        "completion_tokens": usage.get("output_tokens") or 0,
    }


def new_item_id() -> str:
    return "msg_" + os.urandom(16).hex()


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def disclaimer_message(item_id: str, disclaimer: str, *, status: str = "completed") -> dict[str, Any]:
    content = [text_part(disc.suffix(disclaimer))] if status == "completed" else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def text_delta(done: dict[str, Any], delta: str) -> dict[str, Any]:
    """A response.output_text.delta for the text part that `done` (its output_text.done event) closes."""
    where: dict[str, Any] = {k: done[k] for k in ("item_id", "output_index", "content_index") if k in done}
    return {
        "type": "response.output_text.delta",
        "sequence_number": done.get("sequence_number", 0),
        **where,
        "delta": delta,
        "logprobs": [],
    }


def disclaimer_item_events(item_id: str, output_index: int, disclaimer: str) -> list[dict[str, Any]]:
    """A whole message holding only the disclaimer, as vLLM streams a message (sequence numbers set by the
    caller): for a plain-text stream that ended without any text."""
    text = disc.suffix(disclaimer)
    at = {"item_id": item_id, "output_index": output_index, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": output_index,
            "item": disclaimer_message(item_id, disclaimer, status="in_progress"),
        },
        {"type": "response.content_part.added", **at, "part": text_part("")},
        {"type": "response.output_text.delta", **at, "delta": text, "logprobs": []},
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": text_part(text)},
        {
            "type": "response.output_item.done",
            "output_index": output_index,
            "item": disclaimer_message(item_id, disclaimer),
        },
    ]
