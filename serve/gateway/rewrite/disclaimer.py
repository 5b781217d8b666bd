"""Pure rewrites that carry the medical disclaimer: into the system turn of requests, onto every response."""

from __future__ import annotations

from typing import Any

import orjson

SYSTEM_ROLES = ("system", "developer")
SEPARATOR = "\n\n"
# Google's switch for MedGemma's thinking (Google-Health/medgemma notebooks): it opens the system turn.
THINKING_INSTRUCTION = "SYSTEM INSTRUCTION: think silently if needed."


def merge_system(
    messages: list[dict[str, Any]], disclaimer: str, *, thinking: bool = False
) -> list[dict[str, Any]]:
    """One system turn, first, starting with the disclaimer (a byte-stable prefix for the prefix cache); with
    `thinking`, Google's thinking instruction opens it, before the disclaimer.

    The client's own leading system (or developer) message is kept after the disclaimer; Gemma's template
    reads only a string or the first text part, so the merged system content is always a string. A client text
    that opens with the thinking instruction (as Google's notebooks write it) turns thinking on: the instruction
    moves to the front, where Google's notebooks put it. Later turns are untouched: alternation is the client's to keep, and the
    engine's template rejects broken ones.
    """
    first_is_system = bool(messages) and messages[0].get("role") in SYSTEM_ROLES
    own = system_text(messages[0].get("content")) if first_is_system else ""
    if own.startswith(THINKING_INSTRUCTION):
        own, thinking = own.removeprefix(THINKING_INSTRUCTION).lstrip(), True
    head = THINKING_INSTRUCTION + SEPARATOR + disclaimer if thinking else disclaimer
    merged = head + SEPARATOR + own if own else head
    if first_is_system:
        return [{**messages[0], "role": "system", "content": merged}, *messages[1:]]
    return [{"role": "system", "content": merged}, *messages]


def system_text(content: Any) -> str:
    """A system message's text; image or other parts in a system turn are refused by the caller's check."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return SEPARATOR.join(part.get("text", "") for part in content if isinstance(part, dict))


def suffix(disclaimer: str) -> str:
    return SEPARATOR + disclaimer


def attach_to_json(
    body: dict[str, Any], disclaimer: str, *, append: bool, machine_readable: bool = False
) -> dict[str, Any]:
    """A top-level `disclaimer` field, and (if `append`) the text appended to each choice's text output.

    A machine-readable request (request_body.machine_readable) keeps every choice byte-identical to the engine's:
    a program parses it. A choice that calls tools is never touched, whatever the request asked.
    """
    body["disclaimer"] = disclaimer
    if append and not machine_readable:
        for choice in body.get("choices") or ():
            if isinstance(choice, dict):
                _append_to_choice(choice, suffix(disclaimer))
    return body


def calls_tools(choice: dict[str, Any]) -> bool:
    """A choice that answers with tool calls (vLLM says "stop", not "tool_calls", for a named tool_choice)."""
    if choice.get("finish_reason") == "tool_calls":
        return True
    message = choice.get("message", choice.get("delta"))
    return isinstance(message, dict) and bool(message.get("tool_calls"))


def _append_to_choice(choice: dict[str, Any], text: str) -> None:
    if calls_tools(choice):
        return
    message = choice.get("message")
    if isinstance(message, dict):
        if isinstance(message.get("content"), str) or message.get("content") is None:
            message["content"] = (message.get("content") or "") + text
    elif isinstance(choice.get("text"), str):
        choice["text"] += text


def stream_frame(meta: dict[str, Any], index: int, disclaimer: str, *, chat: bool) -> bytes:
    """The disclaimer's content chunk for one plain-text choice, shaped like the engine's own chunks."""
    if chat:
        choice = {
            "index": index,
            "delta": {"content": suffix(disclaimer)},
            "logprobs": None,
            "finish_reason": None,
        }
    else:
        choice = {"index": index, "text": suffix(disclaimer), "logprobs": None, "finish_reason": None}
    return sse({**meta, "choices": [choice], "disclaimer": disclaimer})


def final_frame(meta: dict[str, Any], disclaimer: str) -> bytes:
    """The last chunk of every stream before usage and [DONE]: no choices, only the `disclaimer` field (the
    openai SDK reads a chunk with empty choices, as it reads the usage chunk)."""
    return sse({**meta, "choices": [], "disclaimer": disclaimer})


def around_finish(frame: bytes, chunk: dict[str, Any], disclaimer: str, *, chat: bool) -> bytes:
    """What replaces an engine frame that finishes choices of a plain-text stream: each choice ending as text gets
    the disclaimer's content chunk before the frame with its finish_reason, so no content follows the finish.

    vLLM's finishing frame often carries the choice's last token too: it is then split in two around our chunk,
    the output first (finish_reason null), then the finish_reason alone.
    """
    choices = chunk.get("choices") or []
    ending = [c for c in choices if isinstance(c, dict) and c.get("finish_reason") and not calls_tools(c)]
    if not ending:
        return frame
    meta = {k: chunk[k] for k in META if k in chunk}
    ours = b"".join(stream_frame(meta, c.get("index", 0), disclaimer, chat=chat) for c in ending)
    if not any(_has_output(c) for c in ending):
        return ours + frame
    output = {**chunk, "choices": [_unfinished(c) if any(c is e for e in ending) else c for c in choices]}
    finish = {**chunk, "choices": [_finish_only(c, chat) for c in ending]}
    return sse(output) + ours + sse(finish)


META = ("id", "object", "created", "model")
EMPTY: tuple[Any, ...] = (None, "", [], {})
OUTPUT_ONLY = ("delta", "text", "logprobs", "token_ids")


def _has_output(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta")
    values = delta.values() if isinstance(delta, dict) else [choice.get("text")]
    return any(v not in EMPTY for v in values) or any(choice.get(k) is not None for k in OUTPUT_ONLY[2:])


def _unfinished(choice: dict[str, Any]) -> dict[str, Any]:
    return {**choice, "finish_reason": None, **({"stop_reason": None} if "stop_reason" in choice else {})}


def _finish_only(choice: dict[str, Any], chat: bool) -> dict[str, Any]:
    kept = {k: v for k, v in choice.items() if k not in OUTPUT_ONLY}
    return {**kept, **({"delta": {}} if chat else {"text": ""}), "logprobs": None}


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
