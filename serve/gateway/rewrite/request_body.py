"""Validates what the gateway must read of a request body and rewrites it for the engine (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from serve.gateway.errors import bad_request, model_not_found
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite.images import ImagePart, check_count, image_parts

# Keeps salts apart from any other use of the same key hash.
SALT_CONTEXT = b"medgemma-serve cache salt v1:"


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


def finalize(parsed: Parsed, disclaimer: str, *, chat: bool, cache_salt: str | None = None) -> Prepared:
    """The body for the engine: the disclaimer merged into the system turn, usage asked for in streams, client
    media ids dropped, and the tenant's cache salt (see tenant_salt) in place of any the client sent."""
    body = parsed.body
    if chat:
        body["messages"] = disc.merge_system(body["messages"], disclaimer)
        drop_media_ids(body["messages"])
    if cache_salt is not None:
        body["cache_salt"] = cache_salt
    strip = ask_for_usage(body) if parsed.stream else False
    return Prepared(encode(body), parsed.model, parsed.stream, strip)


def drop_media_ids(messages: list[dict[str, Any]]) -> None:
    """Remove the 'uuid' of every content part. vLLM 0.32 takes a part's uuid as the image's identity in its
    multimodal and prefix caches instead of hashing the pixels (vllm/multimodal/processing/inputs.py,
    get_mm_hashes): a client naming another's uuid would be answered from that image. Without it vLLM hashes
    the image itself."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                part.pop("uuid", None)


def tenant_salt(key_hash: str | None) -> str | None:
    """The engine's prefix-cache salt for one API key, derived from the key's hash (never the key): requests of
    different keys never share cached prefixes, so response timing cannot reveal another tenant's prompts.
    None in local mode (no keys, one tenant): a client's own cache_salt then passes through as sent."""
    if key_hash is None:
        return None
    # 64 hex characters: vLLM takes at most 128 and none of '@', '/', '\\'.
    return hashlib.sha256(SALT_CONTEXT + key_hash.encode()).hexdigest()


def encode(body: dict[str, Any]) -> bytes:
    """orjson parses 1024 levels deep but writes only 255: deeper input is the client's error, found here at no
    per-request cost (no depth walk)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise bad_request(
            "The request body nests arrays or objects too deeply (at most 255 levels).", code="json_too_deep"
        ) from None


def prepare(raw: bytes, served: list[str], disclaimer: str, *, chat: bool) -> Prepared:
    """parse + finalize, for callers with no images to decode (and for tests of the pure rewrite)."""
    return finalize(parse(raw, served, chat=chat), disclaimer, chat=chat)
