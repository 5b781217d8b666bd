"""Validates what the gateway must read of a request body and rewrites it for the engine (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from serve.gateway.errors import bad_request, model_not_found
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite.images import ImagePart, check_count, image_parts


@dataclass(frozen=True)
class Parsed:
    body: dict[str, Any]
    model: str
    stream: bool
    images: list[ImagePart]  # checked (decoded) separately: that is blocking work


@dataclass(frozen=True)
class Prepared:
    body: bytes  # what goes to the engine
    model: str
    stream: bool
    strip_usage: bool  # we asked the engine for usage in a stream; the client did not


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


def check_model(body: dict[str, Any], served: list[str]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string; GET /v1/models lists them.", "model")
    if model not in served:
        raise model_not_found(model, served)
    return model


def check_stream(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", "stream")
    return stream


def check_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of message objects.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(f"messages[{i}] must be an object with a string 'role'.", f"messages[{i}]")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise bad_request(
                f"messages[{i}].content must be a string or a list of parts.", f"messages[{i}].content"
            )
        if isinstance(content, list) and not all(isinstance(p, dict) for p in content):
            raise bad_request(f"messages[{i}].content parts must be objects.", f"messages[{i}].content")
    first = messages[0]
    if first["role"] in disc.SYSTEM_ROLES and not _text_only(first.get("content")):
        raise bad_request("A system message may contain only text parts.", "messages[0].content")
    return messages


def _text_only(content: Any) -> bool:
    if not isinstance(content, list):
        return True
    return all(p.get("type") == "text" and isinstance(p.get("text"), str) for p in content)


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Streams always ask the engine for usage (token metrics); True if the client did not ask itself."""
    options = body.get("stream_options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    if options.get("include_usage") is True:
        return False
    body["stream_options"] = {**options, "include_usage": True}
    return True


def parse(raw: bytes, served: list[str], *, chat: bool, max_images: int | None = None) -> Parsed:
    """Everything the gateway must read of a request, checked; refusals are 4xx GatewayErrors."""
    body = parse_json(raw)
    model = check_model(body, served)
    stream = check_stream(body)
    images: list[ImagePart] = []
    if chat:
        images = image_parts(check_messages(body))
        check_count(images, max_images)
    return Parsed(body, model, stream, images)


def finalize(parsed: Parsed, disclaimer: str, *, chat: bool) -> Prepared:
    """The body for the engine: the disclaimer merged into the system turn, usage asked for in streams."""
    body = parsed.body
    if chat:
        body["messages"] = disc.merge_system(body["messages"], disclaimer)
    strip = ask_for_usage(body) if parsed.stream else False
    return Prepared(orjson.dumps(body), parsed.model, parsed.stream, strip)


def prepare(raw: bytes, served: list[str], disclaimer: str, *, chat: bool) -> Prepared:
    """parse + finalize, for callers with no images to decode (and for tests of the pure rewrite)."""
    return finalize(parse(raw, served, chat=chat), disclaimer, chat=chat)
