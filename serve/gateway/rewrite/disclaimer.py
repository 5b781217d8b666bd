"""Pure rewrites that carry the medical disclaimer: into the system turn of requests, onto every response."""

from __future__ import annotations

from typing import Any

import orjson

SYSTEM_ROLES = ("system", "developer")
SEPARATOR = "\n\n"


def merge_system(messages: list[dict[str, Any]], disclaimer: str) -> list[dict[str, Any]]:
    """One system turn, first, starting with the disclaimer (a byte-stable prefix for the prefix cache).

    The client's own leading system (or developer) message is kept after the disclaimer; Gemma's template
    reads only a string or the first text part, so the merged system content is always a string. Later turns
    are untouched: alternation is the client's to keep, and the engine's template rejects broken ones.
    """
    if messages and messages[0].get("role") in SYSTEM_ROLES:
        own = system_text(messages[0].get("content"))
        merged = disclaimer + SEPARATOR + own if own else disclaimer
        return [{**messages[0], "role": "system", "content": merged}, *messages[1:]]
    return [{"role": "system", "content": disclaimer}, *messages]


def system_text(content: Any) -> str:
    """A system message's text; image or other parts in a system turn are refused by the caller's check."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return SEPARATOR.join(part.get("text", "") for part in content if isinstance(part, dict))


def suffix(disclaimer: str) -> str:
    return SEPARATOR + disclaimer


def attach_to_json(body: dict[str, Any], disclaimer: str, *, append: bool) -> dict[str, Any]:
    """A top-level `disclaimer` field, and (if `append`) the text appended to every choice's output."""
    body["disclaimer"] = disclaimer
    if append:
        for choice in body.get("choices") or ():
            _append_to_choice(choice, suffix(disclaimer))
    return body


def _append_to_choice(choice: dict[str, Any], text: str) -> None:
    message = choice.get("message")
    if isinstance(message, dict):
        if isinstance(message.get("content"), str) or message.get("content") is None:
            message["content"] = (message.get("content") or "") + text
    elif isinstance(choice.get("text"), str):
        choice["text"] += text


def stream_frame(meta: dict[str, Any], index: int, disclaimer: str, *, chat: bool, append: bool) -> bytes:
    """The final content chunk of a stream for one choice, shaped like the engine's own chunks."""
    text = suffix(disclaimer) if append else ""
    if chat:
        choice = {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
    else:
        choice = {"index": index, "text": text, "logprobs": None, "finish_reason": None}
    chunk = {**meta, "choices": [choice], "disclaimer": disclaimer}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
